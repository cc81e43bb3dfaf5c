"""The rows a train or pair item learns from and is validated on, and the run's identity.

`folds.csv` (image_id, label, group, fold) is read once and checked against the class
list; fold k's rows are the validation (OOF) rows of every item of fold k, the other
rows its training rows.
"""

from __future__ import annotations

import hashlib
import json

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


def run_key(config: dict, *splits: Split) -> str:
    """Identity of a run: its resolved config and the exact pixels and labels it sees.

    A resume state is reused only by a run with the same key, so a state left by
    another config, another fold assignment or re-cached images is never resumed.
    """
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for split in splits:
        digest.update(np.ascontiguousarray(split.labels).tobytes())
        for start in range(0, len(split.rows), 256):  # chunks: never the whole array in memory
            digest.update(np.ascontiguousarray(split.images[split.rows[start:start + 256]]).tobytes())
        digest.update(np.ascontiguousarray(split.rows).tobytes())
    return digest.hexdigest()
