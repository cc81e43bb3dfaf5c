"""Stage `audit`: private-risk audit of the submitted step's OOF predictions (`source` in metrics/final.json).

Math: grocer.ensemble.audit (bootstrap, group bootstrap, repeated stratified holdout,
per-group accuracy, error concentration). Only the OOF rows of `run.folds` are
audited; `oof_coverage` says which share of the training rows that is.

Per-group accuracy is a true leave-group-out figure only when the folds kept each
group whole (`folds.strategy=group`): then a group's OOF predictions come from models
that never saw it. With `label_group` or `label` the group's other images were in
training, so the numbers rank how hard each (seen) product code is; `logo_honest`
(1 for `group`, else 0) records which one the metrics are.

Writes metrics/audit.json (every number), metrics/risk.json (the headline figures of
RISK_KEYS, what `dvc exp show` prints), plots/audit_groups.csv (group, label, n, correct, acc,
below_min_acc; worst group first; header only without groups) and
plots/audit_confusions.csv (the largest true -> predicted cells, by class name).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from grocer import atomic, paths
from grocer.dataset import load_classes, verify_test_set
from grocer.ensemble.audit import GroupTable, audit
from grocer.ensemble.metrics import confusion, top_confusions
from grocer.ensemble.inputs import load_oof_rows, read_stage_predictions
from grocer.params import Params
from grocer.stages.submit import read_final

TOP_CONFUSIONS = 10  # rows of plots/audit_confusions.csv
GROUP_COLUMNS = ["group", "label", "n", "correct", "acc", "below_min_acc"]
# the risk in five columns: the bootstrap interval, the worst private-size holdout, the worst
# class and the worst product code (without a group column, no group_acc_min)
RISK_KEYS = ("boot_p05", "boot_p95", "holdout_min", "class_acc_min", "group_acc_min")


def group_frame(table: GroupTable | None, classes: list[str], min_acc: float) -> pd.DataFrame:
    """One row per group, worst first; no rows when there are no groups."""
    if table is None:
        return pd.DataFrame(columns=GROUP_COLUMNS)
    return pd.DataFrame({
        "group": table.names,
        "label": [classes[k] for k in table.label],
        "n": table.n_rows,
        "correct": table.n_correct,
        "acc": table.accuracy,
        "below_min_acc": (table.accuracy < min_acc).astype(int),
    })


def confusion_frame(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """The TOP_CONFUSIONS largest off-diagonal cells with their share of all errors."""
    cells = top_confusions(confusion(y, pred, len(classes)), TOP_CONFUSIONS)
    n_errors = max(int((pred != y).sum()), 1)
    return pd.DataFrame({
        "rank": np.arange(1, len(cells) + 1),
        "actual": [classes[i] for i, _, _ in cells],
        "predicted": [classes[j] for _, j, _ in cells],
        "pair": [f"{classes[i]} -> {classes[j]}" for i, j, _ in cells],
        "count": [count for _, _, count in cells],
        "error_share": [count / n_errors for _, _, count in cells],
    })


def run(params: Params) -> None:
    verify_test_set(params.data)  # what is audited/reported is a submission for this test set
    classes = load_classes()
    rows = load_oof_rows(classes, params.run.folds)
    final = read_stage_predictions(paths.ENSEMBLE_DIRS[read_final()["source"]], "oof", rows.ids, classes)
    pred = final.probs.argmax(axis=1)

    numbers, table = audit(rows.y, pred, rows.groups, len(classes), params.audit)
    metrics = {
        "oof_coverage": rows.coverage,
        **numbers,
        "logo_honest": int(params.folds.strategy == "group"),
    }
    if table is None:
        print("audit: no group column, so the per-group (leave-group-out) part is skipped", file=sys.stderr)

    with atomic.together() as staged:
        staged.write_frame(paths.AUDIT_GROUPS, group_frame(table, classes, params.audit.min_acc))
        staged.write_frame(paths.AUDIT_CONFUSIONS, confusion_frame(rows.y, pred, classes))
        staged.write_json(paths.metrics_file("audit"), metrics)
        staged.write_json(paths.RISK_METRICS, {key: metrics[key] for key in RISK_KEYS if key in metrics})
