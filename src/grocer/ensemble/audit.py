"""Private-risk audit: how far the final OOF accuracy can move on a different split.

Everything here takes a boolean `correct` per OOF row (prediction == label) plus the
row's class and group, and returns numbers. Four views:

  bootstrap        rows resampled with replacement: the sampling noise of the OOF
                   accuracy itself. The accuracy of a resample of n rows from n rows of
                   which k are right is exactly Binomial(n, k/n) / n, so it is drawn as
                   that (identical in distribution to resampling indices, O(n_boot)).
  group bootstrap  groups (product codes) resampled with replacement: the noise when
                   the set of product codes changes, wider than the row bootstrap when
                   errors cluster in a few groups.
  holdout          repeated stratified holdout: a random `frac` of each class, the
                   size of a private leaderboard split; min and median over repeats.
  groups           accuracy per group and the share of errors that the hard groups
                   and the top confusions carry (error concentration).

What the per-group numbers measure depends on how the OOF rows were made: under
`folds.strategy=group` a group's OOF predictions come from models that never saw
that group (true leave-group-out); under `label_group`/`label` the group's other
images were in training, so it is per-group accuracy of seen groups. The stage
records which (`logo_honest`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grocer.ensemble.metrics import confusion, top_confusions
from grocer.params import AuditParams


def percentiles(values: np.ndarray) -> dict[str, float]:
    """{"p05", "p50", "p95"} of `values`."""
    p05, p50, p95 = np.percentile(values, [5, 50, 95])
    return {"p05": float(p05), "p50": float(p50), "p95": float(p95)}


def bootstrap_accuracy(correct: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """`n_boot` accuracies of row resamples (with replacement, same size) of `correct`."""
    n = correct.size
    return rng.binomial(n, correct.mean(), size=n_boot) / n


def group_bootstrap_accuracy(
    n_rows: np.ndarray, n_correct: np.ndarray, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """`n_boot` accuracies of group resamples: draw as many groups as there are, with
    replacement, and pool their rows (a big group weighs by its size)."""
    picks = rng.integers(0, n_rows.size, size=(n_boot, n_rows.size))
    return n_correct[picks].sum(axis=1) / n_rows[picks].sum(axis=1)


def stratified_holdout_accuracy(
    correct: np.ndarray, y: np.ndarray, frac: float, n_repeats: int, rng: np.random.Generator
) -> np.ndarray:
    """Accuracy on `n_repeats` random stratified subsets holding `frac` of each class.

    Each class contributes round(frac * its count) rows, at least one, so a split is
    the size and class mix of a private leaderboard cut of the same data.
    """
    members = [np.flatnonzero(y == c) for c in np.unique(y)]
    accuracies = np.empty(n_repeats)
    for r in range(n_repeats):
        chosen = np.concatenate([
            rng.choice(rows, size=max(1, round(frac * rows.size)), replace=False) for rows in members
        ])
        accuracies[r] = correct[chosen].mean()
    return accuracies


@dataclass(frozen=True)
class GroupTable:
    """Per-group counts, worst group first (lowest accuracy, then the larger group)."""

    names: np.ndarray  # (G,) group names
    n_rows: np.ndarray  # (G,) rows per group
    n_correct: np.ndarray  # (G,) correct rows per group
    label: np.ndarray  # (G,) the group's most frequent true class index

    @property
    def accuracy(self) -> np.ndarray:
        return self.n_correct / self.n_rows


def group_table(correct: np.ndarray, y: np.ndarray, groups: np.ndarray) -> GroupTable:
    names, index = np.unique(groups, return_inverse=True)
    n_rows = np.bincount(index)
    n_correct = np.bincount(index, weights=correct.astype(np.float64)).astype(np.int64)
    n_classes = int(y.max()) + 1
    label = np.bincount(index * n_classes + y, minlength=names.size * n_classes).reshape(-1, n_classes).argmax(axis=1)
    order = np.lexsort((-n_rows, n_correct / n_rows))
    return GroupTable(names[order], n_rows[order], n_correct[order], label[order])


def group_summary(table: GroupTable, min_acc: float) -> dict[str, float]:
    """Median/min group accuracy, how many groups fall below `min_acc`, and how much of
    the error those hard groups carry compared with their share of the rows."""
    acc = table.accuracy
    hard = acc < min_acc
    errors = table.n_rows - table.n_correct
    total_errors = int(errors.sum())
    return {
        "n_groups": int(acc.size),
        "group_acc_median": float(np.median(acc)),
        "group_acc_min": float(acc.min()),
        "group_min_n": int(table.n_rows[0]),  # rows of the worst group: a 0.0 of 1 row weighs little
        "groups_below_min_acc": int(hard.sum()),
        "hard_groups_row_share": float(table.n_rows[hard].sum() / table.n_rows.sum()),
        "hard_groups_error_share": float(errors[hard].sum() / total_errors) if total_errors else 0.0,
    }


def class_summary(matrix: np.ndarray, min_acc: float) -> dict[str, float]:
    """Per-class recall extremes and how concentrated the errors are.

    `matrix` is the (K, K) confusion matrix, rows = true class. Shares are of all errors (0 when
    there are none): the worst class's share, the largest cell's and the top three's.
    """
    support = matrix.sum(axis=1)
    present = support > 0  # a class absent from these rows (quick mode) has no recall
    recall = np.diag(matrix)[present] / support[present]
    errors_per_class = support - np.diag(matrix)
    total_errors = int(errors_per_class.sum())
    cells = top_confusions(matrix, 3)

    def share(count: int) -> float:
        return float(count / total_errors) if total_errors else 0.0

    return {
        "class_acc_min": float(recall.min()),
        "classes_below_min_acc": int((recall < min_acc).sum()),
        "worst_class_error_share": share(int(errors_per_class.max())),
        "top_confusion_error_share": share(cells[0][2] if cells else 0),
        "top3_confusions_error_share": share(sum(count for _, _, count in cells)),
    }


def audit(
    y: np.ndarray, pred: np.ndarray, groups: np.ndarray | None, n_classes: int, params: AuditParams
) -> tuple[dict[str, float], GroupTable | None]:
    """Every audit number of one set of OOF predictions (flat dict) and the group table.

    Args:
        y, pred: true and predicted class index per row.
        groups: group per row, or None when the data has no group column: the group
            numbers are then left out and `has_groups` is 0.
        n_classes: size of the class list (fixes the confusion matrix's shape).
        params: the `audit` section (seed, n_boot, n_repeats, holdout_frac, min_acc).
    """
    correct = pred == y
    # one independent stream per view: adding a view never shifts another's numbers
    boot_rng, group_rng, holdout_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(params.seed).spawn(3))
    holdout = stratified_holdout_accuracy(correct, y, params.holdout_frac, params.n_repeats, holdout_rng)
    numbers: dict[str, float] = {
        "n_oof": int(y.size),
        "oof_acc": float(correct.mean()),
        **{f"boot_{k}": v for k, v in percentiles(bootstrap_accuracy(correct, params.n_boot, boot_rng)).items()},
        "holdout_min": float(holdout.min()),
        "holdout_median": float(np.median(holdout)),
        **class_summary(confusion(y, pred, n_classes), params.min_acc),
        "has_groups": int(groups is not None),
    }
    if groups is None:
        return numbers, None
    table = group_table(correct, y, groups)
    group_boot = group_bootstrap_accuracy(table.n_rows, table.n_correct, params.n_boot, group_rng)
    numbers.update(group_summary(table, params.min_acc))
    numbers.update({f"group_boot_{k}": v for k, v in percentiles(group_boot).items()})
    return numbers, table
