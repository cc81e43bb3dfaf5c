"""Stack math: meta-features, every meta-learner, and fold honesty (the leak test)."""

import numpy as np
import pytest

from grocer.ensemble.crossfit import cross_fit, evaluation_folds, group_folds
from grocer.ensemble.stack import METHODS, build_features, create_meta_model, cross_fit_probs
from grocer.errors import GrocerError
from grocer.params import StackParams
from grocer.predictions import softmax
from grocer.training.metrics import accuracy

STACK = dict(logreg_c=1.0, ridge_alpha=1.0, hgb_max_iter=30, hgb_learning_rate=0.1)


def base_outputs(n=300, n_classes=4, n_models=2, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    logits = rng.normal(0, 1, (n_models, n, n_classes))
    logits[:, np.arange(n), y] += 2.0
    probs = softmax(logits.reshape(-1, n_classes)).reshape(logits.shape)
    return logits, probs, y


def test_features_have_the_documented_columns():
    logits, probs, _ = base_outputs(n=10, n_classes=3, n_models=2)
    expert = {"c0-c2": np.linspace(0, 1, 10)}
    feats = build_features(logits, probs, ["m1", "m2"], {"c0-c2": (0, 2)}, expert)
    # per model: 3 probs + 3 logits + entropy + margin + top2_gap + 1 pair diff = 10; + 1 expert column
    assert feats.matrix.shape == (10, 21)
    assert len(feats.names) == 21 == feats.column_class.size
    assert (feats.column_class[[feats.names.index("m1:prob0"), feats.names.index("m2:logit0")]] == 0).all()
    assert feats.column_class[feats.names.index("expert:c0-c2:prob_b")] == -1
    margin = feats.matrix[:, feats.names.index("m1:margin")]
    top = np.sort(probs[0], axis=1)
    np.testing.assert_allclose(margin, top[:, -1] - top[:, -2])
    diff = feats.matrix[:, feats.names.index("m2:c0-c2:logit_diff")]
    np.testing.assert_allclose(diff, logits[1][:, 2] - logits[1][:, 0])
    np.testing.assert_allclose(feats.matrix[:, -1], expert["c0-c2"])


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_fits_and_beats_chance(method):
    logits, probs, y = base_outputs()
    feats = build_features(logits, probs, ["a", "b"], {}, {})
    fold = np.arange(y.size) % 3
    params = StackParams(method=method, **STACK)
    out = cross_fit_probs(feats.matrix, y, fold, lambda: create_meta_model(params, feats.column_class, 4))
    assert out.shape == (y.size, 4)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-9)
    assert accuracy(y, out.argmax(1)) > 0.6


def test_a_class_missing_from_the_training_rows_keeps_its_column():
    logits, probs, y = base_outputs(n_classes=4)
    feats = build_features(logits, probs, ["a", "b"], {}, {})
    keep = y != 3
    model = create_meta_model(StackParams(method="logreg", **STACK), feats.column_class, 4)
    out = model.fit(feats.matrix[keep], y[keep]).predict_proba(feats.matrix)
    assert out.shape == (y.size, 4)
    assert (out[:, 3] == 0).all()


def classwise_ridge(column_class, n_classes):
    return create_meta_model(StackParams(method="classwise_ridge", **STACK), column_class, n_classes)


def test_classwise_ridge_scores_a_class_without_the_columns_about_other_classes():
    """Noise in the columns about class j leaves the odds between the other classes unchanged
    (each is scored by a ridge on its own columns and the class-agnostic ones)."""
    logits, probs, y = base_outputs(n_classes=3)
    feats = build_features(logits, probs, ["a", "b"], {}, {})
    before = classwise_ridge(feats.column_class, 3).fit(feats.matrix, y).predict_proba(feats.matrix)
    rng = np.random.default_rng(5)
    for j in range(3):
        noisy = feats.matrix.copy()
        about_j = feats.column_class == j
        noisy[:, about_j] = rng.normal(0, 1, (y.size, about_j.sum()))
        after = classwise_ridge(feats.column_class, 3).fit(noisy, y).predict_proba(noisy)
        c, d = [k for k in range(3) if k != j]
        np.testing.assert_allclose(after[:, c] / after[:, d], before[:, c] / before[:, d], rtol=1e-9)
        assert not np.allclose(after[:, j], before[:, j])


def test_classwise_ridge_uses_the_class_agnostic_columns():
    """The label only in three class-agnostic columns (its one-hot), noise in the columns about
    each class: every class's ridge sees the label."""
    rng = np.random.default_rng(6)
    y = rng.integers(0, 3, 300)
    x = np.concatenate([rng.normal(0, 1, (300, 6)), np.eye(3)[y]], axis=1)
    column_class = np.array([0, 0, 1, 1, 2, 2, -1, -1, -1])
    out = cross_fit_probs(x, y, np.arange(300) % 3, lambda: classwise_ridge(column_class, 3))
    assert accuracy(y, out.argmax(1)) > 0.95


