"""Honest evaluation of anything tuned on OOF rows: cross-fitting over evaluation folds.

Every ensemble step that learns from OOF predictions (bias, meta-model, override
thresholds) is scored the same way: the rows of evaluation fold k get predictions from
a fit on the other folds' rows only, so the reported OOF numbers are held-out.

Evaluation folds are the base CV folds when at least two are available. In quick mode
(`run.folds=[0]`) there is a single base fold; its rows are then split again, with the
project's own fold settings (n_splits, seed; groups kept whole when there are groups).
That is still honest: the base models never saw these rows, and each row is scored by
a fit that did not see it either.
"""

from __future__ import annotations

import warnings
from typing import Callable, TypeVar

import numpy as np
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold, StratifiedKFold

from grocer.errors import GrocerError

Fitted = TypeVar("Fitted")


def evaluation_folds(
    base_fold: np.ndarray, y: np.ndarray, groups: np.ndarray | None, n_splits: int, seed: int
) -> np.ndarray:
    """Evaluation fold index (0..F-1) per row.

    Args:
        base_fold: the CV fold each OOF row was held out in.
        y: class index per row (stratification of the inner split).
        groups: group per row, or None; an inner split never cuts a group.
        n_splits, seed: the inner split's settings, used only with a single base fold.
    """
    folds = np.unique(base_fold)
    if folds.size >= 2:
        return np.searchsorted(folds, base_fold)
    n_splits = min(n_splits, int(np.bincount(y).max()))
    if groups is not None:
        n_splits = min(n_splits, np.unique(groups).size)
    if n_splits < 2:  # before the splitter, which refuses n_splits=1 with a ValueError of its own
        raise GrocerError(
            f"{y.size} OOF rows of one fold cannot be split for honest evaluation (too few rows or groups)"
        )
    if groups is not None:
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    else:
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    inner = np.full(y.size, -1, dtype=np.int64)
    with warnings.catch_warnings():
        # a class rarer than n_splits in one fold's rows is expected; it is spread as well as it can be
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for k, (_, held_out) in enumerate(splitter.split(np.zeros(y.size), y, groups)):
            inner[held_out] = k
    return inner


def group_folds(groups: np.ndarray, n_splits: int) -> np.ndarray:
    """Leave-group-out folds: GroupKFold into min(n_groups, n_splits) folds, a group held out whole."""
    n_splits = min(n_splits, np.unique(groups).size)
    if n_splits < 2:
        raise GrocerError("leave-group-out needs at least two groups")
    fold = np.full(groups.size, -1, dtype=np.int64)
    for k, (_, held_out) in enumerate(GroupKFold(n_splits=n_splits).split(np.zeros(groups.size), groups=groups)):
        fold[held_out] = k
    return fold


def cross_fit(
    eval_fold: np.ndarray, fit: Callable[[np.ndarray], Fitted], predict: Callable[[Fitted, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Held-out predictions: rows of fold k from `fit(rows not in k)`.

    Args:
        eval_fold: evaluation fold per row (from `evaluation_folds`).
        fit: takes the training row indices, returns a fitted thing.
        predict: takes the fitted thing and the held-out row indices, returns their
            predictions (first axis = those rows).

    Returns:
        The held-out predictions of every row, stacked in row order.
    """
    parts: dict[int, np.ndarray] = {}
    for k in np.unique(eval_fold):
        held_out = np.flatnonzero(eval_fold == k)
        fitted = fit(np.flatnonzero(eval_fold != k))
        parts[int(k)] = np.asarray(predict(fitted, held_out))
    first = next(iter(parts.values()))
    out = np.empty((eval_fold.size, *first.shape[1:]), dtype=first.dtype)
    for k, part in parts.items():
        out[eval_fold == k] = part
    return out
