"""The review's pace and time left, from the session journal's timestamps.

Active time is the sum of the gaps between consecutive events, each gap capped at
BREAK seconds, so a lunch break does not slow the estimate down. A grid page's
decisions are written together: they share a gap of ~0, and the page's whole time
falls on its first event, which is what makes the pace per image right.
"""

from __future__ import annotations

from typing import Sequence

from grocer.review.journal import Event

BREAK = 120.0  # s: a longer gap between two events is a pause, counted as this much


def seconds_per_image(events: Sequence[Event]) -> float | None:
    """Active seconds per decision in this session, or None before two writes (one grid
    page's events share one time stamp, and one page says nothing about the pace)."""
    times = [e.timestamp for e in events]
    if len(set(times)) < 2:
        return None
    active = sum(min(max((b - a).total_seconds(), 0.0), BREAK) for a, b in zip(times, times[1:]))
    decisions = sum(1 for e in events[1:] if e.action != "undo")
    return active / decisions if decisions else None


def estimate(events: Sequence[Event], done: int, total: int) -> dict:
    """What the page's progress line shows: done, total, pace and seconds left (None when unknown)."""
    pace = seconds_per_image(events)
    return {
        "done": done, "total": total,
        "seconds_per_image": None if pace is None else round(pace, 3),
        "seconds_left": None if pace is None else round(pace * max(total - done, 0)),
    }
