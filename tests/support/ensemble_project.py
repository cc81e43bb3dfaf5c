"""A synthetic project for the ensemble stages (blend -> stack -> override -> submit): the
prediction tables of 2 models x 3 folds, a pair expert, folds.csv, the test set and its labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from grocer import paths
from grocer.predictions import softmax, write_expert_table, write_predictions
from grocer.stages import blend, override, stack, submit
from support.dataset import write_test_set
from support.params import deep_update, make_params

CLASSES = ["c0", "c1", "c2", "c3"]
MODELS = ["resnet", "regnet"]
N_TRAIN, N_TEST, N_FOLDS = 150, 40, 3


def fake_logits(rng: np.random.Generator, y: np.ndarray, strength: float) -> np.ndarray:
    """Informative logits; classes c0 and c1 are confused at small margins (the override's case)."""
    logits = rng.normal(0, 1.0, (y.size, len(CLASSES)))
    logits[np.arange(y.size), y] += strength
    pair_rows = np.isin(y, [0, 1])
    logits[pair_rows, 0] = logits[pair_rows, 1] = np.maximum(logits[pair_rows, 0], logits[pair_rows, 1])
    logits[pair_rows, :2] += rng.normal(0, 0.3, (pair_rows.sum(), 2))
    return logits


def write_table(path: Path, ids: list[str], logits: np.ndarray) -> None:
    write_predictions(path, ids, logits, softmax(logits), CLASSES)


def write_expert(path: Path, ids: list[str], y: np.ndarray, rng: np.random.Generator,
                 test_fingerprint: str | None = None) -> None:
    prob_b = np.clip((y == 1) * 0.8 + 0.1 + rng.normal(0, 0.08, y.size), 0, 1)
    write_expert_table(path, ids, prob_b, test_fingerprint)


def write_project(root: Path, data_dir: str = "data/sample", id_col: str = "image_id", label_col: str = "label"):
    rng = np.random.default_rng(0)
    train_ids = [f"tr{i:03d}.jpg" for i in range(N_TRAIN)]
    y = np.arange(N_TRAIN) % len(CLASSES)
    folds = rng.permutation(np.arange(N_TRAIN) % N_FOLDS)
    groups = [f"g{i % 10}" for i in range(N_TRAIN)]
    test_ids = [f"te{i:03d}.jpg" for i in range(N_TEST)]
    test_y = rng.integers(0, len(CLASSES), N_TEST)

    (root / "data/interim").mkdir(parents=True)
    (root / paths.CLASSES).write_text(json.dumps({"classes": CLASSES}))
    (root / paths.FOLDS).parent.mkdir(parents=True)
    pd.DataFrame({"image_id": train_ids, "label": [CLASSES[k] for k in y], "group": groups, "fold": folds}).to_csv(
        root / paths.FOLDS, index=False
    )
    order = rng.permutation(N_TEST)  # the sample's order is not the prediction tables' order
    sha = write_test_set(root, test_ids, data_dir, id_col, label_col, [test_ids[i] for i in order], "c0")
    (root / paths.SAMPLE_TRUTH_DIR).mkdir(parents=True)
    pd.DataFrame({"image_id": test_ids, "label": [CLASSES[k] for k in test_y], "group": "g"}).to_csv(
        root / paths.SAMPLE_TEST_LABELS, index=False
    )
    for m, model in enumerate(MODELS):
        for k in range(N_FOLDS):
            item = root / paths.infer_dir(model, k)
            val = folds == k
            strength = 1.5 + m  # the second model is the better one
            val_ids = [i for i, v in zip(train_ids, val) if v]
            write_table(item / "oof.parquet", val_ids, fake_logits(rng, y[val], strength))
            shuffled = rng.permutation(N_TEST)  # every table in its own order
            shuffled_ids = [test_ids[i] for i in shuffled]
            write_table(item / "test.parquet", shuffled_ids, fake_logits(rng, test_y[shuffled], strength))
            (item / "meta.json").write_text(json.dumps({"test_fingerprint": sha}))
    for k in range(N_FOLDS):
        item = root / paths.pair_item_dir("c0-c1", k)
        val = folds == k
        write_expert(item / "oof.parquet", [i for i, v in zip(train_ids, val) if v], y[val], rng)
        write_expert(item / "test.parquet", test_ids, test_y, rng, sha)
    return {"train_ids": train_ids, "test_ids": test_ids, "sample_order": [test_ids[i] for i in order],
            "fingerprint": sha}


OVERRIDES = {
    "run": {"models": MODELS, "folds": [0, 1, 2]},
    "folds": {"n_splits": N_FOLDS},
    "pairs": {"list": ["c0-c1"]},
    "stack": {"method": "logreg"},
    "submit": {"source": "override"},  # the chain's own steps; auto has tests of its own
}


def params_for(extra: dict | None = None):
    return make_params(deep_update(OVERRIDES, extra or {}))


def run_chain(params) -> None:
    for stage in (blend, stack, override, submit):
        stage.run(params)
