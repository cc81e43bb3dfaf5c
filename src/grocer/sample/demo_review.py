"""The sample's demo review session: what a reviewer swiping through train class by class would log.

It relabels about half of the injected wrong labels to their true class, trashes blank
and duplicate images, flags thumbnails as suspicious, keeps clean ones, and makes the
mistakes a real session has, each fixed with an undo:

- a misclick: relabel to the wrong class, undo, relabel to the right one;
- trash a good image, undo, keep it;
- keep C then relabel D, undo both (last first): neither C nor D ends with a decision.

`intended_actions` is the verdict per image the session means; the review stage's
replay of the journal must arrive at it (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from grocer.review.journal import Event

SESSION = "demo"
START = datetime(2026, 1, 12, 9, 30, tzinfo=timezone.utc)
N_RELABEL = 15
N_KEEP = 20


@dataclass(frozen=True)
class Listed:
    """A train row as the reviewer sees it."""

    image_id: str
    label: str
    true_label: str
    defect: str
    sha256: str


@dataclass(frozen=True)
class Intended:
    image_id: str
    action: str
    new_label: str | None


class _Log:
    """Numbers and timestamps events as the session goes."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.events: list[Event] = []
        self.clock = START

    def _event(self, row: Listed, action: str, new_label: str | None, undoes: str | None) -> Event:
        self.clock += timedelta(microseconds=int(self.rng.uniform(0.8, 6.0) * 1e6))
        event = Event(
            event_id=f"{SESSION}-{len(self.events) + 1}", time=self.clock.isoformat(timespec="microseconds"),
            session=SESSION, image_id=row.image_id, sha256=row.sha256, label=row.label,
            action=action, new_label=new_label, undoes=undoes,
        )
        self.events.append(event)
        return event

    def decide(self, row: Listed, action: str, new_label: str | None = None) -> Event:
        return self._event(row, action, new_label, None)

    def undo(self, row: Listed, decision: Event) -> Event:
        return self._event(row, "undo", None, decision.event_id)


def build_session(
    rng: np.random.Generator, rows: list[Listed], classes: list[str]
) -> tuple[list[Event], list[Intended]]:
    """The demo session's events in order, and the verdict it intends for each image it touches."""
    def pick(defect: str, n: int, among: list[Listed] | None = None) -> list[Listed]:
        pool = [r for r in (rows if among is None else among) if r.defect == defect]
        return [pool[i] for i in rng.permutation(len(pool))[:n]]

    wrong = pick("wrong_label", len(rows))
    n_relabel = min(N_RELABEL, math.ceil(len(wrong) / 2))
    relabels, undone_relabel = wrong[:n_relabel], wrong[n_relabel]
    misclick = relabels[0]
    trashes = pick("blank", 3) + pick("exact_duplicate", 2) + pick("cross_label_duplicate", 1)
    suspicious = pick("too_small", 2)
    clean = pick("", len(rows))
    undone_keep = next(r for r in clean if r.label == undone_relabel.label)
    clean = [r for r in clean if r is not undone_keep]
    keeps, trash_undone = clean[:N_KEEP], clean[N_KEEP]

    plan: dict[str, tuple[Listed, str]] = {}  # image_id -> (row, scenario)
    for rows_, scenario in ((relabels, "relabel"), (trashes, "trash"), (suspicious, "suspicious"),
                            (keeps, "keep"), ([trash_undone], "trash_undone"), ([undone_relabel], "double_undo"),
                            ([misclick], "misclick")):
        for row in rows_:
            plan[row.image_id] = (row, scenario)

    log = _Log(rng)
    intended: list[Intended] = []
    # the page shows one class at a time, images in id order
    for row, scenario in sorted(plan.values(), key=lambda p: (p[0].label, p[0].image_id)):
        if scenario in ("trash", "suspicious", "keep"):
            log.decide(row, scenario)
            intended.append(Intended(row.image_id, scenario, None))
        elif scenario == "relabel":
            log.decide(row, "relabel", row.true_label)
            intended.append(Intended(row.image_id, "relabel", row.true_label))
        elif scenario == "misclick":
            slip = str(rng.choice([c for c in classes if c not in (row.label, row.true_label)]))
            log.undo(row, log.decide(row, "relabel", slip))
            log.decide(row, "relabel", row.true_label)
            intended.append(Intended(row.image_id, "relabel", row.true_label))
        elif scenario == "trash_undone":
            log.undo(row, log.decide(row, "trash"))
            log.decide(row, "keep")
            intended.append(Intended(row.image_id, "keep", None))
        else:  # double_undo: keep C, relabel D, then undo D and C
            kept = log.decide(undone_keep, "keep")
            relabelled = log.decide(row, "relabel", row.true_label)
            log.undo(row, relabelled)
            log.undo(undone_keep, kept)
    return log.events, sorted(intended, key=lambda i: i.image_id)
