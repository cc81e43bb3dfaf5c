"""Blend math: NNLS convex weights and class-bias calibration, on arrays."""

import numpy as np
import pytest

from grocer.ensemble.blend import BIAS_PRIOR, PROB_FLOOR, blend_probs, fit_class_bias, fit_weights, log_probs
from grocer.ensemble.metrics import log_loss
from grocer.predictions import softmax
from grocer.training.metrics import accuracy


def mixture_case(weights, n=20000, n_classes=5, seed=0):
    """Models with random probabilities; labels drawn from their `weights` mixture, so E[Y|P] = sum w P."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(n_classes, 0.5), size=(len(weights), n))
    mixture = blend_probs(probs, np.asarray(weights))
    y = (mixture.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return probs, y


def test_weights_recover_the_mixture():
    probs, y = mixture_case([0.6, 0.3, 0.1])
    weights = fit_weights(probs, y)
    np.testing.assert_allclose(weights, [0.6, 0.3, 0.1], atol=0.04)


def test_weights_are_convex_and_drop_a_useless_model():
    probs, y = mixture_case([0.7, 0.3, 0.0])
    # a fourth model that predicts the opposite of the truth: least squares wants it negative
    anti = np.full_like(probs[0], 1.0)
    anti[np.arange(y.size), y] = 0.0
    anti /= anti.sum(axis=1, keepdims=True)
    weights = fit_weights(np.concatenate([probs, anti[None]]), y)
    assert (weights >= 0).all()
    assert np.isclose(weights.sum(), 1.0)
    assert weights[3] == 0.0
    assert weights[2] < 0.05


def test_weights_are_deterministic():
    probs, y = mixture_case([0.5, 0.5], n=3000)
    assert np.array_equal(fit_weights(probs, y), fit_weights(probs.copy(), y.copy()))


def test_over_confident_models_weights_are_scaled_up_to_sum_to_one():
    """Models that put all their mass on one class: NNLS's weights sum below 1 (here 0.90) and are
    divided by their sum, not replaced by equal weights."""
    rng = np.random.default_rng(0)
    n, n_classes = 2000, 4
    y = rng.integers(0, n_classes, n)

    def sharp(rate):  # all mass on one class, the right one `rate` of the time
        return np.eye(n_classes)[np.where(rng.random(n) < rate, y, (y + rng.integers(1, n_classes, n)) % n_classes)]

    weights = fit_weights(np.stack([sharp(0.8), sharp(0.5)]), y)
    np.testing.assert_allclose(weights, [0.8, 0.2], atol=0.03)


def test_log_probs_of_a_zero_probability_is_the_floor():
    np.testing.assert_allclose(log_probs(np.array([[1.0, 0.0]])), [[0.0, np.log(PROB_FLOOR)]])


def test_all_zero_solution_falls_back_to_equal_weights():
    probs = np.zeros((2, 4, 3))  # no model puts mass anywhere: NNLS returns 0
    np.testing.assert_array_equal(fit_weights(probs, np.array([0, 1, 2, 0])), [0.5, 0.5])


def test_bias_calibration_fixes_a_biased_blend():
    rng = np.random.default_rng(1)
    n, n_classes = 4000, 4
    y = rng.integers(0, n_classes, n)
    clean = rng.normal(0, 1.0, (n, n_classes))
    clean[np.arange(n), y] += 1.5
    shifted = clean + np.array([2.0, 0.0, 0.0, 0.0])  # the blend over-predicts class 0
    logits = log_probs(softmax(shifted))

    bias = fit_class_bias(logits, y)
    calibrated = softmax(logits + bias)
    assert abs(bias.sum()) < 1e-9  # centred
    assert bias[0] < bias[1:].min() - 1.5  # it learned to take the shift back
    assert accuracy(y, calibrated.argmax(1)) > accuracy(y, softmax(logits).argmax(1)) + 0.1
    assert log_loss(y, calibrated) < log_loss(y, softmax(logits))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_bias_is_the_optimum_of_the_penalised_log_loss(seed):
    """At the fitted bias the penalised loss's gradient vanishes: mean(softmax(z + b) - Y) + prior * b / n = 0
    (a wrong loss value beside the right gradient misleads L-BFGS's line search to another b)."""
    rng = np.random.default_rng(seed)
    n, n_classes = 600, 5
    y = rng.integers(0, n_classes, n)
    z = rng.normal(0, 1, (n, n_classes))
    z[np.arange(n), y] += 2.0
    z[:, 0] += 1.5
    logits = log_probs(softmax(z))
    bias = fit_class_bias(logits, y)
    gradient = (softmax(logits + bias) - np.eye(n_classes)[y]).mean(axis=0) + BIAS_PRIOR / n * bias
    assert np.abs(gradient).max() < 5e-5


def test_bias_stays_finite_for_a_class_absent_from_the_rows():
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 1, (200, 3))
    bias = fit_class_bias(logits, rng.integers(0, 2, 200))  # class 2 never occurs
    assert np.isfinite(bias).all()
    assert bias[2] < bias[:2].min()
