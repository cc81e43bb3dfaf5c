"""The ensemble stages' honesty: no OOF prediction comes from a fit that saw its row.

Three kinds of check on synthetic prediction tables (no training):
  relabelling  the labels of fold 0 are changed and the stage re-run: fold 0's OOF
               predictions must stay byte-identical (they come from fits on the other
               folds only), while the other folds' change (the relabelling matters);
  spies        every meta-model fit, class-bias fit and override tuning records the rows it saw;
               no row may be predicted by a fit that saw it (also in quick mode, where
               the evaluation folds are an inner split of one base fold);
  chance       on labels the models know nothing about, the cross-fitted stack scores
               near chance, where an in-sample one scores far above it; a step that
               `submit.source: auto` would choose only where it is right scores 0 held out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from support.dataset import write_test_set
from support.params import deep_update, make_params
from grocer import atomic, paths
from grocer.predictions import read_predictions, softmax, write_predictions
from grocer.stages import blend, override, stack, submit

CLASSES = ["c0", "c1", "c2", "c3"]
MODELS = ["resnet", "regnet"]
PAIR = "c0-c1"
N_ROWS, N_TEST, N_FOLDS = 240, 30, 3


def write_project(root: Path, y: np.ndarray, shift: int, strength: float, seed: int = 0) -> None:
    """folds.csv (3 folds, 10 groups) and every infer and pair item of `MODELS` and `PAIR`.

    The models' logits peak at class (y + shift) % K by `strength` over unit noise; the
    expert's prob_b is a noisy guess of "is c1". With strength 0 neither knows anything.
    """
    rng = np.random.default_rng(seed)
    ids = [f"tr{i:03d}" for i in range(N_ROWS)]
    folds = np.arange(N_ROWS) % N_FOLDS
    test_ids = [f"te{i:03d}" for i in range(N_TEST)]
    test_y = rng.integers(0, len(CLASSES), N_TEST)
    (root / paths.INTERIM_DIR).mkdir(parents=True)
    (root / paths.CLASSES).write_text(json.dumps({"classes": CLASSES}))
    sha = write_test_set(root, test_ids)
    write_labels(root, ids, y, folds)

    def logits(labels: np.ndarray) -> np.ndarray:
        out = rng.normal(0, 1, (labels.size, len(CLASSES)))
        out[np.arange(labels.size), (labels + shift) % len(CLASSES)] += strength
        return out

    def expert(labels: np.ndarray) -> np.ndarray:
        signal = 0.25 if strength else 0.0
        return np.clip(0.5 + signal * (2 * (labels == 1) - 1) + rng.normal(0, 0.2, labels.size), 0, 1)

    for k in range(N_FOLDS):
        fold_ids = [i for i, f in zip(ids, folds) if f == k]
        for model in MODELS:
            item = root / paths.infer_dir(model, k)
            for split, split_ids, labels in (("oof", fold_ids, y[folds == k]), ("test", test_ids, test_y)):
                z = logits(labels)
                write_predictions(paths.prediction_table(item, split), split_ids, z, softmax(z), CLASSES)
            (item / "meta.json").write_text(json.dumps({"test_fingerprint": sha}))
        item = root / paths.pair_item_dir(PAIR, k)
        for split, split_ids, labels in (("oof", fold_ids, y[folds == k]), ("test", test_ids, test_y)):
            frame = pd.DataFrame({"image_id": split_ids, "prob_b": expert(labels)})
            frame.attrs["test_fingerprint"] = sha
            atomic.write_frame(paths.prediction_table(item, split), frame)


def write_labels(root: Path, ids: list[str], y: np.ndarray, folds: np.ndarray) -> None:
    groups = [f"g{i % 10}" for i in range(len(ids))]
    labels = [CLASSES[k] for k in y]
    (root / paths.FOLDS).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"image_id": ids, "label": labels, "group": groups, "fold": folds}).to_csv(root / paths.FOLDS,
                                                                                          index=False)


def relabel_fold_0(root: Path) -> None:
    """Every label of fold 0 moves two classes on (not one: the models' own guess); the other folds' stay."""
    table = pd.read_csv(root / paths.FOLDS)
    y = table["label"].map(CLASSES.index).to_numpy().copy()
    fold_0 = table["fold"].to_numpy() == 0
    y[fold_0] = (y[fold_0] + 2) % len(CLASSES)
    write_labels(root, table["image_id"].tolist(), y, table["fold"].to_numpy())


def params_for(extra: dict | None = None):
    base = {"run": {"models": MODELS, "folds": [0, 1, 2]}, "folds": {"n_splits": N_FOLDS},
            "pairs": {"list": [PAIR]}, "stack": {"method": "logreg"}}
    return make_params(deep_update(base, extra or {}))


def write_confused_base(root: Path, run_folds: list[int], seed: int = 1) -> None:
    """The override's base (the stack's tables) on the rows of `run_folds`: right on c2/c3, a
    coin flip between c0 and c1 at small margins on their rows, every row's probabilities distinct."""
    rng = np.random.default_rng(seed)
    folds = pd.read_csv(root / paths.FOLDS)
    folds = folds[folds["fold"].isin(run_folds)]
    y = folds["label"].map(CLASSES.index).to_numpy()
    z = rng.normal(0, 0.1, (len(y), len(CLASSES)))
    z[np.arange(len(y)), y] += 3.0
    of_pair = np.isin(y, [0, 1])
    z[of_pair, 0] = z[of_pair, 1] = 3.0
    z[of_pair, :2] += rng.normal(0, 0.3, (of_pair.sum(), 2))
    write_predictions(root / paths.prediction_table(paths.STACK_DIR, "oof"), folds["image_id"].tolist(), z,
                      softmax(z), CLASSES)
    test_ids = [f"te{i:03d}" for i in range(N_TEST)]
    test_z = rng.normal(0, 1, (N_TEST, len(CLASSES)))
    fingerprint = json.loads((root / paths.TEST_FINGERPRINT).read_text())["sha256"]
    write_predictions(root / paths.prediction_table(paths.STACK_DIR, "test"), test_ids, test_z, softmax(test_z),
                      CLASSES, fingerprint)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Models that name the wrong class, (y + 1) % K: only a meta-model (not a blend) can use them."""
    y = np.random.default_rng(0).integers(0, len(CLASSES), N_ROWS)
    write_project(tmp_path, y, shift=1, strength=1.5)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_stack(params) -> None:
    blend.run(params)  # the stack's fallback compares with it
    stack.run(params)
    assert json.loads(paths.metrics_file("stack").read_text())["fallback"] == 0  # the meta-model's own predictions


STAGES = {
    # one model: the blend weights (fitted on each fold's own rows, by design) are then 1, so only the bias moves
    "blend": (blend.run, {"run": {"models": ["resnet"]}}, paths.BLEND_DIR),
    "stack": (run_stack, {}, paths.STACK_DIR),
    "override": (override.run, {"override": {"calibrate": "none"}}, paths.OVERRIDE_DIR),
    # the temperature is tuned in the same cross-fit as the gate
    "override-temperature": (override.run, {"override": {"calibrate": "temperature"}}, paths.OVERRIDE_DIR),
}


@pytest.mark.parametrize("stage", STAGES)
def test_relabelling_a_fold_leaves_its_oof_predictions_unchanged(project, stage):
    run, extra, directory = STAGES[stage]
    params = params_for(extra)
    write_confused_base(project, params.run.folds)  # the override's base, the same in both runs
    fold_0 = pd.read_csv(paths.FOLDS)["fold"].to_numpy() == 0

    def oof_logits() -> np.ndarray:
        table = read_predictions(paths.prediction_table(directory, "oof"), CLASSES)
        assert table.ids == pd.read_csv(paths.FOLDS)["image_id"].tolist()
        return table.logits

    run(params)
    before = oof_logits()
    relabel_fold_0(project)
    run(params)
    after = oof_logits()
    assert np.array_equal(after[fold_0], before[fold_0])  # fold 0's fits never saw fold 0's labels
    assert not np.allclose(after[~fold_0], before[~fold_0], atol=1e-4)  # the other folds' fits did


class Recorder:
    """Row keys seen by fits, and for every prediction how many of its rows its fit had seen."""

    def __init__(self) -> None:
        self.fitted: dict[int, set[bytes]] = {}
        self.keep: list[object] = []  # every fit's result stays alive, so no id() is reused
        self.overlaps: list[int] = []

    @staticmethod
    def keys(rows: np.ndarray) -> set[bytes]:
        """A row's key: its float32 bytes, as the prediction tables store it."""
        return {row.tobytes() for row in np.asarray(rows, dtype=np.float32)}

    def fitted_on(self, result: object, rows: np.ndarray) -> None:
        self.keep.append(result)
        self.fitted[id(result)] = self.keys(rows)

    def predicted(self, result: object, rows: np.ndarray) -> None:
        self.overlaps.append(len(self.keys(rows) & self.fitted[id(result)]))


