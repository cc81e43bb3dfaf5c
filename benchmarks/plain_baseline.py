"""The plain single-model script grocer is measured against (a competent user's, not a strawman).

One timm `resnet10t` from scratch at 64 px, 15 epochs, AdamW lr 2e-3 with a one-cycle
schedule, horizontal flips, cross-entropy with label smoothing 0.05, batch 64, trained on
every readable train row; no folds, no TTA, no ensemble. It reads the competition folder
directly (train.csv, train/<label>/<id> or train/<id>, test.csv, test_images/) and writes
a submission CSV. Nothing of grocer is imported: this is what a user writes alone.

    .venv/bin/python benchmarks/plain_baseline.py DATA_DIR OUT.csv [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import timm
import torch
import torch.nn.functional as F
from PIL import Image

SIZE, EPOCHS, BATCH, LR, SMOOTHING = 64, 15, 64, 2e-3, 0.05
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def load(folder: Path, ids: list[str], labels: list[str] | None) -> tuple[np.ndarray, list[int]]:
    """Images resized to SIZE x SIZE (float, normalised) and the positions that could be read."""
    images, kept = [], []
    for i, image_id in enumerate(ids):
        path = folder / labels[i] / image_id if labels and (folder / labels[i] / image_id).exists() else folder / image_id
        try:
            with Image.open(path) as im:
                images.append(np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)))
            kept.append(i)
        except (OSError, ValueError):
            if labels is None:  # a test image must be predicted: use a blank one
                images.append(np.zeros((SIZE, SIZE, 3), np.uint8))
                kept.append(i)
    x = (np.stack(images) / 255.0 - MEAN) / STD
    return x.transpose(0, 3, 1, 2).astype(np.float32), kept


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    train = pd.read_csv(args.data_dir / "train.csv", dtype=str)
    test = pd.read_csv(args.data_dir / "test.csv", dtype=str)
    classes = sorted(train["label"].unique())
    x, kept = load(args.data_dir / "train", train["image_id"].tolist(), train["label"].tolist())
    y = np.array([classes.index(c) for c in train["label"].iloc[kept]])
    x_test, _ = load(args.data_dir / "test_images", test["image_id"].tolist(), None)

    model = timm.create_model("resnet10t", pretrained=False, num_classes=len(classes))
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.05)
    steps = EPOCHS * int(np.ceil(len(x) / BATCH))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps)
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    for epoch in range(EPOCHS):
        model.train()
        order = rng.permutation(len(x))
        for start in range(0, len(x), BATCH):
            idx = order[start:start + BATCH]
            xb = x_t[idx]
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
            xb[flip] = xb[flip].flip(-1)
            loss = F.cross_entropy(model(xb), y_t[idx], label_smoothing=SMOOTHING)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch}: loss {loss.item():.3f}", file=sys.stderr)

    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(b).argmax(1) for b in torch.from_numpy(x_test).split(256)]).numpy()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"image_id": test["image_id"], "label": [classes[p] for p in pred]}).to_csv(args.out, index=False)
    print(f"baseline: {len(x)} train images, {time.perf_counter() - started:.0f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
