"""Stage `train` on a tiny project: outputs, metrics, curves, options reaching the run, kill + resume."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from grocer import paths
from grocer.errors import GrocerError
from grocer.params import ParamsError
from grocer.imagecache import load_cache
from grocer.predictions import read_predictions
from grocer.stages import train
from grocer.training import checkpoint, resume, runner
from grocer.training.augment import build_eval_transforms
from grocer.training.data import Split, predict
from grocer.training.device import Precision
from grocer.training.live import curve_file
from support.training_project import kill_after_an_epoch, write_training_inputs
from support.params import tiny_params

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES = ["class0", "class1", "class2"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    write_training_inputs(tmp_path, per_class=[14, 10, 6])  # imbalanced: class weights matter
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_train_item_outputs(project):
    train.run(tiny_params(), "convnext", 0)
    item = paths.train_item_dir("convnext", 0)
    assert sorted(p.name for p in item.iterdir()) == ["best.pt", "config.json", "final.json", "oof.parquet", "swa.pt"]
    config = json.loads((item / "config.json").read_text())
    assert config["classes"] == CLASSES and config["zoo"]["arch"] == "test_convnext" and config["img_size"] == 32
    assert config["train"]["epochs"] == 2 and config["aug"]["profile"] == "no_color"
    final = json.loads((item / "final.json").read_text())
    assert final["chosen"] in ("best", "swa") and final["file"] in ("best.pt", "swa.pt") and final["reason"]

    folds = pd.read_csv(paths.FOLDS)
    fold_ids = folds.loc[folds["fold"] == 0, "image_id"].tolist()
    oof = read_predictions(item / "oof.parquet", CLASSES)
    assert oof.ids == fold_ids and np.allclose(oof.probs.sum(1), 1, atol=1e-5)

    metrics = json.loads(paths.train_metrics("convnext", 0).read_text())
    assert set(metrics) == {"val_loss", "acc", "macro_f1", "errors", "epochs", "best_epoch", "chosen_swa",
                            "n_train", "n_val", "step"}  # dvclive's summary: the last step too
    assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics.values())
    assert metrics["n_val"] == len(fold_ids) and metrics["chosen_swa"] == int(final["chosen"] == "swa")
    accuracy = float(np.mean(np.argmax(oof.probs, 1) == folds.loc[folds["fold"] == 0, "label"].map(CLASSES.index)))
    assert metrics["acc"] == pytest.approx(accuracy)

    curves = paths.train_curves_dir("convnext", 0)
    for name in ("train/loss", "val/loss", "train/acc", "val/acc", "val/f1", "lr"):
        table = pd.read_csv(curve_file(curves, name), sep="\t")
        assert table["step"].tolist() == [0, 1], name
    assert not paths.train_scratch("convnext", 0).exists()  # resume state is dropped once the item is written

    # the item reloads as its final model: the same logits on the fold's rows
    trained = checkpoint.load_final(item, torch.device("cpu"))
    assert trained.classes == CLASSES and not trained.model.training
    cache = load_cache()
    split = Split(cache.train, cache.train_rows(fold_ids), np.zeros(len(fold_ids), np.int64))
    logits = predict(trained.model, split, build_eval_transforms(32, trained.view), trained.prep, 8, "none",
                     Precision(torch.device("cpu"), amp=False, sam=False))
    assert np.allclose(logits, oof.logits, atol=1e-5)


@pytest.mark.parametrize("better", [1, 2])
def test_stage2_fine_tunes_at_its_resolution_and_keeps_the_lower_val_loss(project, better, monkeypatch):
    """train.stage2: 2 more epochs at 40 px from the chosen weights; the item keeps the stage
    whose val loss is lower, at that stage's resolution, and reloads as the kept model."""
    real_fit = runner.fit
    stage_lrs, results, starts = [], [], []

    def fit_and_tilt(*args, **kwargs):
        starts.append({k: v.clone() for k, v in args[0].state_dict().items()})
        result = real_fit(*args, **kwargs)
        results.append(result)
        stage_lrs.append(args[5].lr)
        if len(stage_lrs) == 2:  # make the wanted stage the better one, whatever the tiny run did
            tilt = -1.0 if better == 2 else 1.0
            result.val_scores["val_loss"] = result.val_scores["val_loss"] * 0 + (tilt + 2.0)
        else:
            result.val_scores["val_loss"] = 2.0
        return result

    monkeypatch.setattr(runner, "fit", fit_and_tilt)
    train.run(tiny_params({"stage2": {"epochs": 2, "lr_scale": 0.25, "img_size": 40}}), "convnext", 0)
    assert stage_lrs == [pytest.approx(tiny_params().train.lr), pytest.approx(tiny_params().train.lr * 0.25)]
    stage1 = results[0].swa_state if results[0].chosen == "swa" else results[0].best_state
    assert all(torch.equal(starts[1][k], stage1[k]) for k in stage1)  # stage 2 starts from stage 1's chosen weights
    metrics = json.loads(paths.train_metrics("convnext", 0).read_text())
    assert metrics["chosen_stage"] == better and metrics["epochs"] == 4
    assert {metrics["stage1_val_loss"], metrics["stage2_val_loss"]} == {2.0, 1.0 if better == 2 else 3.0}
    config = json.loads((paths.train_item_dir("convnext", 0) / "config.json").read_text())
    assert config["img_size"] == (40 if better == 2 else 32)
    assert pd.read_csv(curve_file(paths.train_curves_dir("convnext", 0), "lr"), sep="\t")["step"].tolist() == [0, 1, 2, 3]
    trained = checkpoint.load_final(paths.train_item_dir("convnext", 0), torch.device("cpu"))
    assert trained.img_size == config["img_size"]


