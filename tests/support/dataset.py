"""Tiny datasets in the data contract's layout: train/<label>/<id>.png, test_images/, CSVs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from grocer import paths
from grocer.dataset import fingerprint_record
from grocer.images import file_sha256


def draw_image(rng: np.random.Generator, colour: tuple[int, int, int], size: tuple[int, int]) -> Image.Image:
    """A textured disc of `colour` on a noisy background: distinct per class, never blank."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    background = rng.integers(60, 200, size=(h, w, 3)).astype(np.float64)
    cx, cy, r = w / 2 + rng.uniform(-4, 4), h / 2 + rng.uniform(-4, 4), min(w, h) * rng.uniform(0.25, 0.4)
    disc = ((xx - cx) ** 2 + (yy - cy) ** 2) < r**2
    texture = rng.normal(0, 18, size=(h, w, 1))
    pixels = np.where(disc[..., None], np.array(colour) + texture, background)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


COLOURS = [(230, 120, 20), (240, 150, 30), (200, 30, 40), (220, 50, 30), (120, 90, 40), (170, 140, 90)]


def write_dataset(
    root: Path,
    classes: int = 3,
    per_class: int = 12,
    n_test: int = 9,
    size: tuple[int, int] = (64, 64),
    groups_per_class: int = 2,
    with_groups: bool = True,
    seed: int = 0,
) -> Path:
    """A tiny competition folder: train/<label>/<id>.png, test_images/, CSVs."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(classes):
        label = f"class{k}"
        (root / "train" / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image_id = f"tr_{k}_{i:03d}.png"
            draw_image(rng, COLOURS[k % len(COLOURS)], size).save(root / "train" / label / image_id)
            rows.append({"image_id": image_id, "label": label, "group": f"g{k}{i % groups_per_class}"})
    train = pd.DataFrame(rows)
    if not with_groups:
        train = train.drop(columns="group")
    train.to_csv(root / "train.csv", index=False)
    (root / "test_images").mkdir(parents=True, exist_ok=True)
    test_ids = [f"te_{i:03d}.png" for i in range(n_test)]
    for i, image_id in enumerate(test_ids):
        draw_image(rng, COLOURS[i % classes], size).save(root / "test_images" / image_id)
    pd.DataFrame({"image_id": test_ids}).to_csv(root / "test.csv", index=False)
    pd.DataFrame({"image_id": test_ids, "label": "class0"}).to_csv(root / "sample_submission.csv", index=False)
    return root


def write_test_set(root: Path, ids: list[str], data_dir: str = "data/sample", id_col: str = "image_id",
                   label_col: str = "label", order: list[str] | None = None, label: str = "class0") -> str:
    """The test half of a dataset under root/data_dir (a tiny PNG per id, the same bytes for the
    same id; test.csv; sample_submission.csv in `order`) and ingest's fingerprint of it under
    root; returns the fingerprint's sha256."""
    folder = root / data_dir / "test_images"
    folder.mkdir(parents=True, exist_ok=True)
    for k, image_id in enumerate(ids):
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8), (k % 256, k // 256 % 256, 7)).save(buffer, "PNG")
        (folder / image_id).write_bytes(buffer.getvalue())
    pd.DataFrame({id_col: ids}).to_csv(root / data_dir / "test.csv", index=False)
    pd.DataFrame({id_col: order or ids, label_col: label}).to_csv(root / data_dir / "sample_submission.csv", index=False)
    record = fingerprint_record(ids, [file_sha256(folder / i) for i in ids])
    (root / paths.TEST_FINGERPRINT).parent.mkdir(parents=True, exist_ok=True)
    (root / paths.TEST_FINGERPRINT).write_text(json.dumps(record))
    return record["sha256"]
