"""Stage `submit`: the submission file and the stage-by-stage evolution table.

The submitted prediction is the test prediction of the step `submit.source` names:
`override` (its base passed through when `override.enabled` is false), `stack`, `blend`
(bias-calibrated when `blend.calibrate_bias`), or `auto`: the candidate with the best
worst-group-aware OOF score (grocer.ensemble.selection; `submit.group_weight`,
`submit.group_quantile`), the override only when it is enabled. The file has the ids of
`<data.dir>/sample_submission.csv` in its order and its header, one class name per id,
and is read back and compared before the stage succeeds.

metrics/final.json: OOF acc and macro-F1 of each step (best single model -> fitted blend
-> bias-calibrated blend -> stack -> override; a step that is switched off is absent),
`oof_acc`/`oof_f1` of the submitted step, `source` (the prediction directory submitted, which
audit and report read), `oof_coverage`, with `auto` a `selection` block (every candidate's
OOF accuracy, worst-group quantile and score, and `auto_oof_acc`, the cross-fitted accuracy
of the choice itself), and, on the embedded sample
whose test labels are known (data/sample_truth/test_labels.csv), the submission's
`test_acc`/`test_f1`: a private-leaderboard score.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from grocer import atomic, paths
from grocer.dataset import load_classes, read_csv, verify_test_set
from grocer.ensemble.crossfit import evaluation_folds
from grocer.ensemble.selection import choose, cross_fitted_choice, step_score
from grocer.ensemble.inputs import load_oof_rows, read_stage_predictions
from grocer.errors import GrocerError
from grocer.params import Params
from grocer.training.metrics import accuracy, macro_f1


# the chain's steps, in order; metrics/final.json holds those that ran
STEP_NAMES = ("best_single", "blend", "bias", "stack", "override")


def _step(scores: dict) -> dict:
    return {"oof_acc": scores["oof_acc"], "oof_f1": scores["oof_f1"]}


def evolution(blend: dict, stack: dict, override: dict | None) -> dict:
    """The chain's steps from the stages' metrics, in order."""
    steps = {"best_single": _step(blend["best_single"]), "blend": _step(blend["fitted"])}
    if "bias" in blend:
        steps["bias"] = _step(blend["bias"])
    steps["stack"] = _step(stack)
    if override is not None:
        steps["override"] = _step(override["after"])
    return steps


def submitted_step(steps: dict, source: str, override_base: str) -> str:
    """The evolution step whose predictions `submit.source` submits: the blend directory holds
    the calibrated blend when there is one, the override's its base when it is off."""
    if source == "override" and "override" not in steps:
        source = override_base
    if source == "blend":
        return "bias" if "bias" in steps else "blend"
    return source


def select_source(params: Params, classes: list[str]) -> tuple[str, dict]:
    """The prediction directory to submit (a key of paths.ENSEMBLE_DIRS) and, for `auto`, why."""
    if params.submit.source != "auto":
        return params.submit.source, {}
    rows = load_oof_rows(classes, params.run.folds)
    candidates = ["blend", "stack"] + (["override"] if params.override.enabled else [])
    correct = {
        name: read_stage_predictions(paths.ENSEMBLE_DIRS[name], "oof", rows.ids, classes).probs.argmax(axis=1) == rows.y
        for name in candidates
    }
    weight, quantile = params.submit.group_weight, params.submit.group_quantile
    chosen = choose(correct, rows.groups, weight, quantile)
    eval_fold = evaluation_folds(rows.fold, rows.y, rows.groups, params.folds.n_splits, params.folds.seed)
    selection = {
        "chosen": chosen,
        "group_fallback": int(rows.groups is None),
        "auto_oof_acc": float(cross_fitted_choice(correct, rows.groups, eval_fold, weight, quantile).mean()),
        **{name: step_score(right, rows.groups, weight, quantile) for name, right in correct.items()},
    }
    if rows.groups is None:
        print("submit: no group column, so submit.source=auto picks by OOF accuracy alone")
    return chosen, selection


def read_final() -> dict:
    """metrics/final.json as this stage writes it; audit, report and summary read the submitted
    step (`submitted`) and its prediction directory (`source`) from it."""
    if not paths.FINAL_METRICS.is_file():
        raise GrocerError(f"{paths.FINAL_METRICS}: not found; run `dvc repro submit` first")
    return json.loads(paths.FINAL_METRICS.read_text())


def write_submission(
    staged: atomic.Staged, sample: pd.DataFrame, id_col: str, label_col: str, labels: list[str]
) -> None:
    """Write the submission in the sample's order and header, then read it back and compare."""
    submission = pd.DataFrame({id_col: sample[id_col].to_numpy(), label_col: labels})[list(sample.columns)]
    written = staged.write_frame(paths.SUBMISSION, submission)
    back = pd.read_csv(written, dtype=str, keep_default_na=False)
    if list(back.columns) != list(sample.columns) or back.to_numpy().tolist() != submission.to_numpy().tolist():
        raise GrocerError(f"{paths.SUBMISSION}: reading it back does not give the submission written (not replaced)")


def leaderboard_scores(submission_ids: list[str], labels: list[str]) -> dict:
    """Accuracy and macro-F1 of the submission against the sample's known test labels."""
    truth = read_csv(paths.SAMPLE_TEST_LABELS, ["image_id", "label"]).set_index("image_id")["label"]
    if set(truth.index) != set(submission_ids):
        raise GrocerError(f"{paths.SAMPLE_TEST_LABELS}: ids differ from the submission's")
    truth = truth.loc[submission_ids].to_numpy()
    return {"test_acc": accuracy(truth, np.array(labels)), "test_f1": macro_f1(truth, np.array(labels))}


def run(params: Params) -> None:
    data = params.data
    verify_test_set(data)
    classes = load_classes()
    sample_path = Path(data.dir) / "sample_submission.csv"
    sample = read_csv(sample_path, [data.id_col, data.label_col])
    if len(sample.columns) != 2:
        raise GrocerError(
            f"{sample_path}: expected the columns {data.id_col},{data.label_col}; has {list(sample.columns)}"
        )

    source, selection = select_source(params, classes)
    final = read_stage_predictions(paths.ENSEMBLE_DIRS[source], "test", sample[data.id_col].tolist(), classes)
    labels = [classes[k] for k in final.probs.argmax(axis=1)]

    blend = json.loads(paths.metrics_file("blend").read_text())
    stack = json.loads(paths.metrics_file("stack").read_text())
    override = json.loads(paths.metrics_file("override").read_text()) if params.override.enabled else None
    steps = evolution(blend, stack, override)
    submitted = submitted_step(steps, source, params.override.base)
    metrics: dict = {**steps[submitted], "submitted": submitted, "source": source, "oof_coverage": stack["oof_coverage"]}
    if selection:
        metrics["selection"] = selection
    if Path(data.dir).resolve() == paths.SAMPLE_DIR.resolve() and paths.SAMPLE_TEST_LABELS.is_file():
        metrics.update(leaderboard_scores(final.ids, labels))
    metrics.update(steps)
    with atomic.together() as staged:
        write_submission(staged, sample, data.id_col, data.label_col, labels)
        staged.write_json(paths.FINAL_METRICS, metrics)
