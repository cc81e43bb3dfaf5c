"""Params for the tests: the repo's params.yaml with overrides, and the tiny presets.

Every test config starts from params.yaml, so a new param needs no test edits. The two
tiny presets scale it down for the two ways the tests run the stages: in-process on a
training-ready project (TRAINING) and through `dvc repro` on a copy of the repo (PIPELINE).
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from grocer import params as params_module
from grocer.params import Params

REPO = Path(__file__).resolve().parents[2]

_ENTRY = {"pretrained": False, "pretrained_file": None, "channels_last": False, "drop_rate": 0.0,
          "drop_path_rate": 0.0}

# tests/support/training_project.py's data: 40 px cache, 2 folds; timm test models at 32 px
TRAINING = {
    "cache": {"img_size": 40},
    "folds": {"n_splits": 2},
    "run": {"models": ["convnext"], "folds": [0, 1]},
    # named after timm's test architectures they hold
    "zoo": {
        "convnext": {**_ENTRY, "arch": "test_convnext", "drop_path_rate": 0.05},
        "effnet": {**_ENTRY, "arch": "test_efficientnet", "drop_rate": 0.1},
        "vit": {**_ENTRY, "arch": "test_vit", "drop_path_rate": 0.05},
    },
    # every trick on (mixing, SWA, strong augmentation), so the tests exercise them
    "aug": {"crop_scale": 0.35, "flips": "square", "degrade_prob": 0.3, "dropout_prob": 0.5},
    "train": {"img_size": 32, "epochs": 2, "batch_size": 8, "warmup_epochs": 1,
              "swa_start": 1, "mix_prob": 0.3, "mix_off_epochs": 1},
    "pairs": {"list": ["class0-class1"], "model": "effnet", "epochs": 2},
}

# the whole pipeline on the sample stage's data at small sizes: one tiny model, two folds
PIPELINE = {
    "sample": {"n_train": 240, "n_test": 60, "img_size": 64},
    "folds": {"n_splits": 2},
    "cache": {"img_size": 32},
    "run": {"models": ["tiny"], "folds": [0, 1]},
    "zoo": {"tiny": {**_ENTRY, "arch": "test_convnext"}},
    "train": {"img_size": 32, "epochs": 2, "batch_size": 32, "swa_start": 1, "warmup_epochs": 0},
    "pairs": {"list": ["mandarin-orange"], "model": "tiny", "epochs": 1},
    "audit": {"n_boot": 50, "n_repeats": 3},
}


def default_params_dict() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def deep_update(base: dict, overrides: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_update(merged[key], value)
        else:
            merged[key] = value
    return merged


def make_params(overrides: dict | None = None) -> Params:
    """The repo's params.yaml with `overrides` merged in, validated like the real thing."""
    return params_module.parse(deep_update(default_params_dict(), overrides or {}))


def tiny_config(preset: dict, *overrides: dict) -> dict:
    """params.yaml scaled down by `preset` (its zoo replaces the repo's), then each override merged."""
    merged = deep_update({**default_params_dict(), "zoo": {}}, preset)
    for override in overrides:
        merged = deep_update(merged, override)
    return merged


def tiny_params(train: dict | None = None, **sections: dict) -> Params:
    """The TRAINING preset, validated: `train` overrides keys of the train section, `sections`
    keys of other sections (merged)."""
    return params_module.parse(tiny_config(TRAINING, {"train": train or {}}, sections))
