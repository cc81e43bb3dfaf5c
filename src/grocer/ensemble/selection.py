"""Worst-group-aware choice of the submitted step (`submit.source: auto`).

A private split under group shift (new product codes, other shops) punishes a step that
is right on average but weak on some groups. Each candidate step is scored on its OOF
rows by

    score = acc - group_weight * (acc - q)

where acc is its OOF accuracy and q the `group_quantile` quantile of its per-group OOF
accuracies (0: the worst group). Without groups the score is the accuracy. Ties go to
the earlier (simpler) candidate.

The choice is itself tuned on OOF rows, so its own score is cross-fitted like every other
tuned step (grocer.ensemble.crossfit): the rows of evaluation fold k are predicted by the
step chosen on the other folds' rows.
"""

from __future__ import annotations

import numpy as np

from grocer.ensemble.crossfit import cross_fit


def group_quantile(correct: np.ndarray, groups: np.ndarray, quantile: float) -> float:
    """The `quantile` of the per-group accuracies (each group weighs the same)."""
    _, index = np.unique(groups, return_inverse=True)
    per_group = np.bincount(index, weights=correct.astype(np.float64)) / np.bincount(index)
    return float(np.quantile(per_group, quantile))


def step_score(correct: np.ndarray, groups: np.ndarray | None, weight: float, quantile: float) -> dict[str, float]:
    """OOF accuracy, worst-group quantile (when there are groups) and the selection score of one step."""
    acc = float(correct.mean())
    if groups is None:
        return {"oof_acc": acc, "score": acc}
    q = group_quantile(correct, groups, quantile)
    return {"oof_acc": acc, "group_q": q, "score": acc - weight * (acc - q)}


def choose(correct: dict[str, np.ndarray], groups: np.ndarray | None, weight: float, quantile: float) -> str:
    """The candidate (in the given order) with the best score; the first of equals."""
    best, best_score = "", -np.inf
    for name, right in correct.items():
        score = step_score(right, groups, weight, quantile)["score"]
        if score > best_score:
            best, best_score = name, score
    return best


def cross_fitted_choice(
    correct: dict[str, np.ndarray], groups: np.ndarray | None, eval_fold: np.ndarray, weight: float, quantile: float
) -> np.ndarray:
    """Per OOF row, whether the step chosen without its evaluation fold is right there."""
    table = np.stack(list(correct.values()), axis=1)  # (rows, candidates)
    names = list(correct)

    def fit(train: np.ndarray) -> int:
        train_groups = None if groups is None else groups[train]
        return names.index(choose({n: table[train, k] for k, n in enumerate(names)}, train_groups, weight, quantile))

    return cross_fit(eval_fold, fit, lambda k, held_out: table[held_out, k])
