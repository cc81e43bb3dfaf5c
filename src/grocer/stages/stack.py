"""Stage `stack`: a meta-learner (`stack.method`) on the model matrix's predictions.

Features: grocer.ensemble.stack.build_features, on the OOF rows (each row from the
models of its own fold) and on the test rows (every model's folds averaged).
Honest numbers only: the OOF predictions written here, and `oof_acc`/`oof_f1`, come from
meta-models that never saw the rows they score (cross-fitted over the evaluation folds);
with groups, `logo_acc`/`logo_f1` score meta-models that never saw the rows' group.

The test prediction comes from one meta-model fitted on every OOF row, applied in the
regime it was fitted in: an OOF row's features come from the models of one fold, so the
meta-model is applied to each fold's models' test predictions in turn and its
probabilities are averaged. (Fed fold-averaged test predictions, which are smoother and
more confident than any single fold model's, it read them as a different distribution.)

A stack that does not beat its input is not passed on: when its cross-fitted OOF
accuracy is below the blend's (the stage's simpler alternative on the same rows), the
stage writes the blend's predictions instead and says so (`fallback: 1` in
metrics/stack.json, beside the meta-model's own scores under `meta`). On a few hundred
OOF rows (a quick `run.folds=[0]` A/B) a meta-model with a hundred features mostly
learns noise; the fallback keeps that noise out of the submission and the headline.
"""

from __future__ import annotations

import numpy as np

from grocer import atomic, paths
from grocer.dataset import load_classes, verify_test_set
from grocer.ensemble.blend import log_probs
from grocer.ensemble.crossfit import evaluation_folds, group_folds
from grocer.ensemble.metrics import oof_scores
from grocer.ensemble.stack import build_features, create_meta_model, cross_fit_probs
from grocer.ensemble.inputs import (load_model_matrix, load_oof_rows, load_pair_experts,
                                    read_stage_predictions)
from grocer.pairs import pair_classes
from grocer.params import Params
from grocer.predictions import write_predictions
from grocer.training.metrics import accuracy, macro_f1


def run(params: Params) -> None:
    fingerprint = verify_test_set(params.data)
    classes = load_classes()
    rows = load_oof_rows(classes, params.run.folds)
    matrix = load_model_matrix(params.run.models, params.run.folds, rows, classes)
    pairs = pair_classes(params.pairs.list, classes)
    expert_oof, expert_test = load_pair_experts(params.pairs.list, params.run.folds, rows, matrix.test_ids)

    oof_x = build_features(matrix.oof_logits, matrix.oof_probs, matrix.models, pairs, expert_oof)
    test_x_per_fold = [
        build_features(matrix.test_logits[:, j], matrix.test_probs[:, j], matrix.models, pairs,
                       {pair: prob_b[j] for pair, prob_b in expert_test.items()})
        for j in range(len(matrix.folds))
    ]

    def make_model():
        return create_meta_model(params.stack, oof_x.column_class, len(classes))

    eval_fold = evaluation_folds(rows.fold, rows.y, rows.groups, params.folds.n_splits, params.folds.seed)
    oof_probs = cross_fit_probs(oof_x.matrix, rows.y, eval_fold, make_model)
    meta_scores = oof_scores(rows.y, oof_probs)
    metrics: dict = {
        "oof_coverage": rows.coverage,
        "n_oof": len(rows.ids),
        "n_features": len(oof_x.names),
        "n_eval_folds": int(eval_fold.max() + 1),
    }
    if rows.groups is not None:
        logo_fold = group_folds(rows.groups, metrics["n_eval_folds"])
        logo_pred = cross_fit_probs(oof_x.matrix, rows.y, logo_fold, make_model).argmax(axis=1)
        metrics["n_groups"] = len(set(rows.groups))
        meta_scores.update(logo_acc=accuracy(rows.y, logo_pred), logo_f1=macro_f1(rows.y, logo_pred))

    blend_oof = read_stage_predictions(paths.BLEND_DIR, "oof", rows.ids, classes)
    fallback = meta_scores["oof_acc"] < oof_scores(rows.y, blend_oof.probs)["oof_acc"]
    if fallback:
        oof_probs = blend_oof.probs.astype(np.float64)
        test_probs = read_stage_predictions(paths.BLEND_DIR, "test", matrix.test_ids, classes).probs.astype(np.float64)
    else:
        meta = make_model().fit(oof_x.matrix, rows.y)
        test_probs = np.mean([meta.predict_proba(x.matrix) for x in test_x_per_fold], axis=0)
    metrics.update(fallback=int(fallback), **oof_scores(rows.y, oof_probs), meta=meta_scores)

    with atomic.together() as staged:
        tmp = staged.dir(paths.STACK_DIR)
        write_predictions(paths.prediction_table(tmp, "oof"), rows.ids, log_probs(oof_probs), oof_probs, classes)
        write_predictions(
            paths.prediction_table(tmp, "test"), matrix.test_ids, log_probs(test_probs), test_probs, classes,
            fingerprint,
        )
        staged.write_json(paths.metrics_file("stack"), metrics)
