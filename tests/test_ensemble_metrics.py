"""Metric helpers on arrays."""

import numpy as np

from grocer.ensemble.metrics import binary_scores, confusion, log_loss, most_confused_pairs, oof_scores, top_confusions


def test_scores_on_a_known_case():
    y = np.array([0, 0, 1, 2])
    probs = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    scores = oof_scores(y, probs)
    assert scores["oof_acc"] == 0.75
    assert np.isclose(scores["oof_f1"], np.mean([2 / 3, 2 / 3, 1.0]))
    assert np.isclose(scores["oof_logloss"], -np.mean(np.log([0.8, 0.3, 0.8, 0.6])))


def test_log_loss_keeps_the_columns_when_a_class_is_absent():
    probs = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1]])
    assert np.isclose(log_loss(np.array([0, 1]), probs), -np.log(0.7))


def test_confusion_and_top_confusions():
    matrix = confusion(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 0, 0, 2]), 4)
    assert matrix.shape == (4, 4)
    assert matrix[2, 0] == 2 and matrix[0, 1] == 1
    assert top_confusions(matrix, 5) == [(2, 0, 2), (0, 1, 1)]


def test_binary_scores():
    truth = np.array([False, False, True, True])
    out = binary_scores(truth, np.array([0.1, 0.6, 0.4, 0.9]), threshold=0.3)
    assert out["auc"] == 0.75
    assert np.isclose(out["f1_at_05"], 0.5)
    assert np.isclose(out["f1_tuned"], 0.8)
    assert "auc" not in binary_scores(np.array([True, True]), np.array([0.2, 0.9]), 0.5)


def test_most_confused_pairs_count_both_ways_and_skip_listed_pairs():
    matrix = np.array([[50, 3, 0, 1],
                       [4, 40, 0, 0],
                       [0, 6, 30, 0],
                       [1, 0, 0, 20]])
    assert most_confused_pairs(matrix, 3, set()) == [(0, 1, 7), (1, 2, 6), (0, 3, 2)]
    assert most_confused_pairs(matrix, 2, {frozenset((0, 1))}) == [(1, 2, 6), (0, 3, 2)]
    assert most_confused_pairs(matrix, 9, set()) == [(0, 1, 7), (1, 2, 6), (0, 3, 2)]  # only pairs with confusions
