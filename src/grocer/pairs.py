"""The entries of `pairs.list` and the chosen-pairs file: one home for pair names.

An entry is either a pair 'a-b' (prob_b = P(b | a or b)) or a slot 'topN': the N-th most
confused pair of the blend's OOF predictions, chosen by the `choose-pairs` stage and
written to data/predictions/chosen_pairs.json ({"top1": "a-b", ...}). DVC resolves a
`matrix` when it reads dvc.yaml, before any stage runs, so the pair matrix iterates over
the entries themselves; a slot's item (`pair@top1-<fold>`) reads its pair from that file,
a dependency, and its expert lives under models/pairs/top1/.
"""

from __future__ import annotations

import json
import re

from grocer import paths
from grocer.errors import GrocerError

_SLOT = re.compile(r"top([1-9][0-9]*)")


def slot_rank(entry: str) -> int | None:
    """N for a slot 'topN', None for a pair."""
    match = _SLOT.fullmatch(entry)
    return int(match.group(1)) if match else None


def split_pair(name: str) -> tuple[str, str]:
    """'a-b' -> (a, b); an error unless it is two different non-empty names."""
    parts = name.split("-")
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise ValueError(f"pair {name!r} must be two different class names joined by '-', or a slot topN")
    return parts[0], parts[1]


def write_chosen(staged, chosen: dict[str, str]) -> None:
    """Into a grocer.atomic.Staged (not imported here: params imports this module, atomic imports pandas)."""
    staged.write_json(paths.CHOSEN_PAIRS, chosen)


def read_chosen() -> dict[str, str]:
    if not paths.CHOSEN_PAIRS.is_file():
        raise GrocerError(f"{paths.CHOSEN_PAIRS}: not found; run `dvc repro choose-pairs` (pairs.list has topN slots)")
    return json.loads(paths.CHOSEN_PAIRS.read_text())


def pair_classes(entries: list[str], classes: list[str]) -> dict[str, tuple[int, int]]:
    """entry -> (index of a, index of b): a slot through the chosen-pairs file; both classes must be known."""
    chosen = read_chosen() if any(slot_rank(e) for e in entries) else {}
    index = {c: k for k, c in enumerate(classes)}
    out = {}
    for entry in entries:
        if slot_rank(entry) and entry not in chosen:
            raise GrocerError(f"{paths.CHOSEN_PAIRS}: has no pair for {entry!r} (stale? run `dvc repro choose-pairs`)")
        a, b = split_pair(chosen.get(entry, entry))
        unknown = [c for c in (a, b) if c not in index]
        if unknown:
            raise GrocerError(f"pairs.list: {entry!r} names unknown class(es) {unknown} (classes: {', '.join(classes)})")
        out[entry] = (index[a], index[b])
    return out
