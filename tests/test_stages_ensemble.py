"""blend -> stack -> override -> submit on a synthetic tmp project whose prediction tables the test writes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from support.ensemble_project import (CLASSES, MODELS, N_FOLDS, N_TEST, N_TRAIN, OVERRIDES, params_for, run_chain,
                                      write_project)
from support.params import deep_update, default_params_dict
from grocer import atomic, cli, paths
from grocer.errors import GrocerError
from grocer.predictions import write_predictions
from grocer.ensemble.stack import build_features, create_meta_model
from grocer.ensemble.override import candidates
from grocer.ensemble.temperature import fit_temperature, scale
from grocer.ensemble.inputs import load_model_matrix, load_oof_rows, load_pair_experts
from grocer.stages import audit, blend, choose_pairs, override, stack, submit


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    info = write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    return info


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_full_chain_writes_submission_and_evolution(project):
    run_chain(params_for())

    blend_metrics = read_json(paths.metrics_file("blend"))
    assert blend_metrics["oof_coverage"] == 1.0
    assert {"best_single", "equal", "fitted", "bias", "model_resnet", "model_regnet"} <= set(blend_metrics)
    weights = read_json(paths.BLEND_WEIGHTS)["weights"]
    assert set(weights) == {"0", "1", "2"}
    for per_fold in weights.values():
        assert np.isclose(sum(per_fold.values()), 1.0) and min(per_fold.values()) >= 0
        assert per_fold["regnet"] > per_fold["resnet"]  # the stronger model weighs more

    stack_metrics = read_json(paths.metrics_file("stack"))
    assert stack_metrics["n_eval_folds"] == N_FOLDS and stack_metrics["n_groups"] == 10
    assert 0.5 < stack_metrics["oof_acc"] <= 1 and 0 < stack_metrics["meta"]["logo_acc"] <= 1

    override_metrics = read_json(paths.metrics_file("override"))
    assert override_metrics["c0-c1"]["auc"] > 0.9
    assert override_metrics["after"]["oof_acc"] >= override_metrics["before"]["oof_acc"]

    final = read_json(paths.FINAL_METRICS)
    assert list(k for k in final if isinstance(final[k], dict)) == ["best_single", "blend", "bias", "stack", "override"]
    assert final["oof_acc"] == final["override"]["oof_acc"] == override_metrics["after"]["oof_acc"]
    assert (final.pop("submitted"), final.pop("source")) == ("override", "override")
    assert final["oof_coverage"] == 1.0
    assert 0 <= final["test_acc"] <= 1 and 0 <= final["test_f1"] <= 1
    all_numbers = [v for v in final.values() if not isinstance(v, dict)]
    all_numbers += [x for v in final.values() if isinstance(v, dict) for x in v.values()]
    assert all(isinstance(v, float) for v in all_numbers)

    submission = pd.read_csv(paths.SUBMISSION, dtype=str)
    assert list(submission.columns) == ["image_id", "label"]
    assert submission["image_id"].tolist() == project["sample_order"]
    assert set(submission["label"]) <= set(CLASSES)
    test = pd.read_parquet(paths.prediction_table(paths.OVERRIDE_DIR, "test")).set_index("image_id")
    expected = test.loc[project["sample_order"], [f"prob_{c}" for c in CLASSES]].to_numpy().argmax(axis=1)
    assert submission["label"].tolist() == [CLASSES[k] for k in expected]
    truth = pd.read_csv(paths.SAMPLE_TEST_LABELS).set_index("image_id").loc[project["sample_order"], "label"]
    assert final["test_acc"] == pytest.approx((truth.to_numpy() == submission["label"].to_numpy()).mean())


def stack_test_probs() -> np.ndarray:
    test = pd.read_parquet(paths.prediction_table(paths.STACK_DIR, "test")).set_index("image_id").sort_index()
    return test[[f"prob_{c}" for c in CLASSES]].to_numpy()


def test_stack_is_applied_to_each_folds_models_as_it_was_fitted(project):
    """The meta-model learnt from single-fold-model OOF features, so the test prediction is the
    mean of its probabilities on each fold's test features, not its output on fold-averaged ones."""
    params = params_for()
    blend.run(params)
    stack.run(params)
    assert read_json(paths.metrics_file("stack"))["fallback"] == 0
    rows = load_oof_rows(CLASSES, params.run.folds)
    matrix = load_model_matrix(MODELS, params.run.folds, rows, CLASSES)
    pairs = {"c0-c1": (0, 1)}
    expert_oof, expert_test = load_pair_experts(list(pairs), params.run.folds, rows, matrix.test_ids)
    oof_x = build_features(matrix.oof_logits, matrix.oof_probs, MODELS, pairs, expert_oof)
    meta = create_meta_model(params.stack, oof_x.column_class, len(CLASSES)).fit(oof_x.matrix, rows.y)
    order = np.argsort(matrix.test_ids)

    def test_probs(logits, probs, experts):
        return meta.predict_proba(build_features(logits, probs, MODELS, pairs, experts).matrix)[order]

    per_fold = np.mean([test_probs(matrix.test_logits[:, j], matrix.test_probs[:, j],
                                   {p: e[j] for p, e in expert_test.items()}) for j in range(N_FOLDS)], axis=0)
    averaged = test_probs(matrix.test_logits.mean(axis=1), matrix.test_probs.mean(axis=1),
                          {p: e.mean(axis=0) for p, e in expert_test.items()})
    assert np.allclose(stack_test_probs(), per_fold, atol=1e-6)
    assert not np.allclose(stack_test_probs(), averaged, atol=1e-3)  # the two regimes differ on these tables


