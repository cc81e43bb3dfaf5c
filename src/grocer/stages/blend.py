"""Stage `blend`: convex NNLS weights per fold, then an optional class-bias calibration.

Weights: fold k's models are weighted by NNLS on fold k's own OOF rows (the rows those
models never trained on); the OOF blend of fold k's rows and fold k's share of the test
blend both use those weights, and the test blend averages the folds. The weights are a
handful of numbers per fold, so they are fitted and scored on the same rows.
Bias (`blend.calibrate_bias`): the OOF numbers come from biases cross-fitted over the
evaluation folds (grocer.ensemble.crossfit); the test blend gets the biases fitted on
every OOF row. Math: grocer.ensemble.blend.

Sources (`blend.sources`, grocer.blend_sources): predictions of other revisions or of a
teammate join the fold's members with weights of their own; the best single model stays
this run's. metrics/blend.json lists each source's members, their weights, and
`optimistic: 1` when a source's OOF rows did not come from this run's folds.

Writes data/predictions/blend/{oof,test}.parquet, weights.json, metrics/blend.json
(every single model, the equal-weight blend, the fitted blend, the calibrated blend) and
metrics/models.json, the headline per model of this run for `dvc exp show`: its OOF
accuracy, the worst of its folds' accuracies, and its mean blend weight.
"""

from __future__ import annotations

import numpy as np

from grocer import atomic, paths
from grocer.blend_sources import load_sources
from grocer.dataset import load_classes, verify_test_set
from grocer.ensemble.blend import blend_probs, fit_class_bias, fit_weights, log_probs
from grocer.ensemble.crossfit import cross_fit, evaluation_folds
from grocer.ensemble.metrics import oof_scores
from grocer.training.metrics import accuracy
from grocer.ensemble.inputs import ModelMatrix, OofRows, load_model_matrix, load_oof_rows
from grocer.params import Params
from grocer.predictions import softmax, write_predictions


def run(params: Params) -> None:
    fingerprint = verify_test_set(params.data)
    classes = load_classes()
    rows = load_oof_rows(classes, params.run.folds)
    matrix = load_model_matrix(params.run.models, params.run.folds, rows, classes)
    sources = load_sources(params.blend.sources, rows.ids, rows.fold, matrix.test_ids, classes)
    y = rows.y
    # members: this run's models, then every source's; a source predicts the test set once for all folds
    members = matrix.models + [s.name for s in sources]
    oof_probs = np.concatenate([matrix.oof_probs, [s.oof_probs for s in sources]]) if sources else matrix.oof_probs
    test_probs = matrix.test_probs
    if sources:
        per_fold = np.repeat(np.array([s.test_probs for s in sources])[:, None], len(matrix.folds), axis=1)
        test_probs = np.concatenate([test_probs, per_fold])

    metrics: dict = {"oof_coverage": rows.coverage, "n_oof": len(rows.ids)}
    singles = {member: oof_scores(y, oof_probs[m]) for m, member in enumerate(members)}
    best = max(matrix.models, key=lambda model: (singles[model]["oof_acc"], -singles[model]["oof_logloss"]))
    metrics["best_single"] = singles[best]
    metrics["equal"] = oof_scores(y, oof_probs.mean(axis=0))

    weights = {}
    oof_blend = np.zeros(oof_probs.shape[1:])
    test_blend = np.zeros(test_probs.shape[2:])
    for j, k in enumerate(matrix.folds):
        in_fold = rows.fold == k
        weights[k] = fit_weights(oof_probs[:, in_fold], y[in_fold])
        oof_blend[in_fold] = blend_probs(oof_probs[:, in_fold], weights[k])
        test_blend += blend_probs(test_probs[:, j], weights[k]) / len(matrix.folds)
    metrics["fitted"] = oof_scores(y, oof_blend)
    for m, member in enumerate(members):
        mean_weight = float(np.mean([weights[k][m] for k in matrix.folds]))
        metrics[f"model_{member}"] = {**singles[member], "weight": mean_weight}
    if params.blend.sources:
        metrics["sources"] = {
            source: {
                "members": [s.name for s in sources if s.source == source],
                "weight": sum(metrics[f"model_{s.name}"]["weight"] for s in sources if s.source == source),
                "optimistic": int(any(s.optimistic for s in sources if s.source == source)),
                "n_extra_oof_rows": max(s.n_extra_oof for s in sources if s.source == source),
            }
            for source in params.blend.sources
        }
        metrics["optimistic"] = int(any(s.optimistic for s in sources))

    blend_logits = log_probs(oof_blend)
    oof_logits, test_logits = blend_logits, log_probs(test_blend)
    bias = None
    if params.blend.calibrate_bias:
        eval_fold = evaluation_folds(rows.fold, y, rows.groups, params.folds.n_splits, params.folds.seed)
        oof_logits = cross_fit(
            eval_fold,
            lambda train: fit_class_bias(blend_logits[train], y[train]),
            lambda fitted, held_out: blend_logits[held_out] + fitted,
        )
        bias = fit_class_bias(blend_logits, y)
        test_logits = test_logits + bias
        metrics["bias"] = oof_scores(y, softmax(oof_logits))

    with atomic.together() as staged:
        tmp = staged.dir(paths.BLEND_DIR)
        write_predictions(paths.prediction_table(tmp, "oof"), rows.ids, oof_logits, softmax(oof_logits), classes)
        write_predictions(
            paths.prediction_table(tmp, "test"), matrix.test_ids, test_logits, softmax(test_logits), classes,
            fingerprint,
        )
        atomic.write_json(tmp / paths.BLEND_WEIGHTS.name, {
            "weights": {str(k): dict(zip(members, map(float, weights[k]))) for k in matrix.folds},
            "class_bias": None if bias is None else dict(zip(classes, map(float, bias))),
        })
        staged.write_json(paths.metrics_file("blend"), metrics)
        staged.write_json(paths.MODELS_METRICS, model_summary(matrix, rows, metrics))


def model_summary(matrix: ModelMatrix, rows: OofRows, metrics: dict) -> dict:
    """Per model: OOF accuracy, the worst accuracy of its folds, mean blend weight."""
    summary = {}
    for m, model in enumerate(matrix.models):
        pred = matrix.oof_probs[m].argmax(axis=1)
        fold_acc = [accuracy(rows.y[rows.fold == k], pred[rows.fold == k]) for k in matrix.folds]
        section = metrics[f"model_{model}"]
        summary[model] = {"oof_acc": section["oof_acc"], "fold_acc_min": float(np.min(fold_acc)),
                          "weight": section["weight"]}
    return summary
