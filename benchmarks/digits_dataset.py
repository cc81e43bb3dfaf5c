"""A second dataset the sample generator did not make: scikit-learn's handwritten digits.

scikit-learn ships the UCI optical-recognition digits (1,797 scans of 43 writers,
8 x 8 grey levels 0-16) inside the package, so no download is needed. This writes them
as a competition folder in grocer's data contract, upscaled to 64 px (bicubic, dark ink
on light paper), with a seeded stratified split of 500 test images whose labels go to a
separate truth file:

    .venv/bin/python benchmarks/digits_dataset.py OUT
    # OUT/data/{train.csv, train/<digit>/*.png, test.csv, test_images/, sample_submission.csv}
    # OUT/test_labels.csv
    .venv/bin/python benchmarks/vs_baseline.py --data OUT/data --test-labels OUT/test_labels.csv \
        -S data.group_col=null -S 'pairs.list=[]'

The digits have no product codes (no group column) and no confusable-pair list.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SIZE = 64
N_TEST = 500
NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def to_image(pixels: np.ndarray) -> Image.Image:
    grey = (255 - pixels.reshape(8, 8) * (255 / 16)).astype(np.uint8)
    return Image.fromarray(grey, "L").resize((SIZE, SIZE), Image.BICUBIC).convert("RGB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    digits = load_digits()
    labels = np.array([NAMES[t] for t in digits.target])
    train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=N_TEST, stratify=labels,
                                           random_state=args.seed)
    data = args.out / "data"
    rows = []
    for i in train_idx:
        (data / "train" / labels[i]).mkdir(parents=True, exist_ok=True)
        image_id = f"d{i:04d}.png"
        to_image(digits.data[i]).save(data / "train" / labels[i] / image_id)
        rows.append((image_id, labels[i]))
    pd.DataFrame(rows, columns=["image_id", "label"]).to_csv(data / "train.csv", index=False)
    (data / "test_images").mkdir(parents=True, exist_ok=True)
    test_ids = [f"t{i:04d}.png" for i in test_idx]
    for i, image_id in zip(test_idx, test_ids):
        to_image(digits.data[i]).save(data / "test_images" / image_id)
    pd.DataFrame({"image_id": test_ids}).to_csv(data / "test.csv", index=False)
    pd.DataFrame({"image_id": test_ids, "label": NAMES[0]}).to_csv(data / "sample_submission.csv", index=False)
    pd.DataFrame({"image_id": test_ids, "label": labels[test_idx]}).to_csv(args.out / "test_labels.csv", index=False)
    print(f"{args.out}: {len(train_idx)} train, {len(test_idx)} test images of {len(NAMES)} digits")


if __name__ == "__main__":
    main()
