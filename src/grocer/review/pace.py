"""The review's pace and time left, from the session journal's timestamps.

Active time is the sum of the gaps between consecutive events, each gap capped at
BREAK seconds, so a lunch break does not slow the estimate down. A grid page's
decisions are written together: they share one time stamp, and the page's whole time
falls on its first event, which is what makes the pace per image right. `Pace` is fed
the journal in pieces, so a long-lived server adds only the new lines.
"""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from grocer.review.journal import Event

BREAK = 120.0  # s: a longer gap between two events is a pause, counted as this much


class Pace:
    def __init__(self) -> None:
        self.count = 0  # events seen
        self._first: datetime | None = None
        self._last: datetime | None = None
        self._varied = False  # two different time stamps seen (one page says nothing about the pace)
        self._active = 0.0
        self._decisions = 0  # decisions after the first event

    def extend(self, events: Sequence[Event]) -> None:
        for event in events:
            stamp = event.timestamp
            if self._last is None:
                self._first = stamp
            else:
                self._active += min(max((stamp - self._last).total_seconds(), 0.0), BREAK)
                self._decisions += event.action != "undo"
                self._varied = self._varied or stamp != self._first
            self._last = stamp
        self.count += len(events)

    def seconds_per_image(self) -> float | None:
        """Active seconds per decision, or None before two writes."""
        if not self._varied or not self._decisions:
            return None
        return self._active / self._decisions

    def estimate(self, done: int, total: int) -> dict:
        """What the page's progress line shows: done, total, pace and seconds left (None when unknown)."""
        pace = self.seconds_per_image()
        return {
            "done": done, "total": total,
            "seconds_per_image": None if pace is None else round(pace, 3),
            "seconds_left": None if pace is None else round(pace * max(total - done, 0)),
        }


def estimate(events: Sequence[Event], done: int, total: int) -> dict:
    """`Pace.estimate` over a whole journal."""
    pace = Pace()
    pace.extend(events)
    return pace.estimate(done, total)