QUICK = {"run": {"folds": [1]}}  # one base fold: the evaluation folds are an inner split of its rows


@pytest.mark.parametrize("extra", [{}, QUICK], ids=["folds", "quick"])
@pytest.mark.parametrize("method", ["logreg", "hgb", "classwise_ridge"])
def test_no_meta_model_predicts_a_row_it_was_fitted_on(project, monkeypatch, extra, method):
    recorder = Recorder()
    real_create = stack.create_meta_model

    class Spy:
        def __init__(self, model) -> None:
            self.model = model

        def fit(self, x, y):
            recorder.fitted_on(self, x)
            self.model.fit(x, y)
            return self

        def predict_proba(self, x):
            recorder.predicted(self, x)
            return self.model.predict_proba(x)

    monkeypatch.setattr(stack, "create_meta_model", lambda *args: Spy(real_create(*args)))
    params = params_for(deep_update(extra, {"stack": {"method": method, "hgb_max_iter": 10}}))
    blend.run(params)
    stack.run(params)
    n_eval_folds = json.loads(paths.metrics_file("stack").read_text())["n_eval_folds"]
    assert len(recorder.overlaps) >= 2 * n_eval_folds  # the OOF and leave-group-out fits, the test prediction
    assert recorder.overlaps == [0] * len(recorder.overlaps)


