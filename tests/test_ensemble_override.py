"""Override math: gating, the re-split of the pair's mass, and threshold tuning."""

import numpy as np

from grocer.ensemble.override import MARGINS, PairSetting, apply_all, gate, tune_all, tune_pair

PAIR = {"a-b": (0, 1)}


def test_gate_needs_the_pair_as_top2_and_a_small_margin():
    probs = np.array([
        [0.45, 0.40, 0.15],  # top-2 is the pair, margin 0.05
        [0.40, 0.15, 0.45],  # top-2 is {2, 0}: not the pair
        [0.70, 0.20, 0.10],  # the pair, but margin 0.5
        [0.30, 0.36, 0.34],  # top-2 is {1, 2}: not the pair
    ])
    np.testing.assert_array_equal(gate(probs, 0, 1, 0.1), [True, False, False, False])
    np.testing.assert_array_equal(gate(probs, 0, 1, 0.6), [True, False, True, False])


def test_override_changes_only_gated_rows_and_follows_the_threshold():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), 500)
    prob_b = rng.random(500)
    setting = PairSetting(margin=0.2, threshold=0.7, gain=1)
    out = apply_all(probs, {"a-b": prob_b}, PAIR, {"a-b": setting})
    gated = gate(probs, 0, 1, 0.2)
    assert gated.sum() > 5
    np.testing.assert_array_equal(out[~gated], probs[~gated])  # never touched
    np.testing.assert_array_equal(out[gated][:, 2:], probs[gated][:, 2:])  # other classes keep their values
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    decided = np.where(prob_b[gated] >= 0.7, 1, 0)
    np.testing.assert_array_equal(out[gated].argmax(axis=1), decided)


def test_closed_gate_changes_nothing():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), 50)
    out = apply_all(probs, {"a-b": rng.random(50)}, PAIR, {"a-b": PairSetting(0.0, 0.5, 0)})
    np.testing.assert_array_equal(out, probs)


def confusable_case(n=600, seed=0, expert_noise=0.1):
    """Rows of classes 0/1 that the main model mixes up at small margins, and a good expert."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    top = rng.uniform(0.40, 0.48, n)
    probs = np.zeros((n, 3))
    wrong = rng.random(n) < 0.4
    winner = np.where(wrong, 1 - y, y)
    probs[np.arange(n), winner] = top
    probs[np.arange(n), 1 - winner] = top - rng.uniform(0.0, 0.06, n)
    probs[:, 2] = 1 - probs.sum(axis=1)
    prob_b = np.clip(y + rng.normal(0, expert_noise, n), 0, 1)
    return probs, prob_b, y


def test_tuning_opens_the_gate_for_a_good_expert():
    probs, prob_b, y = confusable_case()
    settings = tune_all(probs, {"a-b": prob_b}, y, PAIR)
    assert settings["a-b"].margin > 0.06  # every pair row has a margin below 0.06
    assert settings["a-b"].gain > 0
    after = apply_all(probs, {"a-b": prob_b}, PAIR, settings)
    assert (after.argmax(1) == y).mean() > (probs.argmax(1) == y).mean() + 0.3


def test_tuning_prefers_the_smallest_margin_among_ties():
    probs, prob_b, y = confusable_case()
    setting = tune_pair(probs, prob_b, y, 0, 1)
    # every margin from the first that covers all pair rows gives the same gain: the smallest wins
    assert setting.margin == MARGINS[MARGINS > 0.06].min()


def test_a_useless_expert_is_switched_off():
    probs, _, y = confusable_case()
    wrong_expert = 1.0 - y.astype(float)  # always says the other class
    setting = tune_pair(probs, wrong_expert, y, 0, 1)
    assert setting == PairSetting(margin=0.0, threshold=0.5, gain=0)


def test_no_candidate_rows_means_no_override():
    probs = np.tile([0.1, 0.2, 0.7], (20, 1))
    assert tune_pair(probs, np.ones(20), np.zeros(20, dtype=int), 0, 1).margin == 0.0


def test_an_expert_that_breaks_as_many_rows_as_it_fixes_is_switched_off():
    """Six rows predicted a, half of them b: an expert that says b everywhere fixes three and breaks
    three, a gain of 0, so the gate stays closed (the gain counts the rows made wrong too)."""
    probs = np.tile([0.50, 0.45, 0.05], (6, 1))
    y = np.array([0, 0, 0, 1, 1, 1])
    assert tune_pair(probs, np.full(6, 0.9), y, 0, 1) == PairSetting(margin=0.0, threshold=0.5, gain=0)
