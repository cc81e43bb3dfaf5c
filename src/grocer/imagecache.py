"""The decoded-image cache: every train/test image once, as uint8 RGB arrays.

Layout of `data/prepared/cache/`:
    train.npy   (N, S, S, 3) uint8, rows in the order of index.json's train_ids
    test.npy    (M, S, S, 3) uint8, rows in the order of test_ids
    index.json  {"img_size": S, "train_ids": [...], "test_ids": [...], "test_fingerprint": sha}

Training reads these memory-mapped, so no JPEG is decoded per epoch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grocer import atomic, paths
from grocer.errors import GrocerError


@dataclass(frozen=True)
class ImageCache:
    train: np.ndarray  # (N, S, S, 3) uint8, memory-mapped
    train_ids: list[str]
    test: np.ndarray  # (M, S, S, 3) uint8, memory-mapped
    test_ids: list[str]
    img_size: int
    test_fingerprint: str

    def train_rows(self, ids: list[str]) -> np.ndarray:
        """Row positions in `train` of the given ids; every id must be cached."""
        position = {image_id: i for i, image_id in enumerate(self.train_ids)}
        missing = [i for i in ids if i not in position]
        if missing:
            raise GrocerError(f"image cache has no row for {len(missing)} id(s), e.g. {missing[:3]}; rerun `dvc repro cache`")
        return np.array([position[i] for i in ids], dtype=np.int64)


def save_cache(
    directory: Path,
    train: np.ndarray,
    train_ids: list[str],
    test: np.ndarray,
    test_ids: list[str],
    img_size: int,
    test_fingerprint: str,
) -> None:
    """Write the whole cache directory atomically."""
    for name, array, ids in (("train", train, train_ids), ("test", test, test_ids)):
        if array.dtype != np.uint8 or array.shape[1:] != (img_size, img_size, 3) or len(array) != len(ids):
            raise ValueError(f"{name} cache: shape {array.shape} {array.dtype} vs {len(ids)} ids of {img_size}px")
    with atomic.replace_dir(directory) as tmp:
        np.save(tmp / "train.npy", train)
        np.save(tmp / "test.npy", test)
        index = {"img_size": img_size, "train_ids": list(train_ids), "test_ids": list(test_ids),
                 "test_fingerprint": test_fingerprint}
        (tmp / "index.json").write_text(json.dumps(index))


def load_cache(directory: Path = paths.CACHE_DIR) -> ImageCache:
    index_file = directory / "index.json"
    if not index_file.is_file():
        raise GrocerError(f"{directory}: no image cache; run `dvc repro cache` first")
    index = json.loads(index_file.read_text())
    return ImageCache(
        train=np.load(directory / "train.npy", mmap_mode="r"),
        train_ids=index["train_ids"],
        test=np.load(directory / "test.npy", mmap_mode="r"),
        test_ids=index["test_ids"],
        img_size=index["img_size"],
        test_fingerprint=index["test_fingerprint"],
    )
