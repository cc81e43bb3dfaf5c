"""A training-ready project made by the tests: classes.json, test files and fingerprint, folds.csv, image cache.

The images are procedural (a textured blob whose hue, size and stripe frequency depend on
the class, on a noisy background), learnable in a few epochs by a tiny model.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from support.dataset import write_test_set
from grocer import paths
from grocer.imagecache import save_cache
from grocer.training import resume



def class_images(rng: np.random.Generator, k: int, n_classes: int, n: int, size: int) -> np.ndarray:
    """n images of class k: (n, size, size, 3) uint8."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    hue = k / n_classes
    colour = 127 + 110 * np.array([np.cos(2 * np.pi * (hue + s / 3)) for s in range(3)], dtype=np.float32)
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        cx, cy = rng.uniform(0.35, 0.65, 2)
        radius = 0.18 + 0.12 * (k % 3) / 2 + rng.uniform(-0.03, 0.03)
        blob = ((xx - cx) ** 2 + (yy - cy) ** 2) < radius**2
        stripes = np.sin(2 * np.pi * (2 + k % 4) * (xx + yy) + rng.uniform(0, 6.3))[..., None] * 30
        background = rng.normal(120, 35, (size, size, 3))
        pixels = np.where(blob[..., None], colour * rng.uniform(0.85, 1.15) + stripes, background)
        out[i] = np.clip(pixels + rng.normal(0, 8, pixels.shape), 0, 255).astype(np.uint8)
    return out


def write_training_inputs(
    root: Path, n_classes: int = 3, per_class: int | list[int] = 10, n_test: int = 6, size: int = 40,
    n_folds: int = 2, seed: int = 0, class_names: list[str] | None = None,
) -> list[str]:
    """Write the inputs of the train/infer/pair stages under `root` (a project root); returns the classes.

    `per_class` is one count for every class or a count per class (imbalanced data).
    """
    rng = np.random.default_rng(seed)
    classes = class_names or [f"class{k}" for k in range(n_classes)]
    counts = per_class if isinstance(per_class, list) else [per_class] * len(classes)
    images, ids, labels, folds = [], [], [], []
    for k, (label, count) in enumerate(zip(classes, counts)):
        images.append(class_images(rng, k, len(classes), count, size))
        ids += [f"tr_{label}_{i:04d}" for i in range(count)]
        labels += [label] * count
        folds.append(np.arange(count) % n_folds)
    train = np.concatenate(images)
    test = np.concatenate([class_images(rng, i % len(classes), len(classes), 1, size) for i in range(n_test)])
    test_ids = [f"te_{i:04d}" for i in range(n_test)]
    folds = np.concatenate(folds)
    (root / paths.INTERIM_DIR).mkdir(parents=True, exist_ok=True)
    (root / paths.CLASSES).write_text(json.dumps({"classes": sorted(classes)}))
    (root / paths.PREPARED_DIR).mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"image_id": ids, "label": labels, "group": "", "fold": folds}).to_csv(root / paths.FOLDS, index=False)
    fingerprint = write_test_set(root, test_ids)
    save_cache(root / paths.CACHE_DIR, train, ids, test, test_ids, size, fingerprint)
    return sorted(classes)


def kill_after_an_epoch(root: Path, model: str, env: dict) -> Path:
    """Start `grocer train --model <model> --fold 0` in `root`, SIGKILL it once its resume state
    exists (an epoch is done), and return the state file's path."""
    state = root / paths.train_scratch(model, 0) / resume.STATE_FILE
    process = subprocess.Popen([sys.executable, "-m", "grocer.cli", "train", "--model", model, "--fold", "0"],
                               cwd=root, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate()
    assert process.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    return state
