"""Temperature scaling: one scalar T that makes predicted probabilities honest on OOF rows.

p_T = softmax(log p / T). T > 1 softens an over-confident step, T < 1 sharpens an
under-confident one; the arg-max never changes, only the margins. The override's gate
compares top-1/top-2 margins with a tuned threshold, so calibrating first makes a margin
mean the same for a stack, a blend or a single model (`override.calibrate: temperature`).
T minimises the OOF negative log-likelihood (a 1-D bounded search on log T).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

LOG_T_BOUNDS = (np.log(0.05), np.log(20.0))
_FLOOR = 1e-12  # log(0) for a class a step gave exactly zero probability


def scale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities at `temperature` (rows sum to 1)."""
    return np.exp(log_softmax(np.log(np.maximum(probs, _FLOOR)) / temperature, axis=1))


def fit_temperature(probs: np.ndarray, y: np.ndarray) -> float:
    """The T minimising the mean negative log-likelihood of the true classes."""
    log_p = np.log(np.maximum(probs, _FLOOR))

    def nll(log_t: float) -> float:
        return float(-log_softmax(log_p / np.exp(log_t), axis=1)[np.arange(y.size), y].mean())

    result = minimize_scalar(nll, bounds=LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-4})
    return float(np.exp(result.x))
