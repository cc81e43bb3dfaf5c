"""Classification scores on arrays (numpy only: sklearn's import costs ~2 s per stage process)."""

from __future__ import annotations

import numpy as np


def macro_f1(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes present in labels or predictions."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    scores = []
    for c in range(num_classes):
        true_c, pred_c = labels == c, predicted == c
        if not true_c.any() and not pred_c.any():
            continue  # absent from both: not counted, as sklearn's average='macro' does
        tp = np.sum(true_c & pred_c)
        scores.append(2 * tp / (true_c.sum() + pred_c.sum()))
    return float(np.mean(scores)) if scores else 0.0


def binary_f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    """F1 of the positive class (1); 0 when there are neither positives nor positive predictions."""
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