@pytest.mark.parametrize("calibrate", ["none", "temperature"])
@pytest.mark.parametrize("extra", [{}, QUICK], ids=["folds", "quick"])
def test_no_override_setting_is_applied_to_rows_it_was_tuned_on(project, monkeypatch, extra, calibrate):
    recorder = Recorder()
    real_tune, real_apply = override.tune_all, override.apply_all

    def tune(probs, experts, y, pairs):
        settings = real_tune(probs, experts, y, pairs)
        recorder.fitted_on(settings, probs)
        return settings

    def apply(probs, experts, pairs, settings):
        recorder.predicted(settings, probs)
        return real_apply(probs, experts, pairs, settings)

    monkeypatch.setattr(override, "tune_all", tune)
    monkeypatch.setattr(override, "apply_all", apply)
    params = params_for(deep_update(extra, {"override": {"calibrate": calibrate}}))
    write_confused_base(project, params.run.folds)
    override.run(params)
    assert len(recorder.overlaps) >= 3  # two evaluation folds at least, and the test rows
    assert recorder.overlaps == [0] * len(recorder.overlaps)
    assert json.loads(paths.metrics_file("override").read_text())[PAIR]["margin"] > 0  # the override was on


@pytest.mark.parametrize("extra", [{}, QUICK], ids=["folds", "quick"])
def test_no_class_bias_is_applied_to_rows_it_was_fitted_on(project, monkeypatch, extra):
    """The blend adds a bias to its logits: each OOF row's added bias must come from a fit without the row."""
    one_model = deep_update(extra, {"run": {"models": ["resnet"]}})  # weight 1: the bias is all that is added
    blend.run(params_for(deep_update(one_model, {"blend": {"calibrate_bias": False}})))
    plain = read_predictions(paths.prediction_table(paths.BLEND_DIR, "oof"), CLASSES)
    fits: list[tuple[set[bytes], np.ndarray]] = []
    real_fit = blend.fit_class_bias

    def fit(logits, y):
        bias = real_fit(logits, y)
        fits.append((Recorder.keys(logits), bias))
        return bias

    monkeypatch.setattr(blend, "fit_class_bias", fit)
    blend.run(params_for(one_model))
    calibrated = read_predictions(paths.prediction_table(paths.BLEND_DIR, "oof"), CLASSES)
    assert calibrated.ids == plain.ids and len(fits) >= 3
    biases = np.array([bias for _, bias in fits])
    for base, out in zip(plain.logits.astype(np.float64), calibrated.logits.astype(np.float64)):
        used = int(np.argmin(np.abs(biases - (out - base)).max(axis=1)))
        assert np.allclose(base + biases[used], out, atol=1e-4)
        assert base.astype(np.float32).tobytes() not in fits[used][0]


def test_stack_scores_near_chance_on_labels_the_models_know_nothing_about(tmp_path, monkeypatch):
    """Noise predictions, random labels: the cross-fitted meta-model cannot beat chance (1/4)
    by much (seeds 5-7 give 0.23-0.30), while gradient boosting scored on the rows it was
    fitted on (25 noise features, 240 rows) scores 1.0."""
    y = np.random.default_rng(5).integers(0, len(CLASSES), N_ROWS)
    write_project(tmp_path, y, shift=0, strength=0.0, seed=5)
    monkeypatch.chdir(tmp_path)
    params = params_for({"stack": {"method": "hgb", "hgb_max_iter": 30}})
    blend.run(params)
    stack.run(params)
    meta = json.loads(paths.metrics_file("stack").read_text())["meta"]
    assert meta["oof_acc"] < 0.25 + 0.15
    assert meta["logo_acc"] < 0.25 + 0.15


def test_auto_source_scores_its_choice_on_rows_it_did_not_choose_on(project):
    """Candidate j is right on fold j only: chosen on the other two folds, a candidate is
    always wrong on the held-out fold, so the cross-fitted choice scores exactly 0 (the
    in-sample choice would score 1/3, every candidate's accuracy)."""
    params = params_for({"submit": {"source": "auto"}})
    blend.run(params)
    stack.run(params)
    override.run(params)
    folds = pd.read_csv(paths.FOLDS)
    y = folds["label"].map(CLASSES.index).to_numpy()
    for j, name in enumerate(["blend", "stack", "override"]):
        predicted = np.where(folds["fold"].to_numpy() == j, y, (y + 1) % len(CLASSES))
        z = 4.0 * np.eye(len(CLASSES))[predicted]
        write_predictions(paths.prediction_table(paths.ENSEMBLE_DIRS[name], "oof"), folds["image_id"].tolist(), z,
                          softmax(z), CLASSES)
    submit.run(params)  # write_project wrote the test set and its sample_submission.csv
    selection = json.loads(paths.FINAL_METRICS.read_text())["selection"]
    assert [selection[name]["oof_acc"] for name in ("blend", "stack", "override")] == [1 / 3] * 3
    assert selection["auto_oof_acc"] == 0.0