def test_a_stack_that_does_not_beat_the_blend_passes_the_blend_on(project):
    # a ridge this strong predicts nearly the class prior: far below the blend on OOF
    params = params_for({"stack": {"method": "classwise_ridge", "ridge_alpha": 1e7}})
    blend.run(params)
    stack.run(params)
    metrics = read_json(paths.metrics_file("stack"))
    blend_metrics = read_json(paths.metrics_file("blend"))
    assert metrics["fallback"] == 1 and metrics["meta"]["oof_acc"] < blend_metrics["bias"]["oof_acc"]
    assert metrics["oof_acc"] == blend_metrics["bias"]["oof_acc"]  # the stack's headline is what it passes on
    for split in ("oof", "test"):
        passed = pd.read_parquet(paths.prediction_table(paths.STACK_DIR, split)).set_index("image_id")
        blended = pd.read_parquet(paths.prediction_table(paths.BLEND_DIR, split)).set_index("image_id")
        columns = [f"prob_{c}" for c in CLASSES]
        assert np.allclose(passed.loc[blended.index, columns].to_numpy(), blended[columns].to_numpy(), atol=1e-6)


def test_quick_mode_works_on_the_oof_rows_available(project):
    run_chain(params_for({"run": {"folds": [1]}}))
    final = read_json(paths.FINAL_METRICS)
    assert final["oof_coverage"] == pytest.approx(1 / N_FOLDS)
    stack_metrics = read_json(paths.metrics_file("stack"))
    assert stack_metrics["n_oof"] == N_TRAIN // N_FOLDS
    assert stack_metrics["n_eval_folds"] >= 2  # the single fold was split again for honest scores
    assert len(pd.read_parquet(paths.prediction_table(paths.BLEND_DIR, "oof"))) == N_TRAIN // N_FOLDS
    assert list(read_json(paths.BLEND_WEIGHTS)["weights"]) == ["1"]
    assert len(pd.read_csv(paths.SUBMISSION)) == N_TEST


