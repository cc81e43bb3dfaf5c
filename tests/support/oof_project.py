"""A tiny project holding the final OOF predictions, for the audit and report stage tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from support.dataset import write_test_set
from grocer import paths
from grocer.predictions import write_predictions

CLASSES = ["apple", "kiwi", "pear"]


def write_oof_project(root: Path, with_groups: bool) -> None:
    """classes.json, the test set, folds.csv (60 rows, 5 folds, groups <label>_a/_b), the override's OOF
    table, in which every kiwi of group kiwi_b is predicted as pear and the rest is right, and
    a metrics/final.json naming the override as the submitted step."""
    rows = []
    for label in CLASSES:
        for i in range(20):
            group = f"{label}_{'ab'[i % 2]}" if with_groups else ""
            rows.append({"image_id": f"{label}{i}.png", "label": label, "group": group, "fold": i % 5})
    folds = pd.DataFrame(rows)
    (root / paths.FOLDS).parent.mkdir(parents=True)
    folds.to_csv(root / paths.FOLDS, index=False)
    (root / paths.CLASSES).parent.mkdir(parents=True)
    (root / paths.CLASSES).write_text(json.dumps({"classes": CLASSES}))
    write_test_set(root, [f"test{i}.png" for i in range(6)])
    y = folds["label"].map(CLASSES.index).to_numpy()
    pred = y.copy()
    pred[(folds["label"] == "kiwi").to_numpy() & (np.arange(len(y)) % 2 == 1)] = 2
    logits = np.eye(3)[pred] * 4.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    write_predictions(root / paths.prediction_table(paths.OVERRIDE_DIR, "oof"), folds["image_id"].tolist(),
                      logits, probs, CLASSES)
    (root / paths.FINAL_METRICS).parent.mkdir(parents=True, exist_ok=True)
    (root / paths.FINAL_METRICS).write_text(json.dumps({"submitted": "override", "source": "override"}))
