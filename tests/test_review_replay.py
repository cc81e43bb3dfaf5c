"""Replay rules: undo chains, undo across classes, several sessions, conflicts by time."""

from __future__ import annotations

from pathlib import Path

import pytest

from grocer.errors import GrocerError
from grocer.review.journal import Event
from grocer.review.replay import ReplayError, SessionReplay, replay_session, resolve, session_verdicts

SHA = {name: f"{k:064x}" for k, name in enumerate(["a", "b", "c", "d"], start=1)}
LABEL = {"a": "orange", "b": "orange", "c": "kiwi", "d": "kiwi"}


class Session:
    """Builds one session's events the way the page does: numbered, timed, undo by id."""

    def __init__(self, name: str, start_minute: int = 0):
        self.name, self.minute, self.events = name, start_minute, []

    def _add(self, image: str, action: str, new_label=None, undoes=None, label=None) -> str:
        self.minute += 1
        event_id = f"{self.name}-{len(self.events) + 1}"
        self.events.append(Event(
            event_id=event_id, time=f"2026-11-22T10:{self.minute:02d}:00+00:00", session=self.name,
            image_id=image, sha256=SHA[image], label=label or LABEL[image], action=action,
            new_label=new_label, undoes=undoes,
        ))
        return event_id

    def decide(self, image: str, action: str, new_label: str | None = None) -> str:
        return self._add(image, action, new_label)

    def undo(self, event_id: str) -> str:
        target = next(e for e in self.events if e.event_id == event_id)
        return self._add(target.image_id, "undo", undoes=event_id)

    @property
    def journal(self) -> tuple[Path, list[Event]]:
        return Path(f"sessions/{self.name}.jsonl"), self.events


def final(*sessions: Session) -> dict[str, tuple[str, str | None, str]]:
    return {d.event.image_id: (d.event.action, d.event.new_label, d.event.session) for d in resolve([s.journal for s in sessions])}


def test_decisions_without_undo():
    s = Session("s1")
    s.decide("a", "keep")
    s.decide("b", "relabel", "mandarin")
    s.decide("c", "trash")
    s.decide("d", "suspicious")
    assert final(s) == {
        "a": ("keep", None, "s1"), "b": ("relabel", "mandarin", "s1"),
        "c": ("trash", None, "s1"), "d": ("suspicious", None, "s1"),
    }


def test_undo_chain_of_several_steps_across_classes():
    s = Session("s1")
    s.decide("a", "keep")                       # orange
    b = s.decide("b", "relabel", "mandarin")    # orange
    c = s.decide("c", "trash")                  # kiwi: another class
    s.undo(c)
    s.undo(b)                                   # back across the class change
    s.decide("b", "suspicious")
    assert final(s) == {"a": ("keep", None, "s1"), "b": ("suspicious", None, "s1")}
    live = replay_session(*s.journal)
    assert [d.where for d in live] == ["sessions/s1.jsonl:1", "sessions/s1.jsonl:6"]


def test_a_replay_fed_in_pieces_equals_one_replay_of_the_whole_journal():
    s = Session("s1")
    a = s.decide("a", "keep")
    s.decide("b", "relabel", "mandarin")
    s.undo(a)                                   # an undo in a later piece of an event in an earlier one
    c = s.decide("c", "trash")
    s.decide("a", "suspicious")
    s.undo(c)
    path, events = s.journal
    for cut in range(len(events) + 1):
        replay = SessionReplay(path)
        replay.extend(events[:cut])
        replay.extend(events[cut:])
        assert replay.live() == replay_session(path, events) and replay.count == len(events)
    broken = SessionReplay(path)
    broken.extend(events[:1])
    with pytest.raises(ReplayError, match="s1.jsonl:2: undo of 's1-9'"):
        broken.extend([Event(event_id="s1-2", time="2026-11-22T10:09:00+00:00", session="s1", image_id="a",
                             sha256=SHA["a"], label=LABEL["a"], action="undo", undoes="s1-9")])


def test_undo_of_everything_leaves_nothing():
    s = Session("s1")
    ids = [s.decide(i, "keep") for i in "abc"]
    for event_id in reversed(ids):
        s.undo(event_id)
    assert final(s) == {}