def test_switched_off_steps_leave_the_chain(project):
    run_chain(params_for({"blend": {"calibrate_bias": False}, "override": {"enabled": False}}))
    final = read_json(paths.FINAL_METRICS)
    assert [k for k in final if k in submit.STEP_NAMES] == ["best_single", "blend", "stack"]
    assert "bias" not in read_json(paths.metrics_file("blend"))
    assert read_json(paths.metrics_file("override"))["n_changed_oof"] == 0
    stack_test = pd.read_parquet(paths.prediction_table(paths.STACK_DIR, "test")).set_index("image_id")
    labels = stack_test.loc[pd.read_csv(paths.SUBMISSION)["image_id"], [f"prob_{c}" for c in CLASSES]].to_numpy()
    assert pd.read_csv(paths.SUBMISSION)["label"].tolist() == [CLASSES[k] for k in labels.argmax(axis=1)]


@pytest.mark.parametrize(("source", "step", "directory"), [("blend", "bias", paths.BLEND_DIR),
                                                          ("stack", "stack", paths.STACK_DIR)])
def test_submit_source_picks_the_submitted_and_audited_step(project, source, step, directory):
    run_chain(params_for())
    make_override_wrong()

    params = params_for({"submit": {"source": source}})
    submit.run(params)
    audit.run(params)
    final = read_json(paths.FINAL_METRICS)
    assert [k for k in final if k in submit.STEP_NAMES][-1] == "override"  # the evolution stays whole
    assert final["oof_acc"] == final[step]["oof_acc"]
    assert read_json(paths.metrics_file("audit"))["oof_acc"] == pytest.approx(final[step]["oof_acc"])

    def labels(directory):
        test = pd.read_parquet(paths.prediction_table(directory, "test")).set_index("image_id")
        return test.loc[project["sample_order"], [f"prob_{c}" for c in CLASSES]].to_numpy().argmax(axis=1).tolist()

    submitted = [CLASSES.index(c) for c in pd.read_csv(paths.SUBMISSION)["label"]]
    assert submitted == labels(directory) != labels(paths.OVERRIDE_DIR)


def test_override_calibrates_the_base_before_the_gate(project):
    columns = [f"prob_{c}" for c in CLASSES]

    def test_probs(directory: Path) -> np.ndarray:
        table = pd.read_parquet(paths.prediction_table(directory, "test")).set_index("image_id")
        return table.loc[project["sample_order"], columns].to_numpy()

    run_chain(params_for({"override": {"calibrate": "none"}}))
    assert read_json(paths.metrics_file("override"))["temperature"] == 1.0
    base = test_probs(paths.STACK_DIR)
    outside_the_pair = ~candidates(base, 0, 1)[0]  # rows no expert can change
    assert np.allclose(test_probs(paths.OVERRIDE_DIR)[outside_the_pair], base[outside_the_pair], atol=1e-6)

    override.run(params_for({"override": {"calibrate": "temperature"}}))
    temperature = read_json(paths.metrics_file("override"))["temperature"]
    rows = load_oof_rows(CLASSES, [0, 1, 2])
    stack_oof = pd.read_parquet(paths.prediction_table(paths.STACK_DIR, "oof")).set_index("image_id")
    assert temperature == pytest.approx(fit_temperature(stack_oof.loc[rows.ids, columns].to_numpy(), rows.y), rel=1e-3)
    assert abs(temperature - 1.0) > 0.05
    scaled = scale(base, temperature)[outside_the_pair]
    assert np.allclose(test_probs(paths.OVERRIDE_DIR)[outside_the_pair], scaled, atol=1e-6)


