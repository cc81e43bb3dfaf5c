"""The report stage: the plot files behind `dvc plots show` and the two PNGs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from support.params import make_params
from grocer import paths
from grocer.errors import GrocerError
from grocer.stages import report
from grocer.training.live import EpochLog
from support.oof_project import CLASSES, write_oof_project

FINAL = {
    "oof_acc": 0.8333, "oof_f1": 0.82, "oof_coverage": 1.0,
    "best_single": {"oof_acc": 0.70, "oof_f1": 0.68},
    "blend": {"oof_acc": 0.76, "oof_f1": 0.75},
    "bias": {"oof_acc": 0.78, "oof_f1": 0.77},
    "stack": {"oof_acc": 0.81, "oof_f1": 0.80},
    "override": {"oof_acc": 0.8333, "oof_f1": 0.82}, "submitted": "override", "source": "override",
}
BLEND = {
    "oof_coverage": 1.0, "n_oof": 60,
    "best_single": {"oof_acc": 0.70, "oof_f1": 0.68, "oof_logloss": 0.9},
    "fitted": {"oof_acc": 0.76, "oof_f1": 0.75, "oof_logloss": 0.7},
    "model_regnet": {"oof_acc": 0.70, "oof_f1": 0.68, "oof_logloss": 0.9, "weight": 0.6},
    "model_resnet": {"oof_acc": 0.65, "oof_f1": 0.61, "oof_logloss": 1.1, "weight": 0.4},
}


MODELS = ["regnet", "resnet"]
PARAMS = {"run": {"models": MODELS, "folds": [0, 1, 2, 3, 4]}}


CURVE_KEYS = ("train_loss", "val_loss", "train_acc", "val_acc", "val_f1", "lr")


def write_item_curves(model: str, fold: int, epochs: int = 3) -> None:
    """One train item's curves, written through dvclive as the train stage does: every value is fold + epoch / 10."""
    history = [{key: round(fold + 0.1 * e, 3) for key in CURVE_KEYS} for e in range(epochs)]
    log = EpochLog(paths.train_curves_dir(model, fold), f"train@{model}-{fold}")
    log.log(history)
    log.end({})


@pytest.fixture
def project(tmp_path, monkeypatch):
    write_oof_project(tmp_path, with_groups=True)
    monkeypatch.chdir(tmp_path)
    paths.METRICS_DIR.mkdir(exist_ok=True)
    paths.FINAL_METRICS.write_text(json.dumps(FINAL))
    paths.metrics_file("blend").write_text(json.dumps(BLEND))
    for model in MODELS:
        for fold in range(5):
            write_item_curves(model, fold)
    return tmp_path


def test_plot_files(project):
    report.run(make_params(PARAMS))

    rows = pd.read_csv(paths.CONFUSION_ROWS)
    assert list(rows.columns) == ["actual", "predicted"] and len(rows) == 60
    counts = rows.value_counts().to_dict()
    assert counts == {("apple", "apple"): 20, ("kiwi", "kiwi"): 10, ("kiwi", "pear"): 10, ("pear", "pear"): 20}

    per_class = pd.read_csv(paths.PER_CLASS).set_index("class")
    assert list(per_class.columns) == ["precision", "recall", "f1", "support"]
    assert per_class.index.tolist() == CLASSES
    assert per_class.loc["kiwi", "recall"] == 0.5 and per_class.loc["kiwi", "precision"] == 1.0
    assert per_class.loc["pear", "precision"] == pytest.approx(20 / 30)
    assert per_class.loc["kiwi", "f1"] == pytest.approx(2 / 3)
    assert per_class["support"].tolist() == [20, 20, 20]

    evolution = pd.read_csv(paths.EVOLUTION)
    assert list(evolution.columns) == ["step", "kind", "acc", "f1"]
    assert evolution["step"].tolist() == [
        "0 regnet", "0 resnet", "1 best_single", "2 blend", "3 bias", "4 stack", "5 override"
    ]
    assert evolution["step"].tolist() == sorted(evolution["step"])  # DVC's bar templates sort by name
    assert evolution["kind"].tolist() == ["model"] * 2 + ["chain"] * 5
    assert evolution.loc[6, "acc"] == 0.8333 and evolution.loc[1, "f1"] == 0.61


def test_training_curves_of_every_item_in_one_table(project):
    write_item_curves("effnet", 0)  # an item outside run.models is not reported
    report.run(make_params(PARAMS))
    curves = pd.read_csv(paths.TRAIN_CURVES)
    assert list(curves.columns) == ["item", "metric", "step", "value"]
    assert len(curves) == 2 * 5 * 6 * 3  # models x folds x metrics x epochs
    assert sorted(curves["item"].unique()) == [f"{m}-f{k}" for m in MODELS for k in range(5)]
    assert sorted(curves["metric"].unique()) == ["lr", "train/acc", "train/loss", "val/acc", "val/f1", "val/loss"]
    resnet3 = curves[(curves["item"] == "resnet-f3") & (curves["metric"] == "val/acc")]
    assert resnet3["step"].tolist() == [0, 1, 2] and resnet3["value"].tolist() == [3.0, 3.1, 3.2]


def test_missing_training_curves_name_the_item(project):
    with pytest.raises(GrocerError, match=r"plots/train/effnet-f0: no training curves for train@effnet-0"):
        report.run(make_params({"run": {"models": ["effnet"], "folds": [0, 1, 2, 3, 4]},
                                "zoo": {"effnet": make_params().zoo["regnet"].model_dump()}}))


def test_switched_off_steps_are_absent(project):
    final = {k: v for k, v in FINAL.items() if k not in ("bias", "override")}
    paths.FINAL_METRICS.write_text(json.dumps(final))
    report.run(make_params(PARAMS))
    assert pd.read_csv(paths.EVOLUTION)["step"].tolist()[2:] == ["1 best_single", "2 blend", "3 stack"]


def test_final_metrics_without_steps_is_an_error(project):
    paths.FINAL_METRICS.write_text(json.dumps({"oof_acc": 0.8, "submitted": "override", "source": "override"}))
    with pytest.raises(GrocerError, match="none of the steps"):
        report.run(make_params(PARAMS))


def picture(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB")).astype(int)


def pixels_near(pixels: np.ndarray, colour: tuple[int, int, int], tolerance: int = 12) -> int:
    return int((np.abs(pixels - np.array(colour)).max(axis=2) <= tolerance).sum())


def test_pngs_are_real_pictures(project):
    report.run(make_params(PARAMS))
    for path in (paths.CONFUSION_PNG, paths.EVOLUTION_PNG):
        pixels = picture(path)
        assert min(pixels.shape[:2]) > 200, path
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50, path  # text, bars, colour map: not blank
    # the data is drawn: cells at share 1.0 (apple, pear) in the darkest blue, and both bar colours
    assert pixels_near(picture(paths.CONFUSION_PNG), (8, 48, 107)) > 1000
    evolution = picture(paths.EVOLUTION_PNG)
    assert pixels_near(evolution, (0x48, 0x78, 0xA8), 2) > 500 and pixels_near(evolution, (0xE4, 0x94, 0x44), 2) > 500
