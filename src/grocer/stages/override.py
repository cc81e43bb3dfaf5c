"""Stage `override`: gated pair-expert override on top of the stack's or the blend's predictions.

For every pair of `pairs.list` (when `override.enabled`), the margin gate and the
expert's decision threshold are tuned on OOF rows (grocer.ensemble.override). The OOF
numbers are honest: rows of evaluation fold k are overridden with settings tuned on the
other folds' rows; the test rows get the settings tuned on every OOF row (reported per
pair). The base is `override.base` (the stack by default; the blend is the bias-calibrated
one when `blend.calibrate_bias`). With `override.calibrate: temperature` the base is first
temperature-scaled (grocer.ensemble.temperature), the temperature fitted in the same
cross-fit as the gate, so margins mean the same whichever step is the base. Disabled,
the base's predictions pass through unchanged.

Writes data/predictions/override/{oof,test}.parquet and metrics/override.json: OOF
scores before/after, changed predictions, and per pair its settings, the changes and the
expert's AUC and F1 (at 0.5 and at the tuned threshold) on the OOF rows of its two classes.
"""

from __future__ import annotations

import numpy as np

from grocer import atomic, paths
from grocer.dataset import load_classes, verify_fingerprint, verify_test_set
from grocer.ensemble.blend import log_probs
from grocer.ensemble.crossfit import cross_fit, evaluation_folds
from grocer.ensemble.metrics import binary_scores, oof_scores
from grocer.ensemble.override import PairSetting, apply_all, candidates, tune_all
from grocer.ensemble.temperature import fit_temperature, scale
from grocer.ensemble.inputs import load_oof_rows, load_pair_experts, read_stage_predictions
from grocer.pairs import pair_classes
from grocer.params import Params
from grocer.predictions import read_predictions, write_predictions


def _rows(experts: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {pair: prob_b[index] for pair, prob_b in experts.items()}


def tune(probs: np.ndarray, experts: dict[str, np.ndarray], y: np.ndarray, pairs: dict[str, tuple[int, int]],
         calibrate: str) -> tuple[float, dict[str, PairSetting]]:
    """The temperature (1 without calibration) and every pair's gate, tuned on these rows."""
    temperature = fit_temperature(probs, y) if calibrate == "temperature" else 1.0
    return temperature, tune_all(scale(probs, temperature), experts, y, pairs)


def apply(probs: np.ndarray, experts: dict[str, np.ndarray], pairs: dict[str, tuple[int, int]],
          tuned: tuple[float, dict[str, PairSetting]]) -> np.ndarray:
    temperature, settings = tuned
    return apply_all(scale(probs, temperature), experts, pairs, settings)


def run(params: Params) -> None:
    fingerprint = verify_test_set(params.data)
    classes = load_classes()
    rows = load_oof_rows(classes, params.run.folds)
    base = paths.ENSEMBLE_DIRS[params.override.base]
    before = read_stage_predictions(base, "oof", rows.ids, classes).probs.astype(np.float64)
    test = read_predictions(paths.prediction_table(base, "test"), classes)
    verify_fingerprint(test.test_fingerprint, paths.prediction_table(base, "test"))
    test_before = test.probs.astype(np.float64)
    pairs = pair_classes(params.pairs.list, classes) if params.override.enabled else {}
    expert_oof, expert_test_per_fold = load_pair_experts(list(pairs), params.run.folds, rows, test.ids)
    expert_test = {pair: prob_b.mean(axis=0) for pair, prob_b in expert_test_per_fold.items()}
    y = rows.y

    eval_fold = evaluation_folds(rows.fold, y, rows.groups, params.folds.n_splits, params.folds.seed)
    calibrate = params.override.calibrate if params.override.enabled else "none"
    after = cross_fit(
        eval_fold,
        lambda train: tune(before[train], _rows(expert_oof, train), y[train], pairs, calibrate),
        lambda tuned, held_out: apply(before[held_out], _rows(expert_oof, held_out), pairs, tuned),
    )
    temperature, settings = tune(before, expert_oof, y, pairs, calibrate)
    test_after = apply(test_before, expert_test, pairs, (temperature, settings))

    changed_oof = before.argmax(axis=1) != after.argmax(axis=1)
    changed_test = test_before.argmax(axis=1) != test_after.argmax(axis=1)
    metrics: dict = {
        "oof_coverage": rows.coverage,
        "n_oof": len(rows.ids),
        "n_changed_oof": int(changed_oof.sum()),
        "n_changed_test": int(changed_test.sum()),
        "before": oof_scores(y, before),
        "after": oof_scores(y, after),
        "temperature": temperature,
    }
    for pair, (a, b) in pairs.items():
        of_pair = np.isin(y, [a, b])
        metrics[pair] = {
            "margin": settings[pair].margin,
            "threshold": settings[pair].threshold,
            "n_changed_oof": int((changed_oof & candidates(before, a, b)[0]).sum()),
            "n_changed_test": int((changed_test & candidates(test_before, a, b)[0]).sum()),
            **binary_scores(y[of_pair] == b, expert_oof[pair][of_pair], settings[pair].threshold),
        }

    with atomic.together() as staged:
        tmp = staged.dir(paths.OVERRIDE_DIR)
        write_predictions(paths.prediction_table(tmp, "oof"), rows.ids, log_probs(after), after, classes)
        write_predictions(paths.prediction_table(tmp, "test"), test.ids, log_probs(test_after), test_after, classes,
                          fingerprint)
        staged.write_json(paths.metrics_file("override"), metrics)
