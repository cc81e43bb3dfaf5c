"""Prediction tables: one row per image, logits and probabilities per class.

Parquet columns: `image_id`, then `logit_<class>` and `prob_<class>` for every class
in the class-list order. Readers check the class columns and the ids, never assume.
A table of test predictions carries the fingerprint of the test set it was made from
(ingest's sha256) in its parquet metadata, `test_fingerprint`.
A file from outside the pipeline (a blend source) may hold probabilities only, as parquet
or CSV: `read_probabilities`.
A pair expert's table (models/pairs/<a-b>/f<k>/) holds `image_id` and `prob_b`, P(class b |
the image is a or b): `write_expert_table`, `read_expert_table`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from grocer import atomic
from grocer.errors import GrocerError


@dataclass(frozen=True)
class Predictions:
    ids: list[str]
    logits: np.ndarray  # (n, n_classes) float32
    probs: np.ndarray  # (n, n_classes) float32, rows sum to 1
    test_fingerprint: str | None = None  # test predictions: the test set they were made from

    def reindex(self, ids: list[str], where: str) -> Predictions:
        """The same predictions in the order of `ids`; every id must be present."""
        position = {image_id: i for i, image_id in enumerate(self.ids)}
        missing = [i for i in ids if i not in position]
        if missing:
            raise GrocerError(f"{where}: no prediction for {len(missing)} id(s), e.g. {missing[:3]}")
        rows = np.array([position[i] for i in ids], dtype=np.int64)
        return Predictions(list(ids), self.logits[rows], self.probs[rows], self.test_fingerprint)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def write_predictions(path: Path, ids: list[str], logits: np.ndarray, probs: np.ndarray, classes: list[str],
                      test_fingerprint: str | None = None) -> None:
    logits = np.asarray(logits, dtype=np.float32)
    probs = np.asarray(probs, dtype=np.float32)
    if logits.shape != (len(ids), len(classes)) or probs.shape != logits.shape:
        raise ValueError(f"{path}: shapes {logits.shape}/{probs.shape} do not match {len(ids)} ids x {len(classes)} classes")
    frame = pd.DataFrame({"image_id": list(ids)})
    columns = {f"logit_{c}": logits[:, k] for k, c in enumerate(classes)}
    columns.update({f"prob_{c}": probs[:, k] for k, c in enumerate(classes)})
    table = pd.concat([frame, pd.DataFrame(columns)], axis=1)
    if test_fingerprint is not None:
        table.attrs["test_fingerprint"] = test_fingerprint
    atomic.write_frame(path, table)


def read_predictions(path: Path, classes: list[str]) -> Predictions:
    if not Path(path).is_file():
        raise GrocerError(f"{path}: missing prediction table (has its stage run?)")
    frame = pd.read_parquet(path)
    wanted = [f"logit_{c}" for c in classes] + [f"prob_{c}" for c in classes]
    missing = [c for c in ["image_id", *wanted] if c not in frame.columns]
    if missing:
        raise GrocerError(f"{path}: missing column(s) {missing[:4]} (made with another class list?)")
    if frame["image_id"].duplicated().any():
        raise GrocerError(f"{path}: duplicate image_id {frame['image_id'][frame['image_id'].duplicated()].iloc[0]!r}")
    logits = frame[[f"logit_{c}" for c in classes]].to_numpy(np.float32)
    probs = frame[[f"prob_{c}" for c in classes]].to_numpy(np.float32)
    return Predictions(frame["image_id"].astype(str).tolist(), logits, probs, frame.attrs.get("test_fingerprint"))


def read_probabilities(path: Path, classes: list[str]) -> tuple[list[str], np.ndarray]:
    """ids and (n, n_classes) probabilities of a table with image_id and exactly the prob_<class>
    columns of `classes` (logits, when present, are ignored); parquet or CSV."""
    frame = pd.read_csv(path, dtype={"image_id": str}) if path.suffix == ".csv" else pd.read_parquet(path)
    if "image_id" not in frame.columns:
        raise GrocerError(f"{path}: no image_id column")
    found = {c[len("prob_"):] for c in frame.columns if c.startswith("prob_")}
    if found != set(classes):
        raise GrocerError(f"{path}: other classes than this run's: missing {sorted(set(classes) - found)[:3]}, "
                          f"extra {sorted(found - set(classes))[:3]}")
    if frame["image_id"].duplicated().any():
        raise GrocerError(f"{path}: duplicate image_id {frame['image_id'][frame['image_id'].duplicated()].iloc[0]!r}")
    probs = frame[[f"prob_{c}" for c in classes]].to_numpy(np.float64)
    if not (np.isfinite(probs).all() and (probs >= 0).all()) or not np.allclose(probs.sum(axis=1), 1, atol=1e-3):
        raise GrocerError(f"{path}: prob_ columns must be probabilities summing to 1 per row")
    return frame["image_id"].astype(str).tolist(), probs


def no_extra_ids(table_ids: list[str], ids: list[str], where: Path) -> None:
    """A table may not hold ids beyond `ids` (a stale output would)."""
    extra = set(table_ids) - set(ids)
    if extra:
        raise GrocerError(f"{where}: {len(extra)} row(s) not expected here, e.g. {sorted(extra)[:3]} (stale output?)")


def write_expert_table(path: Path, ids: list[str], prob_b: np.ndarray, test_fingerprint: str | None = None) -> None:
    table = pd.DataFrame({"image_id": list(ids), "prob_b": prob_b})
    if test_fingerprint is not None:  # test tables, as in write_predictions
        table.attrs["test_fingerprint"] = test_fingerprint
    atomic.write_frame(path, table)


def read_expert_table(path: Path, ids: list[str]) -> tuple[np.ndarray, str | None]:
    """The expert's prob_b for `ids`, in that order (the table must cover exactly those ids),
    and the test set's fingerprint the table carries (None when it carries none)."""
    frame = pd.read_parquet(path)
    missing_cols = [c for c in ("image_id", "prob_b") if c not in frame.columns]
    if missing_cols:
        raise GrocerError(f"{path}: missing column(s) {missing_cols}")
    if frame["image_id"].duplicated().any():
        raise GrocerError(f"{path}: duplicate image_id {frame['image_id'][frame['image_id'].duplicated()].iloc[0]!r}")
    table_ids = frame["image_id"].astype(str)
    no_extra_ids(table_ids.tolist(), ids, path)
    position = pd.Index(table_ids).get_indexer(ids)
    if (position < 0).any():
        missing = [i for i, p in zip(ids, position) if p < 0]
        raise GrocerError(f"{path}: no prediction for {len(missing)} id(s), e.g. {missing[:3]}")
    prob_b = frame["prob_b"].to_numpy(np.float64)[position]
    if not (np.isfinite(prob_b).all() and (prob_b >= 0).all() and (prob_b <= 1).all()):
        raise GrocerError(f"{path}: prob_b must be probabilities in [0, 1] (found NaN or out-of-range values)")
    return prob_b, frame.attrs.get("test_fingerprint")
