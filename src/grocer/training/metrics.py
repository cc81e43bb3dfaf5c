"""Classification scores on arrays, the one implementation used by training and the ensemble.

numpy only: importing sklearn.metrics adds ~0.55 s to every train and pair process (on top
of ~4 s for torch, timm and albumentations), and a default run starts 45 of them.
`labels` holds the true classes and `predicted` the predicted ones, as class indices or names.
"""

from __future__ import annotations

import numpy as np


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Share of rows predicted right; 0 for no rows."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    return float(np.mean(predicted == labels)) if len(labels) else 0.0


def macro_f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Unweighted mean of per-class F1 over the classes present in labels or predictions.

    A class absent from both is not counted (sklearn's average='macro' on its default class
    set); a class only predicted counts with F1 0. 0 for no rows.
    """
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    scores = [binary_f1(labels == c, predicted == c) for c in np.union1d(labels, predicted)]
    return float(np.mean(scores)) if scores else 0.0


def binary_f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    """F1 of the positive class (true/1); 0 when there are neither positives nor positive predictions."""
    labels, predicted = np.asarray(labels).astype(bool), np.asarray(predicted).astype(bool)
    denominator = labels.sum() + predicted.sum()
    return float(2 * np.sum(labels & predicted) / denominator) if denominator else 0.0


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); 0.5 if one class only."""
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average rank (1-based) over each run of equal scores
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
