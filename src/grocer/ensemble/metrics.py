"""What the ensemble stages report on arrays: log-loss, OOF scores, confusion, binary scores.

`y` holds the true classes (class indices or names), `pred` the predicted ones, `probs`
an (n, n_classes) array whose rows sum to 1 (column k = class index k). Accuracy, F1 and
AUC come from grocer.training.metrics (one implementation for training and ensemble);
log-loss and the confusion matrix are sklearn's, with the class set fixed
(`labels=range(n_classes)`) so a class absent from a partial set of rows does not shift
the columns.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from grocer.training.metrics import accuracy, binary_f1, macro_f1, roc_auc


def log_loss(y: np.ndarray, probs: np.ndarray) -> float:
    probs = np.asarray(probs, dtype=np.float64)
    probs = probs / probs.sum(axis=1, keepdims=True)  # float32 tables sum to 1 only within 1e-7
    return float(skm.log_loss(y, probs, labels=np.arange(probs.shape[1])))


def oof_scores(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """The numbers every ensemble step reports on its OOF rows."""
    pred = probs.argmax(axis=1)
    return {"oof_acc": accuracy(y, pred), "oof_f1": macro_f1(y, pred), "oof_logloss": log_loss(y, probs)}


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts: row = true class, column = predicted class."""
    return skm.confusion_matrix(y, pred, labels=np.arange(n_classes))


def top_confusions(matrix: np.ndarray, n: int) -> list[tuple[int, int, int]]:
    """The `n` largest off-diagonal cells as (true, predicted, count), largest first, count > 0."""
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:n]
    cells = [(int(i), int(j), int(off[i, j])) for i, j in zip(*np.unravel_index(order, off.shape))]
    return [cell for cell in cells if cell[2] > 0]


def most_confused_pairs(matrix: np.ndarray, n: int, exclude: set[frozenset[int]]) -> list[tuple[int, int, int]]:
    """The `n` class pairs {i, j} (i < j) with the most confusions both ways (matrix[i, j] +
    matrix[j, i]), largest first, count > 0, leaving out the pairs in `exclude`; ties by index."""
    both = matrix + matrix.T
    i, j = np.triu_indices(matrix.shape[0], k=1)
    counts = both[i, j]
    order = np.argsort(-counts, kind="stable")
    pairs = [(int(i[k]), int(j[k]), int(counts[k])) for k in order
             if counts[k] > 0 and frozenset((int(i[k]), int(j[k]))) not in exclude]
    return pairs[:n]


def binary_scores(is_positive: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    """AUC (only when both outcomes occur) and F1 at 0.5 and at `threshold` for a binary scorer."""
    out = {"f1_at_05": binary_f1(is_positive, score >= 0.5), "f1_tuned": binary_f1(is_positive, score >= threshold)}
    if 0 < is_positive.sum() < is_positive.size:
        out["auc"] = roc_auc(is_positive, score)
    return out
