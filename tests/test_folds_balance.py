"""Stage `folds` on the sample's own train table (1,500 rows, 15 classes, 43 product codes):
stratification measured, with thresholds a plain shuffled KFold fails.

Measured over 4 folds with the default seed: StratifiedKFold keeps every class's share of
every fold within 0.004 of its overall share (plain shuffled KFold, seeds 0/1/42: 0.021 to
0.039) and, on the label+group key, the rows of each product code spread over the folds
within one row of even (plain KFold: 13 to 15 rows apart). 4 folds, not sklearn's default
5, so that a splitter that lost its n_splits fails too.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from support.params import make_params
from grocer import paths
from grocer.sample.plan import make_plan
from grocer.stages import folds

N_SPLITS = 4


@pytest.fixture(scope="module")
def sample_table() -> pd.DataFrame:
    """image_id, label, group of the sample's train.csv (planned, no image rendered), as `review` writes it."""
    plan = make_plan(make_params().sample)
    return pd.DataFrame({"image_id": [f"img{i:04d}.jpg" for i in range(len(plan.train))],
                         "label": [entry.label for entry in plan.train],
                         "group": [entry.group for entry in plan.train]})


def run_folds(tmp_path, monkeypatch, table: pd.DataFrame, strategy: str) -> pd.DataFrame:
    monkeypatch.chdir(tmp_path)
    paths.PREPARED_DIR.mkdir(parents=True)
    table.to_csv(paths.PREPARED_TRAIN, index=False)
    folds.run(make_params({"folds": {"strategy": strategy, "n_splits": N_SPLITS},
                           "run": {"folds": list(range(N_SPLITS))}}))
    out = pd.read_csv(paths.FOLDS, dtype={"group": str})
    assert out[["image_id", "label", "group"]].equals(table)  # the table itself is untouched, in order
    return out


def class_share_deviation(table: pd.DataFrame) -> float:
    """The largest |share of class c in fold k - share of class c overall|."""
    overall = table["label"].value_counts(normalize=True)
    shares = pd.crosstab(table["fold"], table["label"], normalize="index")
    return float((shares - overall).abs().to_numpy().max())


def group_spread(table: pd.DataFrame) -> int:
    """The largest difference, over product codes, between a code's row counts in two folds."""
    counts = pd.crosstab(table["group"], table["fold"])
    return int((counts.max(axis="columns") - counts.min(axis="columns")).max())


@pytest.mark.parametrize("strategy", ["label_group", "label"])
def test_every_fold_holds_each_class_in_its_overall_share(tmp_path, monkeypatch, sample_table, strategy):
    table = run_folds(tmp_path, monkeypatch, sample_table, strategy)
    assert sorted(table["fold"].unique()) == list(range(N_SPLITS))
    assert np.ptp(table["fold"].value_counts().to_numpy()) <= 1  # equal sizes
    assert class_share_deviation(table) < 0.015
    metrics = json.loads(paths.metrics_file("folds").read_text())
    assert (metrics["n_splits"], metrics["n_rows"], metrics["group_fallback"]) == (N_SPLITS, len(table), 0)
    assert metrics["max_class_share_deviation"] == pytest.approx(class_share_deviation(table))
    assert [metrics[f"fold{k}_size"] for k in range(N_SPLITS)] == table["fold"].value_counts().sort_index().tolist()


def test_label_group_spreads_every_product_code_evenly(tmp_path, monkeypatch, sample_table):
    table = run_folds(tmp_path, monkeypatch, sample_table, "label_group")
    assert group_spread(table) <= 1
    spans = table.groupby("group")["fold"].nunique()
    sizes = table.groupby("group").size()
    assert (spans == np.minimum(sizes, N_SPLITS)).all()  # every code in as many folds as it can be
    metrics = json.loads(paths.metrics_file("folds").read_text())
    assert metrics["groups_in_several_folds"] == int((spans > 1).sum())


def test_group_keeps_each_product_code_in_one_fold(tmp_path, monkeypatch, sample_table):
    table = run_folds(tmp_path, monkeypatch, sample_table, "group")
    assert (table.groupby("group")["fold"].nunique() == 1).all()
    assert sorted(table["fold"].unique()) == list(range(N_SPLITS))
    assert json.loads(paths.metrics_file("folds").read_text())["groups_in_several_folds"] == 0
