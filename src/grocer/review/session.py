"""One review session's journal as the server sees it: its events, live decisions and pace.

Journals only grow and `Journal.events()` keeps the event objects it parsed, so the
server replays only the lines added since it last looked (`SessionReplay`, `Pace`).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Sequence

from grocer.review import journal, pace
from grocer.review.journal import Event
from grocer.review.replay import Decision, ReplayError, SessionReplay


class SessionLog:
    """The session's journal, its live decisions and its pace.

    Journals only grow and `Journal.events()` keeps the event objects it parsed, so a
    longer tuple that ends the old part with the same object is the old one plus new
    lines: those alone are replayed (a page on a 10,000-line journal costs 40 lines of
    replay, not 10,000). A rewritten file is replayed from the start.
    """

    def __init__(self, path: Path):
        self.journal = journal.Journal(path)
        self._lock = threading.Lock()
        self._events: tuple[Event, ...] = ()
        self._replay = SessionReplay(path)
        self._pace = pace.Pace()

    @property
    def path(self) -> Path:
        return self.journal.path

    def events(self) -> tuple[Event, ...]:
        return self.journal.events() if self.path.exists() else ()

    def live(self, events: Sequence[Event] | None = None) -> list[Decision]:
        """Decisions of this session that are not undone, in journal order (of `events`,
        the journal's events as `Journal` gave them, or of the journal now)."""
        events = self.events() if events is None else events  # outside our lock: see append_batch
        with self._lock:
            self._catch_up(events)
            return self._replay.live()

    def estimate(self, done: int, total: int) -> dict:
        events = self.events()
        with self._lock:
            self._catch_up(events)
            return self._pace.estimate(done, total)

    def _catch_up(self, events: Sequence[Event]) -> None:
        old = self._events
        if events is old:
            return
        grown = len(events) >= len(old) and (not old or events[len(old) - 1] is old[-1])
        if not grown:
            self._replay, self._pace = SessionReplay(self.path), pace.Pace()
        tail = events[self._replay.count:]
        try:
            self._replay.extend(tail)
        except ReplayError:
            self._events, self._replay, self._pace = (), SessionReplay(self.path), pace.Pace()
            raise
        self._pace.extend(tail)
        self._events = events

    def append_batch(self, build: Callable[[Sequence[Event]], Sequence[Event]]) -> list[Event]:
        # `build` runs under the journal's lock and may call live(): so live() never reads
        # the journal while it holds this object's lock (the two locks in one order only)
        return self.journal.append_batch(build)
