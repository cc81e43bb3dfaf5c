"""A tiny project for the review tests: images, manifest, class list, clean outputs.

Built by hand (not by running ingest/clean) so the review tests depend only on the
file formats of the contract. Layout, relative to `root` (the test's cwd):

    data/raw/train/<label>/<id>.png    4 images per class (orange, mandarin, kiwi)
    data/raw/test_images/te_<k>.png    2 test images (in the manifest, never reviewable)
    data/interim/manifest.parquet      measured with grocer.images.inspect_image
    data/interim/classes.json
    data/interim/clean/                ki_3 is unreadable (drop), ma_3 an outlier (quarantine)
    data/predictions/blend/oof.parquet only with predictions=True

With duplicates=True, ma_4.png is a byte copy of or_1.png filed under mandarin: clean
drops both as cross_label_duplicate, and the pair is one duplicate group (ma_4 the
keeper: same size, first id).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from support.dataset import draw_image
from grocer import paths
from grocer.images import inspect_image
from grocer.predictions import write_predictions

CLASSES = ["kiwi", "mandarin", "orange"]
COLOURS = {"orange": (235, 125, 20), "mandarin": (245, 160, 40), "kiwi": (120, 95, 45)}
PREFIX = {"orange": "or", "mandarin": "ma", "kiwi": "ki"}
DROPPED, QUARANTINED = "ki_3.png", "ma_3.png"
COPY, ORIGINAL = "ma_4.png", "or_1.png"


def build(root: Path, predictions: bool = False, size: int = 64, duplicates: bool = False) -> pd.DataFrame:
    """Write the project under `root` (paths relative to it); returns the manifest."""
    rng = np.random.default_rng(0)
    rows = []
    for label in ["orange", "mandarin", "kiwi"]:
        folder = root / "data/raw/train" / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(4):
            image_id = f"{PREFIX[label]}_{i}.png"
            draw_image(rng, COLOURS[label], (size + 8 * i, size)).save(folder / image_id)
            rows.append({"split": "train", "image_id": image_id, "label": label, "group": f"{label}-g{i % 2}",
                         "path": f"data/raw/train/{label}/{image_id}"})
    (root / "data/raw/train/kiwi" / DROPPED).write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    if duplicates:
        (root / "data/raw/train/mandarin" / COPY).write_bytes((root / "data/raw/train/orange" / ORIGINAL).read_bytes())
        rows.append({"split": "train", "image_id": COPY, "label": "mandarin", "group": "mandarin-g0",
                     "path": f"data/raw/train/mandarin/{COPY}"})
    (root / "data/raw/test_images").mkdir(parents=True)
    for k in range(2):
        draw_image(rng, COLOURS["orange"], (size, size)).save(root / f"data/raw/test_images/te_{k}.png")
        rows.append({"split": "test", "image_id": f"te_{k}.png", "label": None, "group": None,
                     "path": f"data/raw/test_images/te_{k}.png"})
    listing = pd.DataFrame(rows)
    measured = pd.DataFrame([inspect_image(root / p) for p in listing["path"]])
    manifest = pd.concat([listing, measured], axis=1)
    (root / paths.INTERIM_DIR).mkdir(parents=True, exist_ok=True)
    manifest.to_parquet(root / paths.MANIFEST, index=False)
    (root / paths.CLASSES).write_text(json.dumps({"classes": CLASSES}))

    train = manifest[manifest["split"] == "train"][["image_id", "label", "group"]].copy()
    train["decision"] = "keep"
    train["reasons"] = ""
    train.loc[train["image_id"] == DROPPED, ["decision", "reasons"]] = ["drop", "unreadable"]
    train.loc[train["image_id"] == QUARANTINED, ["decision", "reasons"]] = ["quarantine", "outlier"]
    if duplicates:
        train.loc[train["image_id"].isin([COPY, ORIGINAL]), ["decision", "reasons"]] = ["drop", "cross_label_duplicate"]
    clean = root / paths.CLEAN_DIR
    clean.mkdir(parents=True)
    train.to_csv(clean / "decisions.csv", index=False)
    columns = ["image_id", "label", "group"]
    train[train["decision"] != "drop"][columns].to_csv(clean / "strict.csv", index=False)
    train[train["decision"] == "keep"][columns].to_csv(clean / "aggressive.csv", index=False)
    train[train["decision"] == "quarantine"][[*columns, "reasons"]].to_csv(clean / "quarantine.csv", index=False)

    if predictions:
        write_oof(root / paths.BLEND_DIR / "oof.parquet", train)
    return manifest


def write_oof(path: Path, train: pd.DataFrame) -> None:
    """Confident, correct predictions, except or_2 (the model says mandarin, 80%)."""
    ids = list(train["image_id"])
    probs = np.full((len(ids), len(CLASSES)), 0.05)
    for row, label in enumerate(train["label"]):
        probs[row, CLASSES.index(label)] = 0.9
    probs[ids.index("or_2.png")] = [0.05, 0.8, 0.15]
    probs /= probs.sum(axis=1, keepdims=True)
    write_predictions(path, ids, np.log(probs), probs, CLASSES)


def sha(manifest: pd.DataFrame, image_id: str) -> str:
    return manifest.set_index("image_id").at[image_id, "file_sha256"]
