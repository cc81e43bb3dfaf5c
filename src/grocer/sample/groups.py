"""The product groups of the sample dataset: one row per product code (the real data's `plu`).

Each group is one variety of one class with its own look, its own packaging, and (drawn
from the seed, see `scene.sample_style`) its own background, lighting and camera. Some
groups appear only in the test set: the group shift that a leave-group-out audit measures.
Codes follow the 4-digit PLU convention, with a leading 9 for organic, but the mapping
is made up for this stand-in.
"""

from __future__ import annotations

from dataclasses import dataclass

from grocer.sample.draw import Look


@dataclass(frozen=True)
class Group:
    code: str
    label: str
    variety: str
    look: Look
    packed: str = ""  # "", "bag" or "net": packaging drawn over the whole photo
    test_only: bool = False


# fmt: off
GROUPS: tuple[Group, ...] = (
    Group("4012", "orange", "navel", Look((0.98, 0.55, 0.07), (0.3, 0.45, 0.12), 0.29, (1, 3), 0.97, 1.0, 0.8, "navel")),
    Group("4388", "orange", "valencia", Look((0.97, 0.54, 0.07), (0.3, 0.45, 0.12), 0.26, (2, 4), 0.98, 1.1, 0.8)),
    Group("3107", "orange", "navel small", Look((0.98, 0.53, 0.06), (0.3, 0.45, 0.12), 0.24, (3, 5), 0.96, 1.0, 0.8, "navel")),
    Group("94012", "orange", "organic navel", Look((0.93, 0.52, 0.10), (0.3, 0.45, 0.12), 0.28, (1, 2), 0.97, 1.3, 0.6, "navel"), test_only=True),
    Group("4450", "mandarin", "clementine", Look((0.98, 0.45, 0.05), (0.2, 0.42, 0.12), 0.22, (2, 5), 0.87, 0.6, 1.3)),
    Group("3028", "mandarin", "tangerine", Look((0.94, 0.43, 0.05), (0.2, 0.42, 0.12), 0.23, (2, 4), 0.85, 0.8, 1.1), packed="net"),
    Group("4453", "mandarin", "satsuma with leaf", Look((0.97, 0.47, 0.06), (0.2, 0.42, 0.12), 0.22, (1, 3), 0.86, 0.6, 1.2, "leaf")),
    Group("3462", "mandarin", "murcott", Look((0.95, 0.46, 0.08), (0.2, 0.42, 0.12), 0.23, (2, 4), 0.88, 0.7, 1.0), test_only=True),
    Group("4016", "red_apple", "red delicious", Look((0.55, 0.05, 0.08), (0.75, 0.2, 0.15), 0.28, (1, 3), 1.0, 0.6)),
    Group("4129", "red_apple", "fuji", Look((0.72, 0.12, 0.14), (0.85, 0.70, 0.30), 0.27, (1, 3), 0.95, 1.0)),
    Group("4133", "red_apple", "gala", Look((0.80, 0.18, 0.12), (0.95, 0.72, 0.25), 0.25, (2, 4), 0.93, 1.1)),
    Group("94129", "red_apple", "organic fuji", Look((0.70, 0.14, 0.14), (0.80, 0.68, 0.32), 0.26, (1, 2), 0.95, 1.0, 0.8), packed="bag"),
    Group("4021", "red_apple", "jonagold", Look((0.78, 0.22, 0.12), (0.90, 0.75, 0.25), 0.27, (1, 3), 0.95, 1.4), test_only=True),
    Group("4664", "tomato", "on the vine", Look((0.90, 0.14, 0.06), (0.22, 0.45, 0.10), 0.23, (3, 5), 0.9, 1.0, 1.0, "vine")),
    Group("4087", "tomato", "roma", Look((0.88, 0.16, 0.06), (0.22, 0.45, 0.10), 0.23, (1, 4), 1.3)),
    Group("4799", "tomato", "beefsteak", Look((0.86, 0.12, 0.06), (0.22, 0.45, 0.10), 0.32, (1, 2), 0.82, 1.5)),
    Group("4796", "tomato", "cherry", Look((0.92, 0.15, 0.05), (0.22, 0.45, 0.10), 0.13, (5, 9), 0.95), test_only=True),
    Group("4030", "kiwi", "green", Look((0.45, 0.36, 0.18), (0.45, 0.68, 0.15), 0.24, (1, 4), 0.78)),
    Group("94030", "kiwi", "organic green", Look((0.42, 0.34, 0.17), (0.45, 0.68, 0.15), 0.22, (2, 5), 0.8, 1.2), packed="bag"),
    Group("3280", "kiwi", "tray with halves", Look((0.46, 0.37, 0.19), (0.45, 0.70, 0.15), 0.22, (2, 4), 0.8, 1.0, 1.0, "cut")),
    Group("3279", "kiwi", "gold", Look((0.60, 0.45, 0.22), (0.85, 0.75, 0.20), 0.24, (1, 3), 0.82, 0.5), test_only=True),
    Group("4072", "potato", "russet", Look((0.56, 0.42, 0.25), (0.30, 0.22, 0.14), 0.26, (1, 3), 0.7, 1.4)),
    Group("4727", "potato", "yellow", Look((0.82, 0.68, 0.45), (0.45, 0.35, 0.22), 0.24, (2, 4), 0.8, 0.6)),
    Group("4073", "potato", "red", Look((0.66, 0.30, 0.28), (0.40, 0.20, 0.16), 0.24, (2, 4), 0.85, 0.8)),
    Group("4128", "potato", "baby", Look((0.80, 0.66, 0.44), (0.45, 0.35, 0.22), 0.13, (5, 9), 0.85, 0.6), test_only=True),
    Group("4093", "onion", "yellow", Look((0.78, 0.52, 0.22), (0.88, 0.75, 0.55), 0.28, (1, 3), 0.92)),
    Group("4082", "onion", "red", Look((0.50, 0.14, 0.25), (0.75, 0.55, 0.60), 0.27, (1, 3), 0.9)),
    Group("4663", "onion", "white", Look((0.90, 0.88, 0.80), (0.97, 0.95, 0.90), 0.26, (1, 3), 0.92, 0.6), packed="net"),
    Group("4166", "onion", "sweet", Look((0.85, 0.68, 0.38), (0.92, 0.85, 0.65), 0.29, (1, 2), 0.82), test_only=True),
    Group("4562", "carrot", "loose", Look((0.95, 0.45, 0.06), (0.25, 0.50, 0.12), 0.42, (1, 4), 5.5)),
    Group("4094", "carrot", "bunched with tops", Look((0.96, 0.48, 0.08), (0.25, 0.50, 0.12), 0.34, (2, 5), 5.0, 1.0, 1.0, "tops")),
    Group("94562", "carrot", "organic bag", Look((0.92, 0.40, 0.08), (0.25, 0.50, 0.12), 0.35, (3, 6), 5.5, 1.2), packed="bag"),
    Group("4053", "lemon", "lemon", Look((0.98, 0.86, 0.20), (0.50, 0.55, 0.15), 0.26, (1, 4), 0.76, 1.0, 1.0, "pointed")),
    Group("4958", "lemon", "large", Look((0.97, 0.84, 0.18), (0.50, 0.55, 0.15), 0.31, (1, 2), 0.74, 1.2, 1.0, "pointed")),
    Group("94053", "lemon", "organic", Look((0.93, 0.82, 0.22), (0.50, 0.55, 0.15), 0.26, (2, 4), 0.78, 1.3, 0.8, "pointed"), packed="bag", test_only=True),
    Group("4011", "banana", "yellow", Look((0.96, 0.82, 0.22), (0.30, 0.20, 0.08), 0.40, (1, 1), 5.5, 0.3)),
    Group("94011", "banana", "organic green-tip", Look((0.78, 0.80, 0.28), (0.30, 0.20, 0.08), 0.40, (1, 1), 5.5, 0.1)),
    Group("4237", "banana", "ripe", Look((0.95, 0.76, 0.18), (0.30, 0.18, 0.06), 0.38, (1, 2), 5.0, 1.0)),
    Group("4236", "banana", "baby", Look((0.96, 0.80, 0.20), (0.30, 0.20, 0.08), 0.28, (1, 2), 4.0, 0.5), test_only=True),
    Group("4069", "cabbage", "green", Look((0.55, 0.72, 0.35), (0.85, 0.92, 0.70), 0.42, (1, 1), 0.95, 0.4)),
    Group("4554", "cabbage", "red", Look((0.42, 0.18, 0.38), (0.78, 0.65, 0.80), 0.40, (1, 1), 0.95, 0.4)),
    Group("4550", "cabbage", "savoy", Look((0.40, 0.60, 0.25), (0.70, 0.82, 0.50), 0.42, (1, 1), 0.95, 1.1)),
    Group("4062", "cucumber", "slicing", Look((0.14, 0.34, 0.12), (0.35, 0.55, 0.25), 0.44, (1, 3), 4.5)),
    Group("4593", "cucumber", "english wrapped", Look((0.10, 0.30, 0.10), (0.30, 0.50, 0.22), 0.46, (1, 2), 6.5, 0.4, 1.0, "wrapped")),
    Group("4596", "cucumber", "mini", Look((0.16, 0.38, 0.12), (0.38, 0.58, 0.25), 0.30, (3, 6), 3.5, 0.8), test_only=True),
    Group("4608", "garlic", "white", Look((0.92, 0.90, 0.84), (0.70, 0.50, 0.65), 0.25, (1, 4), 0.9, 0.3, 1.0, "cloves")),
    Group("4609", "garlic", "purple", Look((0.90, 0.86, 0.82), (0.60, 0.30, 0.55), 0.25, (1, 3), 0.9, 1.0, 1.0, "cloves")),
    Group("4612", "garlic", "net of three", Look((0.93, 0.91, 0.86), (0.70, 0.50, 0.65), 0.2, (3, 5), 0.9, 0.4, 1.0, "cloves"), packed="net"),
    Group("4065", "bell_pepper", "green", Look((0.15, 0.48, 0.10), (0.25, 0.45, 0.12), 0.30, (1, 3), 1.05)),
    Group("4088", "bell_pepper", "red", Look((0.80, 0.06, 0.05), (0.25, 0.45, 0.12), 0.30, (1, 3), 1.05)),
    Group("4689", "bell_pepper", "yellow", Look((0.98, 0.78, 0.08), (0.25, 0.45, 0.12), 0.29, (1, 3), 1.0)),
    Group("4680", "bell_pepper", "orange", Look((0.98, 0.50, 0.05), (0.25, 0.45, 0.12), 0.29, (1, 2), 1.0), test_only=True),
    Group("4081", "eggplant", "globe", Look((0.24, 0.07, 0.24), (0.85, 0.75, 0.85), 0.42, (1, 2), 2.4)),
    Group("4599", "eggplant", "japanese", Look((0.36, 0.12, 0.36), (0.85, 0.75, 0.85), 0.45, (1, 3), 5.0)),
    Group("4600", "eggplant", "graffiti", Look((0.45, 0.15, 0.40), (0.90, 0.85, 0.90), 0.40, (1, 2), 2.6, 1.0, 1.0, "stripes"), test_only=True),
)
# fmt: on

CLASSES: tuple[str, ...] = tuple(sorted({g.label for g in GROUPS}))

# Each class of a confusable pair is mislabelled as its partner more often than as anything else.
PARTNER: dict[str, str] = {
    "orange": "mandarin", "mandarin": "orange",
    "red_apple": "tomato", "tomato": "red_apple",
    "kiwi": "potato", "potato": "kiwi",
}


def groups_of(label: str, *, test_only: bool) -> list[Group]:
    return [g for g in GROUPS if g.label == label and g.test_only == test_only]

