"""Replaying review journals into final actions (pure functions: events in, decisions out).

Rules:
- Within a session, events apply in file order. An `undo` cancels the event named by
  its `undoes`, which must be an earlier decision of the same session that is not
  undone yet, about the same image (same image_id, sha256 and class); anything else is
  an error naming file:line. Undos never chain onto undos (no redo: decide again).
- A session's verdict on an image is its last decision on it that is not undone.
- Across sessions, the verdict with the latest timestamp wins for each image; equal
  timestamps fall back to the session name (the later name wins), so the result never
  depends on the order in which files were read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from grocer.errors import GrocerError
from grocer.review.journal import Event


class ReplayError(GrocerError):
    """A journal whose events do not replay (e.g. an undo of nothing)."""


@dataclass(frozen=True)
class Decision:
    """A decision event and where it was read (`file:line`), for messages and actions.csv."""

    event: Event
    where: str


class SessionReplay:
    """`replay_session`, fed in pieces: a journal that grew replays only its new lines.

    After a ReplayError the object is in an unknown state; start a new one.
    """

    def __init__(self, path: Path):
        self.path = path
        self.count = 0  # events replayed so far
        self._decisions: dict[str, Decision] = {}  # every decision so far, by event_id
        self._undone_at: dict[str, str] = {}  # event_id -> where its undo is

    def extend(self, events: Sequence[Event]) -> None:
        """Replay the events that follow the first `count` of the journal."""
        for number, event in enumerate(events, start=self.count + 1):
            where = f"{self.path}:{number}"
            if event.action != "undo":
                self._decisions[event.event_id] = Decision(event, where)
                continue
            target = self._decisions.get(event.undoes)
            if target is None:
                raise ReplayError(f"{where}: undo of {event.undoes!r}, which is not an earlier decision of this session")
            if event.undoes in self._undone_at:
                raise ReplayError(f"{where}: undo of {event.undoes!r}, already undone at {self._undone_at[event.undoes]}")
            mismatched = [
                key for key in ("image_id", "sha256", "label") if getattr(event, key) != getattr(target.event, key)
            ]
            if mismatched:
                fields = ", ".join("class" if key == "label" else key for key in mismatched)
                raise ReplayError(f"{where}: undo of {event.undoes!r} does not match that event's {fields}")
            self._undone_at[event.undoes] = where
        self.count += len(events)

    def live(self) -> list[Decision]:
        """The decisions not undone, in file order."""
        return [d for event_id, d in self._decisions.items() if event_id not in self._undone_at]


def replay_session(path: Path, events: Sequence[Event]) -> list[Decision]:
    """The live (not undone) decisions of one session's journal, in file order.

    Args:
        path: the journal file, used in messages; line k holds events[k-1].
        events: the file's events (`journal.read_journal`).
    """
    replay = SessionReplay(path)
    replay.extend(events)
    return replay.live()


def session_verdicts(live: list[Decision]) -> dict[str, Decision]:
    """Image id -> the session's last live decision on it."""
    verdicts: dict[str, Decision] = {}
    for decision in live:
        verdicts[decision.event.image_id] = decision
    return verdicts


def resolve(journals: list[tuple[Path, Sequence[Event]]]) -> list[Decision]:
    """The final decision per image over all sessions, sorted by (time, session, event number).

    Args:
        journals: (file, events) per journal; each file is one session.
    """
    seen: dict[str, Path] = {}
    winners: dict[str, Decision] = {}
    for path, events in journals:
        if events:
            session = events[0].session
            if session in seen:
                raise ReplayError(f"{path}: session {session!r} is also journaled in {seen[session]}")
            seen[session] = path
        for image_id, decision in session_verdicts(replay_session(path, events)).items():
            current = winners.get(image_id)
            if current is None or _rank(decision) > _rank(current):
                winners[image_id] = decision
    return sorted(winners.values(), key=lambda d: (*_rank(d), d.event.number))


def _rank(decision: Decision) -> tuple:
    return decision.event.timestamp, decision.event.session