def test_slots_take_the_most_confused_pairs_of_the_blend(project):
    blend.run(params_for())
    choose_pairs.run(params_for())  # no slot: nothing to choose
    assert read_json(paths.CHOSEN_PAIRS) == {}

    slots = params_for({"pairs": {"list": ["top1"]}})
    choose_pairs.run(slots)
    assert read_json(paths.CHOSEN_PAIRS) == {"top1": "c0-c1"}  # the fixture's models confuse c0 and c1
    rows = load_oof_rows(CLASSES, [0, 1, 2])
    pred = pd.read_parquet(paths.prediction_table(paths.BLEND_DIR, "oof")).set_index("image_id").loc[
        rows.ids, [f"prob_{c}" for c in CLASSES]].to_numpy().argmax(axis=1)
    confused = int(((rows.y == 0) & (pred == 1)).sum() + ((rows.y == 1) & (pred == 0)).sum())
    assert read_json(paths.metrics_file("choose-pairs")) == {"top1": {"pair": "c0-c1", "oof_confusions": confused}}

    choose_pairs.run(params_for({"pairs": {"list": ["c0-c1", "top1"]}}))  # a listed pair is not chosen again
    assert read_json(paths.CHOSEN_PAIRS)["top1"] != "c0-c1"
    with pytest.raises(GrocerError, match="'top9' asks for the 9th most confused pair"):
        choose_pairs.run(params_for({"pairs": {"list": ["top9"]}}))

    # a slot's expert (models/pairs/top1/) is the chosen pair's expert in the stack and the override
    choose_pairs.run(slots)
    for k in range(N_FOLDS):
        shutil.copytree(paths.pair_item_dir("c0-c1", k), paths.pair_item_dir("top1", k))
    stack.run(slots)
    override.run(slots)
    assert read_json(paths.metrics_file("override"))["top1"]["auc"] > 0.9


def make_override_wrong() -> None:
    """An override that predicts each row's least likely class."""
    for split in ("oof", "test"):
        table = pd.read_parquet(paths.prediction_table(paths.OVERRIDE_DIR, split))
        probs = table[[f"prob_{c}" for c in CLASSES]].to_numpy()[:, ::-1]
        write_predictions(paths.prediction_table(paths.OVERRIDE_DIR, split), table["image_id"].tolist(),
                          np.log(probs), probs, CLASSES)


def test_submit_source_auto_picks_by_the_worst_group_aware_score_and_audit_follows(project):
    run_chain(params_for())
    make_override_wrong()
    params = params_for({"submit": {"source": "auto", "group_weight": 0.5, "group_quantile": 0.0}})
    submit.run(params)
    audit.run(params)
    final = read_json(paths.FINAL_METRICS)
    selection = final["selection"]
    assert set(selection) == {"chosen", "group_fallback", "auto_oof_acc", "blend", "stack", "override"}
    scores = {name: selection[name]["score"] for name in ("blend", "stack", "override")}
    assert selection["chosen"] == final["source"] == max(scores, key=scores.get) != "override"
    for name in scores:
        s = selection[name]
        assert s["score"] == pytest.approx(s["oof_acc"] - 0.5 * (s["oof_acc"] - s["group_q"]))
    assert selection["override"]["oof_acc"] < 0.2 and selection["group_fallback"] == 0
    assert 0.5 < selection["auto_oof_acc"] <= max(selection[n]["oof_acc"] for n in scores)
    assert read_json(paths.metrics_file("audit"))["oof_acc"] == pytest.approx(final["oof_acc"])
    chosen = pd.read_parquet(paths.prediction_table(paths.ENSEMBLE_DIRS[final["source"]], "test")).set_index("image_id")
    expected = chosen.loc[project["sample_order"], [f"prob_{c}" for c in CLASSES]].to_numpy().argmax(axis=1)
    assert pd.read_csv(paths.SUBMISSION)["label"].tolist() == [CLASSES[k] for k in expected]


def test_submit_source_auto_without_groups_says_it_uses_accuracy(project, capsys):
    run_chain(params_for())
    table = pd.read_csv(paths.FOLDS)
    table.assign(group="").to_csv(paths.FOLDS, index=False)
    submit.run(params_for({"submit": {"source": "auto"}, "override": {"enabled": False}}))
    selection = read_json(paths.FINAL_METRICS)["selection"]
    assert selection["group_fallback"] == 1 and "override" not in selection and "group_q" not in selection["stack"]
    assert "picks by OOF accuracy alone" in capsys.readouterr().out


