"""The private-risk audit: its math on constructed arrays, and the stage on tiny files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from support.params import make_params
from support.oof_project import write_oof_project
from grocer import paths
from grocer.ensemble import audit as audit_math
from grocer.params import AuditParams
from grocer.stages import audit as audit_stage

PARAMS = AuditParams(seed=0, n_boot=400, n_repeats=15, holdout_frac=0.2, min_acc=0.8)


def correct_flags(n: int, acc: float, seed: int = 0) -> np.ndarray:
    correct = np.zeros(n, dtype=bool)
    correct[: round(n * acc)] = True
    return np.random.default_rng(seed).permutation(correct)


def test_bootstrap_interval_contains_the_accuracy_and_matches_resampling_rows():
    correct = correct_flags(500, 0.8)
    boot = audit_math.percentiles(audit_math.bootstrap_accuracy(correct, 2000, np.random.default_rng(1)))
    assert boot["p05"] < 0.8 < boot["p95"]
    assert boot["p05"] <= boot["p50"] <= boot["p95"]
    # the binomial draw is the row bootstrap: compare with resampling indices for real
    rng = np.random.default_rng(2)
    resampled = correct[rng.integers(0, correct.size, size=(2000, correct.size))].mean(axis=1)
    naive = audit_math.percentiles(resampled)
    for key in ("p05", "p50", "p95"):
        assert boot[key] == pytest.approx(naive[key], abs=0.01)
    # and the width is the binomial one: 2 * 1.645 * sqrt(p(1-p)/n) ~ 0.059
    assert boot["p95"] - boot["p05"] == pytest.approx(0.059, abs=0.012)


def test_audit_is_deterministic_per_seed():
    y = np.repeat(np.arange(3), 40)
    pred = np.where(correct_flags(120, 0.85), y, (y + 1) % 3)
    groups = np.array([f"g{i % 12}" for i in range(120)])
    first, _ = audit_math.audit(y, pred, groups, 3, PARAMS)
    again, _ = audit_math.audit(y, pred, groups, 3, PARAMS)
    other, _ = audit_math.audit(y, pred, groups, 3, PARAMS.model_copy(update={"seed": 1}))
    assert first == again
    assert first["boot_p05"] != other["boot_p05"] or first["holdout_min"] != other["holdout_min"]


def test_holdout_is_stratified():
    # class 0 always right, class 1 always wrong: a stratified 20% cut holds 20 of each,
    # so every repeat scores exactly 0.5 (an unstratified cut would wander around it)
    y = np.repeat([0, 1], 100)
    correct = y == 0
    acc = audit_math.stratified_holdout_accuracy(correct, y, 0.2, 25, np.random.default_rng(0))
    assert acc.shape == (25,)
    np.testing.assert_allclose(acc, 0.5)


def test_holdout_spread_shrinks_with_a_larger_cut():
    y = np.repeat(np.arange(4), 250)
    correct = correct_flags(1000, 0.9)
    small = audit_math.stratified_holdout_accuracy(correct, y, 0.05, 40, np.random.default_rng(0))
    large = audit_math.stratified_holdout_accuracy(correct, y, 0.5, 40, np.random.default_rng(0))
    assert small.std() > large.std()
    assert large.min() > small.min()


def test_a_group_that_is_always_wrong_is_the_worst_group():
    y = np.repeat(np.arange(2), 30)
    groups = np.array([f"g{i // 10}" for i in range(60)])  # g0..g5, 10 rows each, g0-g2 class 0
    pred = y.copy()
    pred[groups == "g4"] = 0  # g4 (class 1) is always predicted as class 0
    pred[np.flatnonzero(groups == "g1")[:1]] = 1  # g1 gets one error: acc 0.9
    numbers, table = audit_math.audit(y, pred, groups, 2, PARAMS)

    assert numbers["has_groups"] == 1
    assert numbers["n_groups"] == 6
    assert numbers["group_acc_min"] == 0.0
    assert numbers["group_acc_median"] == 1.0
    assert numbers["groups_below_min_acc"] == 1  # 0.9 >= min_acc 0.8
    assert numbers["group_min_n"] == 10
    assert numbers["hard_groups_row_share"] == pytest.approx(10 / 60)
    assert numbers["hard_groups_error_share"] == pytest.approx(10 / 11)
    assert table.names[0] == "g4" and table.label[0] == 1
    assert table.names[1] == "g1"
    np.testing.assert_allclose(table.accuracy[:2], [0.0, 0.9])
    # a group bootstrap that can leave g4 out, or take it twice, is wider than the row one
    assert numbers["group_boot_p95"] - numbers["group_boot_p05"] > numbers["boot_p95"] - numbers["boot_p05"]


def test_no_groups_skips_the_group_part():
    y = np.repeat(np.arange(3), 20)
    pred = np.where(correct_flags(60, 0.9), y, (y + 1) % 3)
    numbers, table = audit_math.audit(y, pred, None, 3, PARAMS)
    assert table is None
    assert numbers["has_groups"] == 0
    assert not [key for key in numbers if "group" in key and key != "has_groups"]
    assert 0 < numbers["boot_p05"] <= numbers["oof_acc"] + 1e-9


def test_error_concentration():
    # 3 classes; errors: 6x (0 -> 1), 2x (2 -> 1), 1x (1 -> 0); class 0 has 20 rows
    matrix = np.array([[14, 6, 0], [1, 19, 0], [0, 2, 18]])
    summary = audit_math.class_summary(matrix, 0.8)
    assert summary["class_acc_min"] == pytest.approx(0.7)
    assert summary["classes_below_min_acc"] == 1
    assert summary["worst_class_error_share"] == pytest.approx(6 / 9)
    assert summary["top_confusion_error_share"] == pytest.approx(6 / 9)
    assert summary["top3_confusions_error_share"] == pytest.approx(1.0)
    perfect = audit_math.class_summary(np.diag([5, 5, 0]), 0.8)  # class 2 absent: no recall, no error
    assert perfect["class_acc_min"] == 1.0 and perfect["top_confusion_error_share"] == 0.0


# ---- the stage, on tiny files in a temporary project (tests/support/oof_project.py) ----


def test_stage_writes_metrics_and_group_plot(tmp_path, monkeypatch):
    write_oof_project(tmp_path, with_groups=True)
    monkeypatch.chdir(tmp_path)
    audit_stage.run(make_params({"folds": {"strategy": "group"}, "audit": {"n_boot": 100, "n_repeats": 5}}))

    metrics = json.loads(paths.metrics_file("audit").read_text())
    assert all(isinstance(v, (int, float)) for v in metrics.values()), metrics
    assert metrics["has_groups"] == 1 and metrics["logo_honest"] == 1
    assert metrics["oof_coverage"] == 1.0 and metrics["n_oof"] == 60
    assert metrics["oof_acc"] == pytest.approx(50 / 60)
    assert metrics["group_acc_min"] == 0.0 and metrics["groups_below_min_acc"] == 1

    groups = pd.read_csv(paths.AUDIT_GROUPS)
    assert list(groups.columns) == audit_stage.GROUP_COLUMNS
    assert len(groups) == 6
    assert groups.iloc[0].to_dict() == {"group": "kiwi_b", "label": "kiwi", "n": 10, "correct": 0, "acc": 0.0,
                                        "below_min_acc": 1}
    confusions = pd.read_csv(paths.AUDIT_CONFUSIONS)
    assert confusions.iloc[0][["actual", "predicted", "count", "error_share"]].tolist() == ["kiwi", "pear", 10, 1.0]


def test_stage_without_groups_and_with_label_group_folds(tmp_path, monkeypatch):
    write_oof_project(tmp_path, with_groups=False)
    monkeypatch.chdir(tmp_path)
    audit_stage.run(make_params({"folds": {"strategy": "label_group"}, "audit": {"n_boot": 100, "n_repeats": 5}}))
    metrics = json.loads(paths.metrics_file("audit").read_text())
    assert metrics["has_groups"] == 0 and metrics["logo_honest"] == 0
    assert "group_acc_min" not in metrics
    groups = pd.read_csv(paths.AUDIT_GROUPS)
    assert list(groups.columns) == audit_stage.GROUP_COLUMNS and groups.empty


def test_stage_audits_only_the_trained_folds(tmp_path, monkeypatch):
    write_oof_project(tmp_path, with_groups=True)
    monkeypatch.chdir(tmp_path)
    folds = pd.read_csv(paths.FOLDS)
    table = pd.read_parquet(paths.prediction_table(paths.OVERRIDE_DIR, "oof"))
    table[folds["fold"].eq(0).to_numpy()].to_parquet(paths.prediction_table(paths.OVERRIDE_DIR, "oof"), index=False)
    audit_stage.run(make_params({"run": {"folds": [0]}, "audit": {"n_boot": 100, "n_repeats": 5}}))
    metrics = json.loads(paths.metrics_file("audit").read_text())
    assert metrics["n_oof"] == 12 and metrics["oof_coverage"] == pytest.approx(0.2)