def test_stage2_needs_its_resolution_in_the_cache(project):
    stage2 = {"stage2": {"epochs": 1, "lr_scale": 0.2, "img_size": 64}}
    with pytest.raises(ParamsError, match=r"cache.img_size \(40\) is smaller than a model's img_size \(64\)"):
        tiny_params(stage2)
    # params that allow it, but a cache decoded at 40 px: an error before any training
    with pytest.raises(GrocerError, match="images are 40px, train.stage2.img_size is 64px; run `dvc repro cache`"):
        train.run(tiny_params(stage2, cache={"img_size": 64}), "convnext", 0)
    assert not paths.train_scratch("convnext", 0).exists()


def test_options_reach_the_run(project):
    """class weights, sampler, augmentation profile, zoo regularisation and a model's own recipe each change the result."""
    def run(**overrides):
        sections = {k: v for k, v in overrides.items() if k in ("aug", "zoo")}
        train.run(tiny_params({k: v for k, v in overrides.items() if k not in sections}, **sections), "convnext", 0)
        return checkpoint.load_weights(paths.train_item_dir("convnext", 0) / "best.pt")

    reference = run()
    variants = {
        "class_weights": run(class_weights=False),
        "sampler": run(sampler="weighted"),
        "aug": run(aug={"profile": "full"}),
        "drop_rate": run(zoo={"convnext": {"arch": "test_convnext", "channels_last": False, "drop_rate": 0.5}}),
        "label_smoothing": run(label_smoothing=0.3),
        # the model's own recipe: another seed (a multi-seed blend member), another augmentation
        "zoo_train_seed": run(zoo={"convnext": {"arch": "test_convnext", "channels_last": False, "train": {"seed": 1}}}),
        "zoo_aug": run(zoo={"convnext": {"arch": "test_convnext", "channels_last": False, "aug": {"profile": "full"}}}),
    }
    again = run()
    assert all(torch.equal(reference[k], again[k]) for k in reference)  # deterministic: any change is the option's
    for name, weights in variants.items():
        assert not all(torch.equal(reference[k], weights[k]) for k in reference), name


def test_bad_model_or_fold_is_an_error(project):
    with pytest.raises(GrocerError, match="not in zoo"):
        train.run(tiny_params(), "resnet", 0)
    with pytest.raises(GrocerError, match="fold 3 has no rows"):
        train.run(tiny_params(), "convnext", 3)
    with pytest.raises(GrocerError, match="zoo.convnext.arch: unknown timm architecture 'convnext_tiniest'"):
        train.run(tiny_params(zoo={"convnext": {"arch": "convnext_tiniest", "channels_last": False}}), "convnext", 0)
    assert not paths.train_item_dir("convnext", 0).exists()


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    """SIGKILL a `grocer train` process after an epoch; the rerun resumes and ends like an uninterrupted run."""
    params = tiny_params({"epochs": 8, "swa_start": 5})
    for name in ("killed", "clean"):
        write_training_inputs(tmp_path / name, per_class=[14, 10, 6])
        (tmp_path / name / "params.yaml").write_text(yaml.safe_dump(params.model_dump(), sort_keys=False))

    killed = tmp_path / "killed"
    state = kill_after_an_epoch(killed, "convnext", {**os.environ, "OMP_NUM_THREADS": "1", "CI": "1"})
    assert not (killed / paths.train_item_dir("convnext", 0)).exists()  # no half-written item
    assert not (killed / paths.train_metrics("convnext", 0)).exists()

    monkeypatch.chdir(killed)
    interrupted_at = resume.load_state(state, torch.load(state, weights_only=True)["key"])["epoch"]
    assert 1 <= interrupted_at < 8
    saved = []
    real_save = resume.save_state
    with monkeypatch.context() as spy:
        spy.setattr(resume, "save_state", lambda path, s: saved.append(s["epoch"]) or real_save(path, s))
        train.run(params, "convnext", 0)
    assert saved[0] == interrupted_at + 1  # resumed where it was killed, not restarted

    monkeypatch.chdir(tmp_path / "clean")
    train.run(params, "convnext", 0)
    clean = tmp_path / "clean"
    assert (killed / paths.train_metrics("convnext", 0)).read_text() == (clean / paths.train_metrics("convnext", 0)).read_text()
    for weights in ("best.pt", "swa.pt"):
        a = checkpoint.load_weights(killed / paths.train_item_dir("convnext", 0) / weights)
        b = checkpoint.load_weights(clean / paths.train_item_dir("convnext", 0) / weights)
        assert all(torch.equal(a[k], b[k]) for k in a), weights
