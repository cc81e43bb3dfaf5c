"""The defects injected into the sample's train set (never the test set).

Each defective row is recorded in `train_truth.csv` with its true label, so the clean
and review stages (and cleanlab-style label checks) can be scored against the truth:

- too_small: a thumbnail whose shorter side is below 56 px (clean.min_side's default).
- blank: a near-uniform frame (lens cap, blown exposure, an empty crate).
- unreadable: a JPEG cut short; Pillow's `load()` raises on it.
- exact_duplicate: the same file bytes again under another id, same label.
- cross_label_duplicate: the same file bytes again under another id and another label.
- wrong_label: the photo of one class filed under another (mostly its confusable partner),
  as when a cashier keys the wrong product code.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

DEFECTS = ("too_small", "blank", "unreadable", "exact_duplicate", "cross_label_duplicate", "wrong_label")

SMALL_SIDE = (34, 52)  # shorter side of a too_small image, inclusive


def defect_counts(n_train: int) -> dict[str, int]:
    """How many train rows carry each defect: ~1% small, ~1% blank, 5 unreadable,
    ~1% exact and ~0.5% cross-label duplicates, ~2% wrong labels (at least 2 of each)."""
    return {
        "too_small": max(2, round(0.01 * n_train)),
        "blank": max(2, round(0.01 * n_train)),
        "unreadable": 5,
        "exact_duplicate": max(2, round(0.01 * n_train)),
        "cross_label_duplicate": max(2, round(0.005 * n_train)),
        "wrong_label": max(4, round(0.02 * n_train)),
    }


def blank_image(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A near-uniform (height, width, 3) frame: dark, blown-out or a flat grey-ish surface."""
    width, height = size
    kind = rng.integers(3)
    if kind == 0:
        level = rng.uniform(0.02, 0.1, 1).repeat(3)
    elif kind == 1:
        level = rng.uniform(0.92, 0.99, 1).repeat(3)
    else:  # a flat surface, nearly grey: a strong tint alone would already lift the pixel std
        level = rng.uniform(0.3, 0.8) * rng.normal(1, 0.008, 3)
    pixels = level * 255 + rng.normal(0, 0.8, (height, width, 3))
    return np.clip(pixels + 0.5, 0, 255).astype(np.uint8)


def shrink(rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """The photo as a thumbnail with a shorter side in SMALL_SIDE."""
    height, width = rgb.shape[:2]
    scale = int(rng.integers(SMALL_SIDE[0], SMALL_SIDE[1] + 1)) / min(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))


def truncate(rng: np.random.Generator, data: bytes) -> bytes:
    """The JPEG cut to 35-75% of its bytes: the header parses, decoding the pixels fails."""
    return data[: math.floor(len(data) * rng.uniform(0.35, 0.75))]
