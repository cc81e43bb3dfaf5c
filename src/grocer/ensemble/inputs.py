"""Inputs of the ensemble stages (blend, stack, override, submit), read and checked once.

The OOF rows are the rows of folds.csv whose fold is in `run.folds`. Every table read
here is matched to those rows (or to the test ids) by image_id: a missing id, an extra
id, a duplicate or a missing table is a GrocerError naming the file; row order on disk
is never trusted. Every infer item's test fingerprint is checked against ingest's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grocer import paths
from grocer.dataset import load_test_fingerprint, read_csv, verify_fingerprint
from grocer.errors import GrocerError
from grocer.predictions import Predictions, no_extra_ids, read_expert_table, read_predictions

FINGERPRINT_KEY = "test_fingerprint"  # key of the test set's sha256 in an infer item's meta.json


@dataclass(frozen=True)
class OofRows:
    """The train rows that have OOF predictions (folds in `run.folds`), in folds.csv order."""

    ids: list[str]
    y: np.ndarray  # class index
    fold: np.ndarray  # base CV fold
    groups: np.ndarray | None  # product code per row; None without a group column
    coverage: float  # fraction of all train rows that are OOF rows here

    def fold_ids(self, fold: int) -> list[str]:
        return [i for i, f in zip(self.ids, self.fold) if f == fold]


@dataclass(frozen=True)
class ModelMatrix:
    """Every (model, fold) infer item, aligned on the OOF rows and on the test ids."""

    models: list[str]
    folds: list[int]
    oof_logits: np.ndarray  # (n_models, n_oof, K): each row from the model of its own fold
    oof_probs: np.ndarray
    test_ids: list[str]
    test_logits: np.ndarray  # (n_models, n_folds, n_test, K)
    test_probs: np.ndarray


def load_oof_rows(classes: list[str], folds: list[int]) -> OofRows:
    table = read_csv(paths.FOLDS, ["image_id", "label", "fold"])
    unknown = sorted(set(table["label"]) - set(classes))
    if unknown:
        raise GrocerError(f"{paths.FOLDS}: label(s) {unknown[:3]} are not in {paths.CLASSES}")
    fold = table["fold"].astype(int).to_numpy()
    empty = [k for k in folds if not (fold == k).any()]
    if empty:
        raise GrocerError(f"{paths.FOLDS}: run.folds {empty} have no rows (folds.csv has {sorted(set(fold))})")
    keep = np.isin(fold, folds)
    rows = table[keep]
    groups = None
    if "group" in rows.columns and rows["group"].ne("").any():
        groups = rows["group"].to_numpy(dtype=str)
    index = {c: k for k, c in enumerate(classes)}
    return OofRows(
        ids=rows["image_id"].tolist(),
        y=rows["label"].map(index).to_numpy(np.int64),
        fold=fold[keep],
        groups=groups,
        coverage=float(keep.mean()),
    )


def exactly(predictions: Predictions, ids: list[str], where: Path) -> Predictions:
    """`predictions` in the order of `ids`; an id missing or one too many is an error."""
    no_extra_ids(predictions.ids, ids, where)
    return predictions.reindex(ids, str(where))


def _finite(predictions: Predictions, where: Path) -> Predictions:
    if not (np.isfinite(predictions.logits).all() and np.isfinite(predictions.probs).all()):
        raise GrocerError(f"{where}: NaN or infinite logits/probs")
    return predictions


def _missing_items(names: list[str], folds: list[int], item_files, label) -> list[str]:
    """`label(name, k)` of every (name, fold) lacking one of its files (`item_files(name, k)`)."""
    return [
        label(name, k)
        for name in names
        for k in folds
        if not all(f.is_file() for f in item_files(name, k))
    ]


def _prediction_tables(directory: Path) -> list[Path]:
    return [paths.prediction_table(directory, split) for split in ("oof", "test")]


def _read_infer_item(model: str, fold: int, rows: OofRows, classes: list[str], test_ids: list[str] | None):
    """One infer item's OOF predictions (in fold-row order) and test predictions (in `test_ids` order)."""
    meta_path = paths.infer_meta(model, fold)
    meta = json.loads(meta_path.read_text())
    if FINGERPRINT_KEY not in meta:
        raise GrocerError(f"{meta_path}: no {FINGERPRINT_KEY!r}")
    verify_fingerprint(meta[FINGERPRINT_KEY], meta_path)
    oof_path = paths.prediction_table(paths.infer_dir(model, fold), "oof")
    oof = _finite(exactly(read_predictions(oof_path, classes), rows.fold_ids(fold), oof_path), oof_path)
    test_path = paths.prediction_table(paths.infer_dir(model, fold), "test")
    test = read_predictions(test_path, classes)
    test = _finite(exactly(test, test_ids or test.ids, test_path), test_path)
    return oof, test


