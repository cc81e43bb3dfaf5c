"""Temperature scaling before the override's gate."""

import numpy as np
import pytest
from scipy.special import softmax

from grocer.ensemble.temperature import fit_temperature, scale


def calibrated_logits(n: int = 4000, k: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from exactly those logits' softmax: temperature 1 is right."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, (n, k))
    p = softmax(logits, axis=1)
    y = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return logits, y


@pytest.mark.parametrize("true_t", [0.5, 1.0, 3.0])
def test_recovers_the_temperature_a_step_is_off_by(true_t):
    logits, y = calibrated_logits()
    distorted = softmax(logits / true_t, axis=1)  # over-confident for T < 1, soft for T > 1
    assert fit_temperature(distorted, y) == pytest.approx(1 / true_t, rel=0.1)


def test_scaling_keeps_the_argmax_and_changes_the_margins():
    logits, _ = calibrated_logits(n=200)
    probs = softmax(logits, axis=1)
    soft = scale(probs, 2.0)
    assert np.allclose(soft.sum(axis=1), 1.0)
    assert np.array_equal(soft.argmax(axis=1), probs.argmax(axis=1))
    top2 = np.sort(probs, axis=1)[:, -2:]
    soft_top2 = np.sort(soft, axis=1)[:, -2:]
    assert (np.diff(soft_top2, axis=1) < np.diff(top2, axis=1)).all()
    assert np.allclose(scale(probs, 1.0), probs)


def test_zero_probabilities_stay_finite():
    probs = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    assert np.isfinite(scale(probs, 3.0)).all()
    assert np.isfinite(fit_temperature(probs, np.array([1, 2])))
