"""grocer.training.metrics, the scores shared by training and the ensemble: sklearn's numbers, edge cases included."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from grocer.training.metrics import accuracy, binary_f1, macro_f1, roc_auc


def test_scores_match_sklearn():
    rng = np.random.default_rng(0)
    labels, predicted = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    predicted[labels == 3] = 5  # class 5 only predicted (counts, F1 0), class 6 nowhere (not counted)
    assert macro_f1(labels, predicted) == pytest.approx(f1_score(labels, predicted, average="macro", zero_division=0))
    assert accuracy(labels, predicted) == pytest.approx(accuracy_score(labels, predicted))
    binary = rng.integers(0, 2, 100)
    scores = np.round(rng.uniform(size=100) + 0.3 * binary, 1)  # ties on purpose
    assert roc_auc(binary, scores) == pytest.approx(roc_auc_score(binary, scores))
    assert binary_f1(binary, scores > 0.6) == pytest.approx(f1_score(binary, scores > 0.6))


def test_macro_f1_counts_the_classes_in_labels_or_predictions():
    labels, predicted = np.array([0, 0, 1]), np.array([0, 0, 2])
    assert macro_f1(labels, predicted) == pytest.approx((1.0 + 0.0 + 0.0) / 3)
    assert macro_f1(np.array(["x", "y"]), np.array(["x", "y"])) == 1.0


def test_edge_cases():
    empty = np.array([], dtype=np.int64)
    assert accuracy(empty, empty) == 0.0 and macro_f1(empty, empty) == 0.0
    assert binary_f1(np.array([0, 0]), np.array([0, 0])) == 0.0  # no positives anywhere: sklearn's zero_division=0
    # one class only: no ranking to score, the uninformative 0.5 (the pair stage's metric must be a number)
    assert roc_auc(np.array([1, 1]), np.array([0.2, 0.9])) == 0.5
    assert roc_auc(np.array([0, 0]), np.array([0.2, 0.9])) == 0.5