def load_model_matrix(models: list[str], folds: list[int], rows: OofRows, classes: list[str]) -> ModelMatrix:
    missing = _missing_items(
        models, folds, lambda m, k: [*_prediction_tables(paths.infer_dir(m, k)), paths.infer_meta(m, k)],
        lambda m, k: f"infer@{m} (fold {k})",
    )
    if missing:
        raise GrocerError(
            f"missing predictions of {', '.join(missing)} (in {paths.MODEL_PREDICTIONS_DIR}/<model>/f<fold>/): "
            "run those infer items or leave them out of run.models / run.folds"
        )
    shape = (len(models), len(rows.ids), len(classes))
    oof_logits, oof_probs = np.zeros(shape, dtype=np.float32), np.zeros(shape, dtype=np.float32)
    test_ids: list[str] | None = None  # the first test table fixes the order; every other must match it
    test_logits, test_probs = [], []
    for m, model in enumerate(models):
        for k in folds:
            oof, test = _read_infer_item(model, k, rows, classes, test_ids)
            oof_logits[m, rows.fold == k] = oof.logits
            oof_probs[m, rows.fold == k] = oof.probs
            test_ids = test.ids
            test_logits.append(test.logits)
            test_probs.append(test.probs)
    n_test = load_test_fingerprint()["n_images"]
    if len(test_ids) != n_test:
        raise GrocerError(
            f"{paths.MODEL_PREDICTIONS_DIR}: test predictions hold {len(test_ids)} ids, ingest saw {n_test}"
        )
    per_item = (len(models), len(folds), len(test_ids), len(classes))
    return ModelMatrix(
        models=list(models),
        folds=list(folds),
        oof_logits=oof_logits,
        oof_probs=oof_probs,
        test_ids=test_ids,
        test_logits=np.array(test_logits, dtype=np.float32).reshape(per_item),
        test_probs=np.array(test_probs, dtype=np.float32).reshape(per_item),
    )


def _read_expert(path: Path, ids: list[str], test: bool) -> np.ndarray:
    """The expert's prob_b for `ids` (grocer.predictions.read_expert_table); a test table must
    have been made from ingest's test set."""
    prob_b, test_fingerprint = read_expert_table(path, ids)
    if test:
        verify_fingerprint(test_fingerprint, path)
    return prob_b


def load_pair_experts(
    pairs: list[str], folds: list[int], rows: OofRows, test_ids: list[str]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Pair-expert P(b | a or b): OOF (each row from its fold's expert) and test ((n_folds, n_test):
    one row per fold's expert, in `folds` order).

    An expert must score every OOF row of its fold and every test row, not only its two
    classes: which rows it covers would otherwise tell the meta-model their label.
    """
    missing = _missing_items(pairs, folds, lambda p, k: _prediction_tables(paths.pair_item_dir(p, k)),
                             lambda p, k: f"pair@{p}-{k}")
    if missing:
        raise GrocerError(
            f"missing pair-expert outputs of {', '.join(missing)} (in {paths.MODELS_DIR}/pairs/<pair>/f<fold>/): "
            "run those pair items or remove the pairs from pairs.list"
        )
    oof: dict[str, np.ndarray] = {}
    test: dict[str, np.ndarray] = {}
    for pair in pairs:
        oof[pair] = np.zeros(len(rows.ids))
        per_fold = []
        for k in folds:
            item = paths.pair_item_dir(pair, k)
            oof[pair][rows.fold == k] = _read_expert(paths.prediction_table(item, "oof"), rows.fold_ids(k), False)
            per_fold.append(_read_expert(paths.prediction_table(item, "test"), test_ids, True))
        test[pair] = np.array(per_fold)
    return oof, test


def read_stage_predictions(directory: Path, split: str, ids: list[str], classes: list[str]) -> Predictions:
    """An ensemble stage's own output table (blend, stack, override) in the order of `ids`; test
    predictions must have been made from ingest's test set."""
    path = paths.prediction_table(directory, split)
    predictions = exactly(read_predictions(path, classes), ids, path)
    if split == "test":
        verify_fingerprint(predictions.test_fingerprint, path)
    return predictions