def test_override_corrects_the_blend_when_it_is_the_base(project):
    run_chain(params_for({"override": {"base": "blend"}}))
    calibrated_blend = read_json(paths.metrics_file("blend"))["bias"]
    assert calibrated_blend["oof_acc"] != read_json(paths.metrics_file("stack"))["oof_acc"]  # the bases differ
    assert read_json(paths.metrics_file("override"))["before"]["oof_acc"] == calibrated_blend["oof_acc"]

    params = params_for({"override": {"base": "blend", "enabled": False}})
    override.run(params)
    submit.run(params)
    assert read_json(paths.FINAL_METRICS)["oof_acc"] == calibrated_blend["oof_acc"]
    blend_test = pd.read_parquet(paths.prediction_table(paths.BLEND_DIR, "test")).set_index("image_id")
    labels = blend_test.loc[project["sample_order"], [f"prob_{c}" for c in CLASSES]].to_numpy().argmax(axis=1)
    assert pd.read_csv(paths.SUBMISSION)["label"].tolist() == [CLASSES[k] for k in labels]


def test_missing_model_predictions_are_named(project):
    paths.prediction_table(paths.infer_dir("regnet", 1), "oof").unlink()
    with pytest.raises(GrocerError, match=r"infer@regnet \(fold 1\)") as error:
        blend.run(params_for())
    assert "infer@resnet" not in str(error.value)
    # a model/fold left out of run.folds is not required
    blend.run(params_for({"run": {"folds": [0, 2]}}))


def test_missing_pair_expert_is_named(project):
    paths.prediction_table(paths.pair_item_dir("c0-c1", 2), "test").unlink()
    with pytest.raises(GrocerError, match=r"pair@c0-c1-2"):
        stack.run(params_for())


def test_mismatched_oof_ids_are_an_error(project):
    path = paths.prediction_table(paths.infer_dir("resnet", 0), "oof")
    table = pd.read_parquet(path)
    table.loc[0, "image_id"] = "intruder.jpg"
    table.to_parquet(path, index=False)
    with pytest.raises(GrocerError, match=r"intruder\.jpg"):
        blend.run(params_for())
    table.drop(index=0).to_parquet(path, index=False)  # now one fold row has no prediction
    with pytest.raises(GrocerError, match=r"no prediction for 1 id"):
        blend.run(params_for())


def test_test_ids_must_agree_across_models(project):
    path = paths.prediction_table(paths.infer_dir("regnet", 2), "test")
    pd.read_parquet(path).iloc[1:].to_parquet(path, index=False)
    with pytest.raises(GrocerError, match=str(path)):
        stack.run(params_for())


def test_expert_must_score_every_fold_row(project):
    path = paths.prediction_table(paths.pair_item_dir("c0-c1", 0), "oof")
    pd.read_parquet(path).iloc[3:].to_parquet(path, index=False)
    with pytest.raises(GrocerError, match=r"no prediction for 3 id"):
        stack.run(params_for())


def test_a_different_test_set_is_refused(project):
    (Path(paths.infer_meta("resnet", 1))).write_text(json.dumps({"test_fingerprint": "0" * 64}))
    with pytest.raises(GrocerError, match="different test set"):
        blend.run(params_for())


def test_submission_follows_the_sample_header_and_order(tmp_path, monkeypatch):
    info = write_project(tmp_path, data_dir="data/raw", id_col="id", label_col="class")
    monkeypatch.chdir(tmp_path)
    params = params_for({"data": {"dir": "data/raw", "id_col": "id", "label_col": "class"}})
    run_chain(params)
    text = paths.SUBMISSION.read_text().splitlines()
    assert text[0] == "id,class"
    assert [line.split(",")[0] for line in text[1:]] == info["sample_order"]
    assert "test_acc" not in read_json(paths.FINAL_METRICS)  # not the sample: no known test labels


