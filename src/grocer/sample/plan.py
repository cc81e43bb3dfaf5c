"""What the sample dataset holds, decided before any pixel is drawn (pure, seeded).

A `Shot` is one photo to render; an `Entry` is one row of a table (train.csv or the
test labels) and points at the shot whose bytes its file holds. Duplicates are two
entries on one shot. Ids are given later (`generate`), after shuffling, so an id says
nothing about class, group or defect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grocer.params import SampleParams
from grocer.sample.defects import defect_counts
from grocer.sample.groups import CLASSES, GROUPS, PARTNER, Group, groups_of

TEST_ONLY_SHARE = 0.17  # of test images, from groups never seen in train (group shift)
# of a group's photos, taken at its home station (background, light, camera: scene.Style); the
# others at the home station of a random train group of any class, so that a background hints
# at a product code without giving the class away
HOME_SHARE = 0.55
PARTNER_SHARE = 0.65  # of wrong labels, a confusable class filed as its partner


@dataclass(frozen=True)
class Shot:
    """One photo to render: `label` items in `group`'s look and style."""

    split: str  # "train" | "test"
    index: int  # position in its split's shot list; with the seed, it keys the photo's RNG
    label: str
    group: Group
    station: str  # code of the group whose home style (scene.Style) the photo is taken in
    kind: str  # "photo" | "too_small" | "blank" | "unreadable"


@dataclass(frozen=True)
class Entry:
    """One listed image."""

    shot: int  # index of the shot whose bytes the file holds
    label: str  # the label as listed (wrong for wrong_label and cross_label_duplicate rows)
    group: str  # the group code as listed (a code of the listed label)
    true_label: str
    defect: str  # "" or one of defects.DEFECTS
    duplicate_of: int | None = None  # entry index of the original, for duplicates


@dataclass(frozen=True)
class Plan:
    train_shots: list[Shot]
    test_shots: list[Shot]
    train: list[Entry]
    test: list[Entry]


def _quota(rng: np.random.Generator, n: int, weights: np.ndarray) -> list[str]:
    """n labels in proportion to `weights` (largest remainder), in random order."""
    exact = n * weights / weights.sum()
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]] += 1
    labels = np.repeat(np.array(CLASSES), counts)
    return [str(x) for x in labels[rng.permutation(n)]]


def make_plan(sample: SampleParams) -> Plan:
    rng = np.random.default_rng([sample.seed, 0])
    # mildly imbalanced, like real shop data: ~60-140 images per class at 1500
    weights = rng.uniform(0.6, 1.4, len(CLASSES))
    train_groups = {label: groups_of(label, test_only=False) for label in CLASSES}
    group_weights = {label: rng.dirichlet(np.full(len(gs), 3.0)) for label, gs in train_groups.items()}

    def pick_group(label: str) -> Group:
        return train_groups[label][int(rng.choice(len(train_groups[label]), p=group_weights[label]))]

    train_codes = [g.code for g in GROUPS if not g.test_only]

    def pick_station(group: Group) -> str:
        return group.code if rng.random() < HOME_SHARE else str(rng.choice(train_codes))

    def other_class(label: str) -> str:
        return str(rng.choice([c for c in CLASSES if c != label]))

    counts = defect_counts(sample.n_train)
    n_copies = counts["exact_duplicate"] + counts["cross_label_duplicate"]
    labels = _quota(rng, sample.n_train - n_copies, weights)
    groups = [pick_group(label) for label in labels]

    kinds = ["photo"] * len(labels)
    order = iter(rng.permutation(len(labels)).tolist())
    for kind in ("too_small", "blank", "unreadable"):
        for _ in range(counts[kind]):
            kinds[next(order)] = kind
    train_shots = [Shot("train", i, label, g, pick_station(g), kind)
                   for i, (label, g, kind) in enumerate(zip(labels, groups, kinds))]
    train = [Entry(i, s.label, s.group.code, s.label, "" if s.kind == "photo" else s.kind)
             for i, s in enumerate(train_shots)]

    clean = [i for i, s in enumerate(train_shots) if s.kind == "photo"]
    n_wrong = counts["wrong_label"]
    paired = [i for i in clean if train_shots[i].label in PARTNER]
    swapped = rng.choice(paired, round(PARTNER_SHARE * n_wrong), replace=False).tolist()
    scattered = rng.choice(sorted(set(clean) - set(swapped)), n_wrong - len(swapped), replace=False).tolist()
    for i in swapped + scattered:
        true = train_shots[i].label
        given = PARTNER[true] if i in swapped else other_class(true)
        train[i] = Entry(i, given, pick_group(given).code, true, "wrong_label")

    wrong = set(swapped + scattered)
    originals = rng.choice([i for i in clean if i not in wrong], n_copies, replace=False).tolist()
    for k, i in enumerate(originals):
        original = train[i]
        if k < counts["exact_duplicate"]:
            train.append(Entry(original.shot, original.label, original.group, original.true_label,
                               "exact_duplicate", i))
        else:
            given = PARTNER.get(original.label) or other_class(original.label)
            train.append(Entry(original.shot, given, pick_group(given).code, original.true_label,
                               "cross_label_duplicate", i))

    test_labels = _quota(rng, sample.n_test, weights)
    eligible = [i for i, label in enumerate(test_labels) if groups_of(label, test_only=True)]
    n_shifted = min(len(eligible), round(TEST_ONLY_SHARE * sample.n_test))
    shifted = set(rng.choice(eligible, n_shifted, replace=False).tolist())
    test_shots = []
    for i, label in enumerate(test_labels):
        if i in shifted:
            options = groups_of(label, test_only=True)
            group = options[int(rng.integers(len(options)))]
        else:
            group = pick_group(label)
        test_shots.append(Shot("test", i, label, group, pick_station(group), "photo"))
    test = [Entry(i, s.label, s.group.code, s.label, "") for i, s in enumerate(test_shots)]
    return Plan(train_shots=train_shots, test_shots=test_shots, train=train, test=test)
