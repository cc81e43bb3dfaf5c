"""Stage `stack`: a meta-learner (`stack.method`) on the model matrix's predictions.

Features: grocer.ensemble.stack.build_features, on the OOF rows (each row from the
models of its own fold) and on the test rows (every model's folds averaged).
Honest numbers only: the OOF predictions written here, and `oof_acc`/`oof_f1`, come from
meta-models that never saw the rows they score (cross-fitted over the evaluation folds);
with groups, `logo_acc`/`logo_f1` score meta-models that never saw the rows' group.
The test prediction comes from one meta-model fitted on every OOF row.

Writes data/predictions/stack/{oof,test}.parquet and metrics/stack.json.
"""

from __future__ import annotations

from grocer import atomic, paths
from grocer.dataset import load_classes
from grocer.ensemble.blend import log_probs
from grocer.ensemble.crossfit import evaluation_folds, group_folds
from grocer.ensemble.metrics import oof_scores
from grocer.ensemble.stack import build_features, create_meta_model, cross_fit_probs
from grocer.ensemble_inputs import load_model_matrix, load_oof_rows, load_pair_experts, pair_classes
from grocer.params import Params
from grocer.predictions import write_predictions
from grocer.training.metrics import accuracy, macro_f1


def run(params: Params) -> None:
    classes = load_classes()
    rows = load_oof_rows(classes, params.run.folds)
    matrix = load_model_matrix(params.run.models, params.run.folds, rows, classes)
    pairs = pair_classes(params.pairs.list, classes)
    expert_oof, expert_test = load_pair_experts(params.pairs.list, params.run.folds, rows, matrix.test_ids)

    oof_x = build_features(matrix.oof_logits, matrix.oof_probs, matrix.models, pairs, expert_oof)
    test_x = build_features(
        matrix.test_logits.mean(axis=1), matrix.test_probs.mean(axis=1), matrix.models, pairs, expert_test
    )

    def make_model():
        return create_meta_model(params.stack, oof_x.column_class, len(classes))

    eval_fold = evaluation_folds(rows.fold, rows.y, rows.groups, params.folds.n_splits, params.folds.seed)
    oof_probs = cross_fit_probs(oof_x.matrix, rows.y, eval_fold, make_model)
    metrics: dict = {
        "oof_coverage": rows.coverage,
        "n_oof": len(rows.ids),
        "n_features": len(oof_x.names),
        "n_eval_folds": int(eval_fold.max() + 1),
        **oof_scores(rows.y, oof_probs),
    }
    if rows.groups is not None:
        logo_fold = group_folds(rows.groups, metrics["n_eval_folds"])
        logo_pred = cross_fit_probs(oof_x.matrix, rows.y, logo_fold, make_model).argmax(axis=1)
        metrics.update(
            n_groups=len(set(rows.groups)), logo_acc=accuracy(rows.y, logo_pred), logo_f1=macro_f1(rows.y, logo_pred)
        )
    test_probs = make_model().fit(oof_x.matrix, rows.y).predict_proba(test_x.matrix)

    with atomic.replace_dir(paths.STACK_DIR) as tmp:
        write_predictions(paths.prediction_table(tmp, "oof"), rows.ids, log_probs(oof_probs), oof_probs, classes)
        write_predictions(
            paths.prediction_table(tmp, "test"), matrix.test_ids, log_probs(test_probs), test_probs, classes
        )
    atomic.write_json(paths.metrics_file("stack"), metrics)
