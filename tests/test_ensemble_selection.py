"""submit.source=auto: the worst-group-aware score, its choice, and the choice's cross-fitted accuracy."""

import numpy as np
import pytest

from grocer.ensemble.selection import choose, cross_fitted_choice, group_quantile, step_score

GROUPS = np.repeat(["g0", "g1", "g2", "g3"], 25)


def correct_per_group(rates: list[float]) -> np.ndarray:
    """100 rows, 25 per group, the first rate * 25 of each group right."""
    return np.concatenate([np.arange(25) < round(rate * 25) for rate in rates])


def test_group_quantile_weighs_every_group_the_same():
    right = correct_per_group([1.0, 1.0, 1.0, 0.2])
    assert group_quantile(right, GROUPS, 0.0) == pytest.approx(0.2)
    assert group_quantile(right, GROUPS, 1.0) == pytest.approx(1.0)
    assert step_score(right, GROUPS, 0.5, 0.0) == {"oof_acc": 0.8, "group_q": pytest.approx(0.2), "score": pytest.approx(0.5)}


def test_the_weight_trades_accuracy_for_the_worst_group():
    uneven = correct_per_group([1.0, 1.0, 1.0, 0.4])  # acc 0.85, worst group 0.4
    even = correct_per_group([0.8, 0.8, 0.8, 0.8])    # acc 0.80, worst group 0.8
    candidates = {"stack": uneven, "blend": even}
    assert choose(candidates, GROUPS, 0.0, 0.0) == "stack"  # accuracy alone
    assert choose(candidates, GROUPS, 0.5, 0.0) == "blend"  # 0.85 - 0.225 < 0.80
    assert choose(candidates, None, 0.5, 0.0) == "stack"    # no groups: accuracy alone


def test_ties_go_to_the_first_candidate():
    right = correct_per_group([0.8, 0.8, 0.8, 0.8])
    assert choose({"blend": right, "stack": right.copy(), "override": right.copy()}, GROUPS, 0.5, 0.1) == "blend"


def test_the_choice_is_scored_on_rows_it_did_not_see():
    """Among 40 coin-flip steps the best in-sample looks good; the cross-fitted choice stays at chance
    (averaged over 10 draws: one draw's held-out score varies by about 0.04)."""
    in_sample, honest = [], []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        candidates = {f"s{k}": rng.random(400) < 0.5 for k in range(40)}
        in_sample.append(max(right.mean() for right in candidates.values()))
        honest.append(cross_fitted_choice(candidates, None, np.arange(400) % 5, 0.0, 0.0).mean())
    assert np.mean(in_sample) > 0.54
    assert abs(np.mean(honest) - 0.5) < 0.03


def test_the_cross_fitted_choice_follows_a_real_difference():
    rng = np.random.default_rng(1)
    good, bad = rng.random(300) < 0.9, rng.random(300) < 0.6
    honest = cross_fitted_choice({"bad": bad, "good": good}, None, np.arange(300) % 3, 0.0, 0.0)
    assert np.array_equal(honest, good)


def test_the_cross_fitted_choice_weighs_the_groups_of_its_training_rows():
    """The uneven step is more accurate, the even one better on the worst group: with weight 0.5
    the choice on every training split is the even one, with weight 0 the uneven one."""
    uneven = correct_per_group([1.0, 1.0, 1.0, 0.4])
    even = correct_per_group([0.8, 0.8, 0.8, 0.8])
    candidates, fold = {"stack": uneven, "blend": even}, np.arange(100) % 4
    assert np.array_equal(cross_fitted_choice(candidates, GROUPS, fold, 0.5, 0.0), even)
    assert np.array_equal(cross_fitted_choice(candidates, GROUPS, fold, 0.0, 0.0), uneven)
