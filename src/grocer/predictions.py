"""Prediction tables: one row per image, logits and probabilities per class.

Parquet columns: `image_id`, then `logit_<class>` and `prob_<class>` for every class
in the class-list order. Readers check the class columns and the ids, never assume.
A table of test predictions carries the fingerprint of the test set it was made from
(ingest's sha256) in its parquet metadata, `test_fingerprint`.
A file from outside the pipeline (a blend source) may hold probabilities only, as parquet
or CSV: `read_probabilities`.
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