def test_undo_can_name_any_live_decision_not_only_the_last():
    s = Session("s1")
    a = s.decide("a", "trash")
    s.decide("b", "keep")
    s.undo(a)
    assert final(s) == {"b": ("keep", None, "s1")}


def test_a_later_decision_in_the_same_session_replaces_an_earlier_one():
    s = Session("s1")
    s.decide("a", "keep")
    s.decide("a", "relabel", "mandarin")
    assert final(s) == {"a": ("relabel", "mandarin", "s1")}
    assert len(session_verdicts(replay_session(*s.journal))) == 1


def test_undoing_the_later_decision_brings_back_the_earlier_one():
    s = Session("s1")
    s.decide("a", "keep")
    s.undo(s.decide("a", "trash"))
    assert final(s) == {"a": ("keep", None, "s1")}


def test_latest_timestamp_wins_across_sessions():
    early, late = Session("alice", 0), Session("bob", 30)
    early.decide("a", "trash")
    early.decide("b", "keep")
    late.decide("a", "relabel", "mandarin")
    assert final(late, early) == final(early, late) == {
        "a": ("relabel", "mandarin", "bob"), "b": ("keep", None, "alice"),
    }


def test_an_undo_in_one_session_does_not_revive_or_cancel_another_session():
    alice, bob = Session("alice", 0), Session("bob", 30)
    alice.decide("a", "trash")
    bob.undo(bob.decide("a", "keep"))
    assert final(alice, bob) == {"a": ("trash", None, "alice")}


def test_equal_timestamps_fall_back_to_the_session_name():
    x, y = Session("x"), Session("y")
    x.decide("a", "trash")
    y.decide("a", "keep")
    assert final(y, x)["a"] == final(x, y)["a"] == ("keep", None, "y")


def test_timestamps_compare_across_timezones():
    s1, s2 = Session("s1"), Session("s2")
    s1.decide("a", "trash")  # 10:01 UTC
    s2.decide("a", "keep")
    # 11:00+02:00 is 09:00 UTC: earlier than s1's decision despite the larger wall-clock
    s2.events[0] = Event(**{**s2.events[0].__dict__, "time": "2026-11-22T11:00:00+02:00"})
    assert final(s1, s2)["a"] == ("trash", None, "s1")


def test_the_same_session_in_two_files_is_an_error():
    s = Session("demo")
    s.decide("a", "keep")
    with pytest.raises(GrocerError, match="session 'demo' is also journaled in sessions/demo.jsonl"):
        resolve([s.journal, (Path("sample_review/demo.jsonl"), s.events)])


def test_results_are_sorted_by_time():
    s1, s2 = Session("s1", 10), Session("s2", 0)
    s1.decide("a", "keep")
    s2.decide("b", "keep")
    assert [d.event.image_id for d in resolve([s1.journal, s2.journal])] == ["b", "a"]


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda s: s.undo(s.decide("a", "keep")) and s._add("a", "undo", undoes="s1-1"), ":3: undo of 's1-1', already undone at sessions/s1.jsonl:2"),
        (lambda s: s._add("a", "undo", undoes="s1-7"), ":1: undo of 's1-7', which is not an earlier decision"),
        (lambda s: s.decide("a", "keep") and s._add("a", "undo", undoes="s1-3"), ":2: undo of 's1-3', which is not an earlier"),
        (lambda s: s.undo(s.decide("a", "keep")) and s._add("a", "undo", undoes="s1-2"), ":3: undo of 's1-2', which is not an earlier decision"),
        (lambda s: s.decide("a", "keep") and s._add("b", "undo", undoes="s1-1"), ":2: undo of 's1-1' does not match that event's image_id, sha256"),
        (lambda s: s.decide("a", "keep") and s._add("a", "undo", undoes="s1-1", label="kiwi"), ":2: .* does not match that event's class"),
    ],
)
def test_bad_undos_name_file_and_line(build, message):
    s = Session("s1")
    build(s)
    with pytest.raises(GrocerError, match="sessions/s1.jsonl" + message):
        resolve([s.journal])
