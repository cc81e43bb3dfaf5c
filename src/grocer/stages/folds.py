"""Stage `folds`: seeded cross-validation folds over the prepared training table.

Strategies (`folds.strategy`):
  label_group  StratifiedKFold on the label+group key: every product code is spread
               over the folds with its label's proportions (the default).
  label        StratifiedKFold on the label alone.
  group        StratifiedGroupKFold: a group (product code) never spans two folds,
               so validation measures generalisation to unseen product codes.
Without a group column, label_group falls back to label (reported as
`group_fallback` in metrics/folds.json) and `group` is an error.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from grocer import atomic, paths
from grocer.errors import GrocerError
from grocer.params import FoldsParams, Params


def has_groups(train: pd.DataFrame) -> bool:
    return bool(train["group"].notna().any())


def assign_folds(train: pd.DataFrame, folds: FoldsParams) -> np.ndarray:
    """Fold index per row. Pure: the same table and params give the same folds."""
    labels = train["label"].to_numpy()
    if labels.size and pd.Series(labels).value_counts().min() < folds.n_splits:
        rare = pd.Series(labels).value_counts().idxmin()
        raise GrocerError(f"folds: class {rare!r} has fewer images than folds.n_splits={folds.n_splits}")
    fold_of = np.full(len(train), -1, dtype=np.int64)
    if folds.strategy == "group":
        if not has_groups(train):
            raise GrocerError("folds.strategy=group needs a group column (data.group_col)")
        splitter = StratifiedGroupKFold(n_splits=folds.n_splits, shuffle=True, random_state=folds.seed)
        splits = splitter.split(train, labels, groups=train["group"].astype(str).to_numpy())
    else:
        key = labels
        if folds.strategy == "label_group" and has_groups(train):
            key = (train["label"] + "|" + train["group"].astype(str)).to_numpy()
        splitter = StratifiedKFold(n_splits=folds.n_splits, shuffle=True, random_state=folds.seed)
        with warnings.catch_warnings():
            # a label+group key rarer than n_splits is expected: it is spread as evenly as possible
            # (split() is a generator: it warns while it is iterated, so it is iterated here)
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            splits = list(splitter.split(train, key))
    for k, (_, val_rows) in enumerate(splits):
        fold_of[val_rows] = k
    return fold_of


def fold_metrics(table: pd.DataFrame, n_splits: int) -> dict:
    overall = table["label"].value_counts(normalize=True)
    metrics: dict = {"n_splits": n_splits, "n_rows": int(len(table))}
    worst = 0.0
    for k in range(n_splits):
        part = table[table["fold"] == k]
        metrics[f"fold{k}_size"] = int(len(part))
        share = part["label"].value_counts(normalize=True).reindex(overall.index, fill_value=0.0)
        worst = max(worst, float((share - overall).abs().max()))
    metrics["max_class_share_deviation"] = worst
    if has_groups(table):
        metrics["groups_in_several_folds"] = int((table.groupby("group")["fold"].nunique() > 1).sum())
    return metrics


def run(params: Params) -> None:
    train = pd.read_csv(paths.PREPARED_TRAIN, dtype=str, keep_default_na=False)
    train["group"] = train["group"].replace("", pd.NA)
    fold_of = assign_folds(train, params.folds)
    table = train.assign(fold=fold_of)
    metrics = fold_metrics(table, params.folds.n_splits)
    fallback = params.folds.strategy == "label_group" and not has_groups(train)
    metrics["group_fallback"] = int(fallback)
    if fallback:
        print("folds: no group column, so label_group falls back to the label alone", file=sys.stderr)
    with atomic.together() as staged:
        staged.write_frame(paths.FOLDS, table)
        staged.write_json(paths.metrics_file("folds"), metrics)