def test_submission_is_verified_by_reading_it_back(project, monkeypatch):
    run_chain(params_for())
    before = paths.SUBMISSION.read_bytes(), paths.FINAL_METRICS.read_bytes()
    real_write = atomic.Staged.write_frame

    def lossy_write(self, path, frame):  # a writer that drops the last row
        return real_write(self, path, frame.iloc[:-1])

    monkeypatch.setattr(atomic.Staged, "write_frame", lossy_write)
    with pytest.raises(GrocerError, match="reading it back"):
        submit.run(params_for())
    assert (paths.SUBMISSION.read_bytes(), paths.FINAL_METRICS.read_bytes()) == before  # neither replaced


def test_cli_reports_one_line_for_missing_predictions(project, capsys):
    Path("params.yaml").write_text(yaml.safe_dump(deep_update(default_params_dict(), OVERRIDES)))
    paths.prediction_table(paths.infer_dir("resnet", 0), "test").unlink()
    assert cli.main(["blend"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("grocer blend: error: missing predictions of infer@resnet (fold 0)")
    assert len(err.splitlines()) == 1


def test_override_stage_fixes_a_confused_stack_and_touches_only_pair_rows(project):
    """A stack that mixes up c0/c1 at small margins: the (good) expert is switched on and fixes rows."""
    rng = np.random.default_rng(3)
    folds = pd.read_csv(paths.FOLDS)
    y = folds["label"].map({c: k for k, c in enumerate(CLASSES)}).to_numpy()
    probs = np.full((len(y), 4), 0.02)
    probs[np.arange(len(y)), y] = 0.94
    pair_rows = np.isin(y, [0, 1])
    probs[pair_rows, 0] = rng.uniform(0.40, 0.52, pair_rows.sum())  # a coin flip between c0 and c1
    probs[pair_rows, 1] = 0.96 - probs[pair_rows, 0]
    write_predictions(paths.prediction_table(paths.STACK_DIR, "oof"), folds["image_id"].tolist(), np.log(probs),
                      probs, CLASSES)
    test_probs = np.tile([0.47, 0.49, 0.02, 0.02], (N_TEST, 1))
    write_predictions(paths.prediction_table(paths.STACK_DIR, "test"), project["test_ids"], np.log(test_probs),
                      test_probs, CLASSES, project["fingerprint"])

    override.run(params_for({"override": {"calibrate": "none"}}))  # the rows outside the pair stay as they are
    metrics = read_json(paths.metrics_file("override"))
    assert metrics["c0-c1"]["margin"] > 0
    assert metrics["n_changed_oof"] > 10 and metrics["n_changed_test"] > 0
    assert metrics["after"]["oof_acc"] > metrics["before"]["oof_acc"] + 0.1
    after = pd.read_parquet(paths.prediction_table(paths.OVERRIDE_DIR, "oof"))
    after = after[[f"prob_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(after[~pair_rows], probs[~pair_rows], rtol=1e-6)


def test_test_predictions_must_cover_the_whole_test_set(project):
    for model in MODELS:
        for k in range(N_FOLDS):
            path = paths.prediction_table(paths.infer_dir(model, k), "test")
            table = pd.read_parquet(path)
            table[table["image_id"] != "te000.jpg"].to_parquet(path, index=False)
    with pytest.raises(GrocerError, match=f"hold {N_TEST - 1} ids, ingest saw {N_TEST}"):
        blend.run(params_for())


def write_teammate_source(project: dict, name: str, drop_oof: int = 0, extra_oof: int = 0) -> np.ndarray:
    """data/sources/<name>/{oof,test}.csv: probabilities only, from a model right on 90% of the rows."""
    rng = np.random.default_rng(5)
    folds = pd.read_csv(paths.FOLDS)
    y = folds["label"].map(CLASSES.index).to_numpy()
    ids = folds["image_id"].tolist()

    def table(ids, labels):
        right = rng.random(len(ids)) < 0.9
        pred = np.where(right, labels, (labels + 1) % len(CLASSES))
        probs = np.full((len(ids), len(CLASSES)), 0.05)
        probs[np.arange(len(ids)), pred] = 0.85
        return pd.DataFrame({"image_id": ids, **{f"prob_{c}": probs[:, k] for k, c in enumerate(CLASSES)}})

    folder = paths.SOURCES_DIR / name
    folder.mkdir(parents=True)
    oof = table(ids + [f"gone{i}.jpg" for i in range(extra_oof)], np.concatenate([y, np.zeros(extra_oof, int)]))
    oof.iloc[drop_oof:].to_csv(folder / "oof.csv", index=False)
    truth = pd.read_csv(paths.SAMPLE_TEST_LABELS)
    test = table(truth["image_id"].tolist(), truth["label"].map(CLASSES.index).to_numpy())
    test.to_csv(folder / "test.csv", index=False)
    return y


def test_blend_sources_join_the_blend_with_weights_and_flags(project):
    blend.run(params_for())
    alone = read_json(paths.metrics_file("blend"))
    assert "sources" not in alone
    write_teammate_source(project, "mate", extra_oof=2)
    shutil.copytree(paths.MODEL_PREDICTIONS_DIR, paths.SOURCES_DIR / "before")  # a `dvc import` of the same folds

    blend.run(params_for({"blend": {"sources": ["mate", "before"]}}))
    metrics = read_json(paths.metrics_file("blend"))
    assert metrics["sources"]["mate"] == {"members": ["mate"], "weight": pytest.approx(metrics["model_mate"]["weight"]),
                                          "optimistic": 1, "n_extra_oof_rows": 2}
    assert metrics["sources"]["before"]["members"] == ["before:regnet", "before:resnet"]
    assert metrics["sources"]["before"]["optimistic"] == 0 and metrics["optimistic"] == 1
    assert metrics["model_mate"]["weight"] > 0.3  # the strong teammate is used
    assert metrics["fitted"]["oof_acc"] > alone["fitted"]["oof_acc"] + 0.05
    assert metrics["best_single"] == alone["best_single"]  # the best single model stays this run's
    weights = read_json(paths.BLEND_WEIGHTS)["weights"]["0"]
    assert set(weights) == {"resnet", "regnet", "mate", "before:regnet", "before:resnet"}


@pytest.mark.parametrize(("change", "message"), [
    ("missing_row", "'mate' has no OOF prediction for 1 id"),
    ("other_class", "other classes than this run's: missing ['c3'], extra ['c9']"),
    ("extra_test", "'mate' predicts 1 test id(s) this test set does not have"),
    ("absent", "data/sources/mate does not exist"),
])
def test_a_bad_blend_source_is_named(project, change, message):
    if change != "absent":
        write_teammate_source(project, "mate", drop_oof=int(change == "missing_row"))
    folder = paths.SOURCES_DIR / "mate"
    if change == "other_class":
        frame = pd.read_csv(folder / "oof.csv")
        frame.rename(columns={"prob_c3": "prob_c9"}).to_csv(folder / "oof.csv", index=False)
    if change == "extra_test":
        frame = pd.read_csv(folder / "test.csv")
        pd.concat([frame, frame.iloc[:1].assign(image_id="new.jpg")]).to_csv(folder / "test.csv", index=False)
    with pytest.raises(GrocerError, match=re.escape(message)):
        blend.run(params_for({"blend": {"sources": ["mate"]}}))
    assert not paths.metrics_file("blend").exists()


def test_an_imported_source_on_other_folds_is_optimistic(project):
    source = paths.SOURCES_DIR / "old"
    shutil.copytree(paths.MODEL_PREDICTIONS_DIR, source)
    for model in MODELS:  # the old run's folds 0 and 1 swapped
        (source / model / "f0").rename(source / model / "tmp")
        (source / model / "f1").rename(source / model / "f0")
        (source / model / "tmp").rename(source / model / "f1")
    blend.run(params_for({"blend": {"sources": ["old"]}}))
    assert read_json(paths.metrics_file("blend"))["sources"]["old"]["optimistic"] == 1
