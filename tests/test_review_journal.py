"""The journal schema, strict parsing with file:line errors, and safe appends."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from pathlib import Path

import pytest

from grocer.errors import GrocerError
from grocer.review import journal
from grocer.review.journal import Event

SHA = "ab" * 32


def event(n: int = 1, action: str = "keep", session: str = "s1", **overrides) -> Event:
    fields = dict(
        event_id=f"{session}-{n}", time="2026-11-22T01:02:03.123456+00:00", session=session,
        image_id="img1.jpg", sha256=SHA, label="orange", action=action,
        new_label="mandarin" if action == "relabel" else None,
        undoes=f"{session}-1" if action == "undo" else None,
    )
    fields.update(overrides)
    return Event(**fields)


def line(**overrides) -> str:
    obj = event().to_dict()
    obj.update(overrides)
    return json.dumps(obj)


def test_round_trip_keeps_the_contract_keys_in_order():
    e = event(action="relabel")
    text = e.to_json()
    assert list(json.loads(text)) == list(journal.KEYS)
    assert json.loads(text)["class"] == "orange"
    assert Event.from_json(text) == e
    assert e.number == 1 and e.timestamp.tzinfo is not None


def test_now_is_a_valid_timestamp():
    assert event(time=journal.now()).timestamp.tzinfo is not None


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        (line().replace('"sha256"', '"sha"'), "missing field(s) sha256"),
        (line(extra=1), "unknown field(s) extra"),
        (line(action="delete"), "action 'delete' is unknown"),
        (line(action="relabel"), "relabel without new_label"),
        (line(action="relabel", new_label="orange"), "relabel to its own class"),
        (line(new_label="mandarin"), "keep must have new_label null"),
        (line(action="undo"), "undo without undoes"),
        (line(undoes="s1-1"), "keep must have undoes null"),
        (line(time="yesterday"), "not an ISO 8601"),
        (line(time="2026-11-22T01:02:03"), "has no timezone"),
        (line(sha256="XYZ"), "not 64 lowercase hex"),
        (line(image_id=""), "image_id: must be a non-empty string"),
        (line(image_id=3), "image_id: must be a non-empty string"),
        (line(event_id="other-1"), "is not 's1-<n>'"),
        (line(event_id="s1-0"), "is not 's1-<n>'"),
        (line(session="../x", event_id="../x-1"), "session name '../x' is not valid"),
        ('{"event_id": "s1-1", "event_id": "s1-2"}', "duplicate key 'event_id'"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path: Path, text: str, message: str):
    path = tmp_path / "s1.jsonl"
    path.write_text(line() + "\n" + text + "\n")
    with pytest.raises(GrocerError) as info:
        journal.read_journal(path)
    assert str(info.value).startswith(f"{path}:2: ")
    assert message in str(info.value)


@pytest.mark.parametrize(
    "text, message",
    [
        (line() + "\n\n" + line(event_id="s1-2") + "\n", ":2: empty line"),
        (line() + "\n" + line() + "\n", ":2: duplicate event_id 's1-1'"),
        (line() + "\n" + line(event_id="s1-2")[:40], ":2: last line is incomplete"),
        (line(session="s2", event_id="s2-1") + "\n", ":1: session 's2' in the journal of session 's1'"),
    ],
)
def test_file_level_rules(tmp_path: Path, text: str, message: str):
    path = tmp_path / "s1.jsonl"
    path.write_text(text)
    with pytest.raises(GrocerError, match=message):
        journal.read_journal(path)


def test_missing_journal_and_non_utf8(tmp_path: Path):
    with pytest.raises(GrocerError, match="journal not found"):
        journal.read_journal(tmp_path / "s1.jsonl")
    path = tmp_path / "s1.jsonl"
    path.write_bytes((line() + "\n").encode() + b'{"\xff"}\n')
    with pytest.raises(GrocerError, match=r"s1.jsonl:2: not UTF-8"):
        journal.read_journal(path)


def test_unicode_line_separator_inside_a_value_is_not_a_line_break(tmp_path: Path):
    path = tmp_path / "s1.jsonl"
    journal.append(path, event(image_id="odd\u2028name.jpg"))
    assert journal.read_journal(path)[0].image_id == "odd\u2028name.jpg"


def test_append_writes_one_line_and_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    path = tmp_path / "sessions" / "s1.jsonl"
    journal.append(path, event(1))
    journal.append(path, event(2, "relabel"))
    assert path.read_text().count("\n") == 2
    assert [e.action for e in journal.read_journal(path)] == ["keep", "relabel"]
    assert len(synced) == 3  # each line, plus the directory once when the file was created


def test_append_refuses_duplicates_and_foreign_sessions(tmp_path: Path):
    path = tmp_path / "s1.jsonl"
    journal.append(path, event(1))
    with pytest.raises(GrocerError, match="already in the journal"):
        journal.append(path, event(1))
    with pytest.raises(GrocerError, match="of session 's2'"):
        journal.append(path, event(1, session="s2"))
    with pytest.raises(GrocerError, match="session name"):
        journal.append(tmp_path / "a.b.jsonl", event(1))
    assert len(journal.read_journal(path)) == 1


def test_append_refuses_to_extend_a_torn_journal(tmp_path: Path):
    path = tmp_path / "s1.jsonl"
    path.write_text(line()[:30])
    with pytest.raises(GrocerError, match="last line is incomplete"):
        journal.append(path, event(2))
    assert path.read_text() == line()[:30]


def _append_many(path: str, worker: int, count: int) -> None:
    # a long id makes each line several KB, so unlocked writers would visibly collide
    for k in range(count):
        journal.append_next(Path(path), lambda existing: event(
            int(journal.next_event_id("s1", existing).rsplit("-", 1)[1]), image_id=f"w{worker}-{k}-" + "x" * 5000,
        ))


def _check_concurrent(path: Path, writers: int, count: int) -> None:
    events = journal.read_journal(path)
    assert len(events) == writers * count
    assert sorted(e.number for e in events) == list(range(1, writers * count + 1))
    for worker in range(writers):  # each writer's own lines stay in its order
        mine = [e.image_id.split("-")[1] for e in events if e.image_id.startswith(f"w{worker}-")]
        assert mine == [str(k) for k in range(count)]


def test_concurrent_appends_from_threads(tmp_path: Path):
    path = tmp_path / "s1.jsonl"
    threads = [threading.Thread(target=_append_many, args=(str(path), w, 25)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _check_concurrent(path, 4, 25)


def test_concurrent_appends_from_processes(tmp_path: Path):
    path = tmp_path / "s1.jsonl"
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_append_many, args=(str(path), w, 25)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert all(p.exitcode == 0 for p in procs)
    _check_concurrent(path, 3, 25)


def test_a_long_lived_reader_parses_appends_and_rewrites(tmp_path: Path):
    path = tmp_path / "s1.jsonl"
    reader = journal.Journal(path)
    journal.append(path, event(1))
    assert [e.event_id for e in reader.events()] == ["s1-1"]
    journal.append(path, event(2, "trash"))  # another writer
    assert [e.action for e in reader.events()] == ["keep", "trash"]
    with open(path, "a") as fh:  # a bad appended line is reported at its real line number
        fh.write(line(event_id="s1-1") + "\n")
    with pytest.raises(GrocerError, match=r"s1.jsonl:3: duplicate event_id 's1-1'"):
        reader.events()
    path.write_text(line(event_id="s1-7", action="suspicious") + "\n")  # rewritten, not appended
    assert [(e.event_id, e.action) for e in reader.events()] == [("s1-7", "suspicious")]
    assert journal.next_event_id("s1", reader.events()) == "s1-8"
    assert reader.append_next(lambda existing: event(8)).event_id == "s1-8"
    assert [e.number for e in journal.read_journal(path)] == [7, 8]
