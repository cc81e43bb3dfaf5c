"""The train and pair stages never train on the fold they are scored on.

A spy around the training loop (grocer.training.loop.fit, called for real) records the
image ids of the training and validation splits of each item, on a 3-fold project.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from grocer import paths
from grocer.imagecache import load_cache
from grocer.stages import pair, train
from grocer.training import runner
from support.training_project import write_training_inputs
from support.params import tiny_params

pytestmark = pytest.mark.usefixtures("one_thread")

FOLD = 1  # the middle fold: neither the first nor the last rows of the table


@pytest.fixture
def project(tmp_path, monkeypatch):
    write_training_inputs(tmp_path, per_class=[9, 9, 6], n_folds=3)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def spy_on_fit(monkeypatch) -> list[dict[str, list[str]]]:
    """Each fit's training and validation ids (and labels), recorded before the real fit runs."""
    seen = []
    real_fit = runner.fit

    def fit(model, objective, train_split, val_split, *args, **kwargs):
        ids = load_cache().train_ids
        seen.append({name: [ids[r] for r in split.rows] for name, split in (("train", train_split),
                                                                             ("val", val_split))})
        seen[-1]["train_labels"] = train_split.labels.tolist()
        return real_fit(model, objective, train_split, val_split, *args, **kwargs)

    monkeypatch.setattr(runner, "fit", fit)
    return seen


def quick(**sections):
    return tiny_params({"epochs": 1, "warmup_epochs": 0, "swa_start": None, "mix_prob": 0.0, "mix_off_epochs": 0}, folds={"n_splits": 3}, **sections)


def test_a_train_item_trains_on_every_other_fold_and_never_on_its_own(project, monkeypatch):
    seen = spy_on_fit(monkeypatch)
    train.run(quick(), "convnext", FOLD)
    folds = pd.read_csv(paths.FOLDS)
    own = folds[folds["fold"] == FOLD]
    others = folds[folds["fold"] != FOLD]
    [fit] = seen
    assert not set(fit["train"]) & set(own["image_id"])
    assert sorted(fit["train"]) == sorted(others["image_id"])
    assert fit["val"] == own["image_id"].tolist()
    classes = json.loads(paths.CLASSES.read_text())["classes"]
    label_of = dict(zip(folds["image_id"], folds["label"]))
    assert [classes[y] for y in fit["train_labels"]] == [label_of[i] for i in fit["train"]]
    metrics = json.loads(paths.train_metrics("convnext", FOLD).read_text())
    assert (metrics["n_train"], metrics["n_val"]) == (len(others), len(own))


def test_a_pair_expert_trains_on_the_pair_rows_of_the_other_folds_only(project, monkeypatch):
    seen = spy_on_fit(monkeypatch)
    pair.run(quick(pairs={"list": ["class0-class1"], "model": "effnet", "epochs": 1}), "class0-class1", FOLD)
    folds = pd.read_csv(paths.FOLDS)
    of_pair = folds["label"].isin(["class0", "class1"])
    own = folds[(folds["fold"] == FOLD) & of_pair]
    others = folds[(folds["fold"] != FOLD) & of_pair]
    [fit] = seen
    assert not set(fit["train"]) & set(folds.loc[folds["fold"] == FOLD, "image_id"])
    assert sorted(fit["train"]) == sorted(others["image_id"])
    assert fit["val"] == own["image_id"].tolist()
    label_of = dict(zip(folds["image_id"], folds["label"]))
    assert fit["train_labels"] == [int(label_of[i] == "class1") for i in fit["train"]]  # 1 = class b
    config = json.loads((paths.pair_item_dir("class0-class1", FOLD) / "config.json").read_text())
    assert (config["n_train"], config["n_val"]) == (len(others), len(own))
