"""The rows a train or pair item learns from and is validated on.

`folds.csv` (image_id, label, group, fold) is read once and checked against the class
list; fold k's rows are the validation (OOF) rows of every item of fold k, the other
rows its training rows.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from grocer import paths
from grocer.dataset import read_csv
from grocer.errors import GrocerError
from grocer.imagecache import ImageCache
from grocer.training.data import Split


def read_folds(classes: list[str], fold: int) -> pd.DataFrame:
    """folds.csv with `y` (class index); fold `fold` must have rows, every label must be a class."""
    table = read_csv(paths.FOLDS, ["image_id", "label", "fold"])
    unknown = sorted(set(table["label"]) - set(classes))
    if unknown:
        raise GrocerError(f"{paths.FOLDS}: label(s) {unknown[:3]} are not in {paths.CLASSES}")
    table["fold"] = table["fold"].astype(int)
    if not (table["fold"] == fold).any():
        raise GrocerError(f"{paths.FOLDS}: fold {fold} has no rows (folds: {sorted(table['fold'].unique())})")
    table["y"] = table["label"].map({c: k for k, c in enumerate(classes)}).astype(np.int64)
    return table


def cache_split(cache: ImageCache, rows: pd.DataFrame, labels: np.ndarray) -> Split:
    """The cache rows of `rows.image_id`, with `labels`."""
    return Split(cache.train, cache.train_rows(rows["image_id"].tolist()), np.asarray(labels, dtype=np.int64))