class SpyModel:
    """Records the rows it is trained on (column 0 carries the row id) and predicts uniformly."""

    trained_on: list[set[int]] = []
    predicted: list[set[int]] = []

    def fit(self, x, y):
        SpyModel.trained_on.append(set(x[:, 0].astype(int)))
        return self

    def predict_proba(self, x):
        SpyModel.predicted.append(set(x[:, 0].astype(int)))
        return np.full((len(x), 2), 0.5)


def test_leak_a_meta_model_never_trains_on_the_rows_it_scores():
    SpyModel.trained_on, SpyModel.predicted = [], []
    n = 60
    x = np.arange(n, dtype=float)[:, None]
    fold = np.repeat([0, 1, 2], n // 3)
    cross_fit_probs(x, np.arange(n) % 2, fold, SpyModel)
    assert len(SpyModel.trained_on) == 3
    for trained, scored in zip(SpyModel.trained_on, SpyModel.predicted):
        assert trained.isdisjoint(scored)
        assert trained | scored == set(range(n))
        assert len({int(fold[i]) for i in scored}) == 1


def test_leak_memorisable_labels_score_at_chance_when_held_out():
    """Random labels and a unique id feature: in-sample fitting is near perfect, honest scoring is not."""
    rng = np.random.default_rng(0)
    n, n_classes = 200, 4
    y = rng.integers(0, n_classes, n)
    x = np.column_stack([rng.permutation(n), rng.normal(size=n)]).astype(float)
    fold = np.arange(n) % 4

    memoriser = StackParams(method="hgb", **{**STACK, "hgb_max_iter": 60, "hgb_learning_rate": 0.5})

    def make():
        return create_meta_model(memoriser, np.array([-1, -1]), n_classes)

    in_sample = make().fit(x, y).predict_proba(x).argmax(1)
    honest = cross_fit_probs(x, y, fold, make).argmax(1)
    assert accuracy(y, in_sample) > 0.9
    assert accuracy(y, honest) < 0.4


def test_single_base_fold_is_split_again_with_groups_kept_whole():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    groups = np.array([f"g{i % 12}" for i in range(120)])
    folds = evaluation_folds(np.zeros(120, dtype=int), y, groups, n_splits=4, seed=0)
    assert set(folds) == {0, 1, 2, 3}
    for g in set(groups):
        assert len(set(folds[groups == g])) == 1
    again = evaluation_folds(np.zeros(120, dtype=int), y, groups, n_splits=4, seed=0)
    assert np.array_equal(folds, again)


def test_several_base_folds_are_the_evaluation_folds():
    base = np.array([1, 3, 3, 1, 4])
    np.testing.assert_array_equal(evaluation_folds(base, np.zeros(5, int), None, 5, 0), [0, 1, 1, 0, 2])


def test_two_base_folds_are_the_evaluation_folds():
    folds = evaluation_folds(np.array([4, 7, 7, 4, 4, 7]), np.zeros(6, int), None, 5, 0)
    np.testing.assert_array_equal(folds, [0, 1, 1, 0, 0, 1])


def test_single_base_fold_without_groups_is_split_again_by_class():
    """Each class spread evenly over the inner folds, in shuffled order, the same for the same seed."""
    y = np.repeat([0, 1, 2], 30)
    base = np.zeros(90, dtype=int)
    folds = evaluation_folds(base, y, None, n_splits=3, seed=0)
    for k in range(3):
        np.testing.assert_array_equal(np.bincount(y[folds == k], minlength=3), [10, 10, 10])
    assert not np.array_equal(folds[:30], np.repeat([0, 1, 2], 10))  # shuffled, not cut in order
    np.testing.assert_array_equal(evaluation_folds(base, y, None, n_splits=3, seed=0), folds)
    assert not np.array_equal(evaluation_folds(base, y, None, n_splits=3, seed=1), folds)
    assert set(evaluation_folds(base, y, None, n_splits=2, seed=0)) == {0, 1}  # two is enough


def test_a_single_base_fold_too_small_to_split_is_an_error():
    with pytest.raises(GrocerError, match="3 OOF rows of one fold cannot be split for honest evaluation"):
        evaluation_folds(np.zeros(3, dtype=int), np.array([0, 1, 2]), None, n_splits=5, seed=0)
    with pytest.raises(GrocerError, match="6 OOF rows of one fold cannot be split"):
        evaluation_folds(np.zeros(6, dtype=int), np.array([0, 1] * 3), np.array(["g"] * 6), n_splits=5, seed=0)


def test_group_folds_hold_out_whole_groups():
    groups = np.array(list("aabbccddee"))
    folds = group_folds(groups, n_splits=3)
    assert len(set(folds)) == 3
    for g in set(groups):
        assert len(set(folds[groups == g])) == 1
    assert set(group_folds(groups[:4], n_splits=3)) == {0, 1}  # two groups are enough
    with pytest.raises(GrocerError, match="two groups"):
        group_folds(np.array(["a"] * 4), 3)


def test_cross_fit_puts_each_prediction_on_its_own_row():
    fold = np.array([0, 1, 0, 1, 2])
    out = cross_fit(fold, lambda train: set(train.tolist()), lambda seen, rows: np.array([len(seen)] * rows.size))
    np.testing.assert_array_equal(out, [3, 3, 3, 3, 4])
