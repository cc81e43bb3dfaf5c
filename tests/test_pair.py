"""Stage `pair`: a binary expert for a class pair, its prob_b tables and metrics."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from grocer import paths
from grocer.errors import GrocerError
from grocer.imagecache import load_cache
from grocer.stages import pair
from grocer.training import checkpoint, runner
from support.training_project import write_training_inputs
from support.params import tiny_params

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def project(tmp_path, monkeypatch):
    write_training_inputs(tmp_path, per_class=[30, 20, 6])
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_pair_expert_outputs(project):
    params = tiny_params({"mix_prob": 0.0}, pairs={"list": ["class0-class1"], "model": "effnet", "epochs": 4})
    pair.run(params, "class0-class1", 1)
    item = paths.pair_item_dir("class0-class1", 1)
    assert {"best.pt", "swa.pt", "final.json", "config.json", "oof.parquet", "test.parquet"} == {
        p.name for p in item.iterdir()}
    folds = pd.read_csv(paths.FOLDS)
    fold = folds[folds["fold"] == 1]
    oof = pd.read_parquet(item / "oof.parquet")
    test = pd.read_parquet(item / "test.parquet")
    assert list(oof.columns) == ["image_id", "prob_b"] and list(test.columns) == ["image_id", "prob_b"]
    # every row of the fold (not only the pair's: coverage must not leak labels) and the whole test set
    assert oof["image_id"].tolist() == fold["image_id"].tolist()
    assert test["image_id"].tolist() == load_cache().test_ids
    assert test.attrs["test_fingerprint"] == load_cache().test_fingerprint  # what stack and override check
    assert oof["prob_b"].between(0, 1).all() and test["prob_b"].between(0, 1).all()

    config = json.loads((item / "config.json").read_text())
    assert config["classes"] == ["class0", "class1"] and config["outputs"] == 1 and config["epochs"] == 4
    assert config["pos_weight"] == pytest.approx(15 / 10)  # n_a / n_b of the training folds
    metrics = json.loads(paths.pair_metrics("class0-class1", 1).read_text())
    assert set(metrics) == {"auc", "f1", "n", "step"} and metrics["n"] == int(fold["label"].isin(["class0", "class1"]).sum())
    # prob_b is the probability of the SECOND class: it ranks class1 above class0
    of_pair = fold["label"].isin(["class0", "class1"]).to_numpy()
    is_b = (fold["label"] == "class1").to_numpy()[of_pair]
    assert metrics["auc"] > 0.5
    assert oof["prob_b"].to_numpy()[of_pair][is_b].mean() > oof["prob_b"].to_numpy()[of_pair][~is_b].mean()

    expert = checkpoint.load_final(item, torch.device("cpu"))
    assert expert.model(torch.zeros(2, 3, 32, 32)).shape == (2, 1)


def test_pair_loss_uses_pos_weight_only_with_class_weights(project, monkeypatch):
    seen = []
    real_fit = runner.fit
    monkeypatch.setattr(runner, "fit", lambda model, objective, *a, **k: seen.append(objective) or real_fit(
        model, objective, *a, **k))
    pair.run(tiny_params({"class_weights": False, "swa_start": None}), "class0-class1", 0)
    assert seen[-1].pos_weight == 1.0
    assert not (paths.pair_item_dir("class0-class1", 0) / "swa.pt").exists()


def test_bad_pairs_are_errors(project):
    with pytest.raises(GrocerError, match="not in pairs.list"):
        pair.run(tiny_params(), "class1-class2", 0)
    with pytest.raises(GrocerError, match="unknown class"):
        pair.run(tiny_params(pairs={"list": ["class0-kiwi"], "model": "effnet", "epochs": 2}), "class0-kiwi", 0)
    assert not np.any([p.exists() for p in (paths.MODELS_DIR / "pairs").glob("*")])
