"""A generated review project for the review benchmarks: a competition folder with
known wrong labels and copies, run through the real `ingest` and `clean` stages, plus
out-of-fold predictions of a simulated model (the pipeline's models would take hours).

Images are smooth 256 px JPEGs (low-frequency colour noise around a class colour), so
10,000 of them are ~100 MB and decode like photos. `wrong` of each class's images
(chosen at random) carry another class's label; `copies` of the images reappear as byte copies, half
under another label (clean drops those as cross-label duplicates), half under their
own. The simulated model gives every image its true class with probability 0.6-0.95,
so a wrong label is usually doubted, as with a decent real model. `start_server` serves a
review app on a free port in a thread. Used by benchmarks/review_keystrokes.py and
benchmarks/review_scale.py; not run on its own.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import uvicorn
import yaml
from PIL import Image

from grocer import params as params_module
from grocer import paths
from grocer.predictions import write_predictions
from grocer.review.server import bind

REPO = Path(__file__).resolve().parents[1]
COLOURS = [(220, 60, 40), (235, 170, 40), (90, 160, 60), (120, 70, 150), (60, 110, 200), (200, 200, 190),
           (140, 90, 50), (230, 120, 160), (40, 160, 160), (170, 170, 60)]
SIDE = 256


def draw(rng: np.random.Generator, colour: tuple[int, int, int]) -> Image.Image:
    base = rng.normal(0, 38, size=(8, 8, 3)) + np.array(colour)
    small = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    return small.resize((SIDE, SIDE), Image.Resampling.BICUBIC)


def build(root: Path, counts: dict[str, int], wrong: float, copies: float, seed: int = 0) -> pd.DataFrame:
    """Write and ingest the project under `root` (the cwd afterwards); returns the truth table.

    Args:
        root: an empty folder; becomes the working directory (grocer's paths are relative).
        counts: images per class, by class name (the labels as given, copies not counted).
        wrong: fraction of each class's images whose label is another class.
        copies: fraction of all images that get a byte copy under a new id.

    Returns:
        image_id, label (as given), true_label, copy_of ("" for originals).
    """
    rng = np.random.default_rng(seed)
    classes = sorted(counts)
    data = root / "data/raw"
    rows = []
    for c, label in enumerate(classes):
        wrong_ones = set(rng.choice(counts[label], size=round(wrong * counts[label]), replace=False).tolist())
        for i in range(counts[label]):
            true = label if i not in wrong_ones else classes[(c + 1 + i % (len(classes) - 1)) % len(classes)]
            rows.append({"image_id": f"{label}_{i:05d}.jpg", "label": label, "true_label": true, "copy_of": ""})
    frame = pd.DataFrame(rows)
    originals = frame.sample(frac=copies, random_state=seed) if copies else frame.iloc[:0]
    extra = []
    for k, row in enumerate(originals.itertuples(index=False)):
        label = row.label if k % 2 else classes[(classes.index(row.label) + 1) % len(classes)]
        extra.append({"image_id": f"copy_{k:05d}.jpg", "label": label, "true_label": row.true_label,
                      "copy_of": row.image_id})
    frame = pd.concat([frame, pd.DataFrame(extra, columns=frame.columns)], ignore_index=True)

    files = {}
    for row in frame.itertuples(index=False):
        folder = data / "train" / row.label
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / row.image_id
        if row.copy_of:
            path.write_bytes(files[row.copy_of].read_bytes())
        else:
            draw(rng, COLOURS[classes.index(row.true_label) % len(COLOURS)]).save(path, quality=88)
        files[row.image_id] = path
    frame[["image_id", "label"]].to_csv(data / "train.csv", index=False)
    (data / "test_images").mkdir(parents=True)
    test_ids = [f"test_{k}.jpg" for k in range(8)]
    for k, image_id in enumerate(test_ids):
        draw(rng, COLOURS[k % len(classes)]).save(data / "test_images" / image_id, quality=88)
    pd.DataFrame({"image_id": test_ids}).to_csv(data / "test.csv", index=False)
    pd.DataFrame({"image_id": test_ids, "label": classes[0]}).to_csv(data / "sample_submission.csv", index=False)

    config = yaml.safe_load((REPO / paths.PARAMS).read_text())
    config["data"].update({"dir": "data/raw", "group_col": None})
    os.chdir(root)
    paths.PARAMS.write_text(yaml.safe_dump(config, sort_keys=False))
    params = params_module.load()
    from grocer.stages import clean, ingest  # imported here: they load the process pool

    ingest.run(params)
    clean.run(params)
    write_oof(frame, classes, rng)
    return frame


def write_oof(truth: pd.DataFrame, classes: list[str], rng: np.random.Generator) -> None:
    """A simulated model's OOF table: the true class at p 0.6-0.95, the rest spread at random."""
    n = len(truth)
    probs = rng.dirichlet(np.ones(len(classes)), size=n) * 0.4
    true = truth["true_label"].map(classes.index).to_numpy()
    top = rng.uniform(0.6, 0.95, size=n)
    probs *= ((1 - top) / probs.sum(axis=1))[:, None]
    probs[np.arange(n), true] += top
    write_predictions(paths.prediction_table(paths.BLEND_DIR, "oof"), list(truth["image_id"]), np.log(probs), probs,
                      classes)


def start_server(app) -> tuple[uvicorn.Server, threading.Thread, int]:
    """`app` under uvicorn on a free port of 127.0.0.1, in a daemon thread: (server, thread, port)."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread, sock.getsockname()[1]
