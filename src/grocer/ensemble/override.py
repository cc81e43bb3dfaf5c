"""Gated pair-expert override: a binary expert decides between two confusable classes.

For a pair (a, b) with expert probability q = P(b | the image is a or b):
  gate      the row's current top-2 classes are exactly {a, b} and the top-1/top-2
            probability margin is below `margin`; every other row is left untouched
  decision  in gated rows, b if q >= `threshold`, else a
  probs     the pair's mass S = p_a + p_b is re-split as p_b = S*s, p_a = S*(1-s) with
            s = sigmoid(logit q - logit threshold), so the decided class becomes the
            arg-max (the other classes were below both a and b) and they keep their values

Tuning (per pair, on OOF rows): every (margin, threshold) of the grids MARGINS x
THRESHOLDS is scored by the rows it makes right minus the rows it makes wrong. Ties go
to the conservative choice: fewer changed predictions, then the smaller margin, then the
threshold nearest 0.5. Margin 0 closes the gate, so a pair whose expert does not help is
switched off. Pairs never compete for a row (a row's top-2 set names one pair), so each
is tuned on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MARGINS = np.round(np.linspace(0.0, 1.0, 21), 2)  # 0 = gate closed; p1 - p2 < 1 holds for nearly every row
THRESHOLDS = np.round(np.linspace(0.05, 0.95, 19), 2)
_CLIP = 1e-6  # keeps logit(q) finite for an expert that outputs exactly 0 or 1


@dataclass(frozen=True)
class PairSetting:
    margin: float
    threshold: float
    gain: int  # rows made right minus rows made wrong on the tuning rows


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(p, _CLIP, 1 - _CLIP)
    return np.log(p) - np.log1p(-p)


def candidates(probs: np.ndarray, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose top-2 classes are {a, b}, and the top-1/top-2 margin of every row."""
    top2 = np.argsort(-probs, axis=1, kind="stable")[:, :2]
    is_pair = ((top2[:, 0] == a) & (top2[:, 1] == b)) | ((top2[:, 0] == b) & (top2[:, 1] == a))
    sorted_p = np.sort(probs, axis=1)
    return is_pair, sorted_p[:, -1] - sorted_p[:, -2]


def gate(probs: np.ndarray, a: int, b: int, margin: float) -> np.ndarray:
    """Boolean mask of the rows the expert may change."""
    is_pair, row_margin = candidates(probs, a, b)
    return is_pair & (row_margin < margin)


def _resplit(probs: np.ndarray, prob_b: np.ndarray, a: int, b: int, threshold: float) -> np.ndarray:
    """The rows' probabilities with the pair's mass re-split by the expert (see the module doc)."""
    out = probs.copy()
    mass = probs[:, a] + probs[:, b]
    share_b = 1.0 / (1.0 + np.exp(-(_logit(prob_b) - _logit(threshold))))
    out[:, b] = mass * share_b
    out[:, a] = mass * (1.0 - share_b)
    return out


def tune_pair(probs: np.ndarray, prob_b: np.ndarray, y: np.ndarray, a: int, b: int) -> PairSetting:
    """The grid's best (margin, threshold) on these rows, ties broken conservatively."""
    is_pair, row_margin = candidates(probs, a, b)
    rows = np.flatnonzero(is_pair)
    current = probs[rows].argmax(axis=1)
    decided = np.where(prob_b[rows][None, :] >= THRESHOLDS[:, None], b, a)  # (n_thresholds, n_rows)
    delta = (decided == y[rows]).astype(np.int64) - (current == y[rows]).astype(np.int64)
    changed = (decided != current).astype(np.int64)
    gated = (row_margin[rows][None, :] < MARGINS[:, None]).astype(np.int64)  # (n_margins, n_rows)
    gain = gated @ delta.T  # (n_margins, n_thresholds)
    n_changed = gated @ changed.T
    margin_grid, threshold_grid = np.meshgrid(MARGINS, THRESHOLDS, indexing="ij")
    # np.lexsort sorts by the last key first: best gain, then fewest changes, smaller margin, threshold near 0.5
    order = np.lexsort((
        np.abs(threshold_grid - 0.5).ravel(), margin_grid.ravel(), n_changed.ravel(), -gain.ravel()
    ))
    best = order[0]
    if gain.ravel()[best] <= 0:
        return PairSetting(margin=0.0, threshold=0.5, gain=0)
    return PairSetting(float(margin_grid.ravel()[best]), float(threshold_grid.ravel()[best]), int(gain.ravel()[best]))


def tune_all(
    probs: np.ndarray, expert_prob_b: dict[str, np.ndarray], y: np.ndarray, pairs: dict[str, tuple[int, int]]
) -> dict[str, PairSetting]:
    return {name: tune_pair(probs, expert_prob_b[name], y, a, b) for name, (a, b) in pairs.items()}


def apply_all(
    probs: np.ndarray,
    expert_prob_b: dict[str, np.ndarray],
    pairs: dict[str, tuple[int, int]],
    settings: dict[str, PairSetting],
) -> np.ndarray:
    """Every pair's override, each gated on the probabilities before any override."""
    out = probs.copy()
    for name, (a, b) in pairs.items():
        rows = gate(probs, a, b, settings[name].margin)
        out[rows] = _resplit(probs[rows], expert_prob_b[name][rows], a, b, settings[name].threshold)
    return out
