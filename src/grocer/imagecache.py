"""The decoded-image cache: every train/test image once, as uint8 RGB arrays.

Layout of `data/prepared/cache/`:
    train.npy   (N, S, S, 3) uint8, rows in the order of index.json's train_ids
    test.npy    (M, S, S, 3) uint8, rows in the order of test_ids
    index.json  {"img_size": S, "train_ids": [...], "test_ids": [...], "test_fingerprint": sha}

Training reads these memory-mapped, so no JPEG is decoded per epoch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
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
    train: Iterable[np.ndarray],
    train_ids: list[str],
    test: Iterable[np.ndarray],
    test_ids: list[str],
    img_size: int,
    test_fingerprint: str,
) -> None:
    """Write the whole cache directory atomically.

    `train` and `test` yield one (S, S, 3) uint8 image per id (an array of them will do);
    each is appended to its .npy as it comes, so the cache is never held in RAM.
    """
    with atomic.replace_dir(directory) as tmp:
        for name, images, ids in (("train", train, train_ids), ("test", test, test_ids)):
            _write_images(tmp / f"{name}.npy", images, len(ids), img_size, name)
        index = {"img_size": img_size, "train_ids": list(train_ids), "test_ids": list(test_ids),
                 "test_fingerprint": test_fingerprint}
        (tmp / "index.json").write_text(json.dumps(index))


def _write_images(path: Path, images: Iterable[np.ndarray], n: int, size: int, name: str) -> None:
    """A (n, size, size, 3) uint8 .npy written image by image: plain appends, no array in memory."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
              "shape": (n, size, size, 3)}
    written = 0
    with path.open("wb") as out:
        np.lib.format.write_array_header_1_0(out, header)
        for image in images:
            if written == n:
                raise ValueError(f"{name} cache: more images than its {n} ids")
            if image.dtype != np.uint8 or image.shape != (size, size, 3):
                raise ValueError(f"{name} cache: image {written} is {image.shape} {image.dtype}, "
                                 f"not ({size}, {size}, 3) uint8")
            out.write(np.ascontiguousarray(image).data)
            written += 1
    if written != n:
        raise ValueError(f"{name} cache: {written} images for {n} ids")


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
