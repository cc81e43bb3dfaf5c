"""Stage `cache`: decode and resize every train and test image once.

Images are decoded on every core and appended one by one to the arrays' files, so
memory stays flat however large the dataset. Training then reads the uint8 arrays
memory-mapped (grocer.imagecache) instead of decoding JPEGs every epoch. The test files
are verified against ingest's fingerprint first, and the fingerprint is stored in the
cache for the stages that read it.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import numpy as np
import pandas as pd

from grocer import paths
from grocer.dataset import split_rows, verify_test_set
from grocer.errors import GrocerError
from grocer.imagecache import save_cache
from grocer.images import DECODE_ERRORS, decode_rgb, resize_center_crop
from grocer.parallel import map_in_processes
from grocer.params import Params


def load_resized(path: str, size: int) -> np.ndarray:
    try:
        rgb = decode_rgb(path)
    except DECODE_ERRORS as exc:  # ingest decoded it: the file changed since
        raise GrocerError(f"image {path} cannot be decoded ({type(exc).__name__}: {exc}); it changed after "
                          "ingest: re-run from ingest (`dvc repro`)") from None
    return resize_center_crop(rgb, size)


def decode_all(image_paths: list[str], size: int) -> Iterator[np.ndarray]:
    return map_in_processes(partial(load_resized, size=size), image_paths)


def run(params: Params) -> None:
    fingerprint = verify_test_set(params.data)
    manifest = pd.read_parquet(paths.MANIFEST).set_index("image_id", drop=False)
    train_ids = pd.read_csv(paths.PREPARED_TRAIN, dtype=str, keep_default_na=False)["image_id"].tolist()
    test = split_rows(manifest, "test")

    train_rows = split_rows(manifest, "train")
    unknown = [i for i in train_ids if i not in train_rows.index]
    if unknown:
        raise GrocerError(f"{paths.PREPARED_TRAIN}: {len(unknown)} id(s) not in the manifest, e.g. {unknown[:3]}")
    size = params.cache.img_size
    save_cache(
        paths.CACHE_DIR,
        train=decode_all(train_rows.loc[train_ids, "path"].tolist(), size),
        train_ids=train_ids,
        test=decode_all(test["path"].tolist(), size),
        test_ids=test["image_id"].tolist(),
        img_size=size,
        test_fingerprint=fingerprint,
    )
