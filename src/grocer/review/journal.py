"""Review journals: the append-only JSON-lines files written by `grocer review`.

One file per session, `data/review/sessions/<session>.jsonl` (the sample's demo
journal lives in `data/sample_review/`). One JSON object per line, keys in this order:

    {"event_id": "<session>-<n>", "time": "2026-11-22T01:02:03.123456+00:00",
     "session": "<name>", "image_id": "...", "sha256": "<file sha256 as reviewed>",
     "class": "<label when reviewed>", "action": "keep"|"suspicious"|"trash"|"relabel"|"undo",
     "new_label": "<class>"|null, "undoes": "<event_id>"|null}

Rules checked for every line (a broken one is a GrocerError naming file and line):
every key present and no other; `time` is ISO 8601 with a timezone; `session` is the
file's stem; `event_id` is `<session>-<n>` (n >= 1) and unique in the file; `relabel`
carries a `new_label` different from `class`, other actions carry null; `undo` carries
the `event_id` it reverses in `undoes` (with that event's image_id/sha256/class),
other actions carry null. Whether an undo points at a live decision is the replay's
rule (`grocer.review.replay`).

Appends hold an exclusive `flock` on the file while they check and write, and each
line goes out in one `write` followed by flush + fsync: two tabs or two server
processes on one session can never interleave or tear lines, and a crash or a closed
tab loses no decision that the page reported as saved.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from grocer.errors import GrocerError

DECISIONS = ("keep", "suspicious", "trash", "relabel")
ACTIONS = (*DECISIONS, "undo")
KEYS = ("event_id", "time", "session", "image_id", "sha256", "class", "action", "new_label", "undoes")

# Session names become file names: no dots or slashes, so no traversal and no hidden files.
SESSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Event's fields in KEYS order; `label` is written as "class" (a Python keyword).
_FIELDS = ("event_id", "time", "session", "image_id", "sha256", "label", "action", "new_label", "undoes")


class JournalError(GrocerError):
    """A journal line or event that breaks the schema."""


def now() -> str:
    """The current time in the journal's format (UTC, microseconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def check_session(name: str) -> str:
    if not isinstance(name, str) or not SESSION_PATTERN.fullmatch(name):
        raise JournalError(
            f"session name {name!r} is not valid: 1-64 letters, digits, '_' or '-', starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class Event:
    """One journal line. `label` is the JSON key `class` (the image's label when reviewed)."""

    event_id: str
    time: str
    session: str
    image_id: str
    sha256: str
    label: str
    action: str
    new_label: str | None = None
    undoes: str | None = None

    def __post_init__(self) -> None:
        for key in ("event_id", "time", "session", "image_id", "sha256", "label", "action"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value:
                raise JournalError(f"{_json_key(key)}: must be a non-empty string, got {value!r}")
        for key in ("new_label", "undoes"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value):
                raise JournalError(f"{key}: must be null or a non-empty string, got {value!r}")
        check_session(self.session)
        match = re.fullmatch(re.escape(self.session) + r"-([1-9][0-9]*)", self.event_id)
        if match is None:
            raise JournalError(f"event_id {self.event_id!r} is not '{self.session}-<n>' with n >= 1")
        try:
            stamp = datetime.fromisoformat(self.time)
        except ValueError:
            raise JournalError(f"time {self.time!r} is not an ISO 8601 timestamp") from None
        if stamp.tzinfo is None:
            raise JournalError(f"time {self.time!r} has no timezone")
        if not _SHA256.fullmatch(self.sha256):
            raise JournalError(f"sha256 {self.sha256!r} is not 64 lowercase hex digits")
        if self.action not in ACTIONS:
            raise JournalError(f"action {self.action!r} is unknown; allowed: {', '.join(ACTIONS)}")
        if self.action == "relabel":
            if self.new_label is None:
                raise JournalError("relabel without new_label")
            if self.new_label == self.label:
                raise JournalError(f"relabel to its own class {self.label!r}")
        elif self.new_label is not None:
            raise JournalError(f"{self.action} must have new_label null, got {self.new_label!r}")
        if self.action == "undo":
            if self.undoes is None:
                raise JournalError("undo without undoes (the event_id it reverses)")
        elif self.undoes is not None:
            raise JournalError(f"{self.action} must have undoes null, got {self.undoes!r}")

    @property
    def number(self) -> int:
        """The n of `<session>-<n>`."""
        return int(self.event_id.rsplit("-", 1)[1])

    @property
    def timestamp(self) -> datetime:
        return datetime.fromisoformat(self.time)

    def to_dict(self) -> dict:
        return {_json_key(key): getattr(self, key) for key in _FIELDS}

    def to_json(self) -> str:
        """One journal line, without the newline."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, obj: object) -> Event:
        if not isinstance(obj, dict):
            raise JournalError(f"not a JSON object: {type(obj).__name__}")
        missing = [k for k in KEYS if k not in obj]
        if missing:
            raise JournalError(f"missing field(s) {', '.join(missing)}")
        unknown = sorted(k for k in obj if k not in KEYS)
        if unknown:
            raise JournalError(f"unknown field(s) {', '.join(unknown)}")
        return cls(**{key: obj[_json_key(key)] for key in _FIELDS})

    @classmethod
    def from_json(cls, line: str, where: str = "event") -> Event:
        """Parse one journal line; any problem is a JournalError prefixed with `where`."""
        try:
            obj = json.loads(line, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise JournalError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        except JournalError as exc:
            raise JournalError(f"{where}: {exc}") from None
        try:
            return cls.from_dict(obj)
        except JournalError as exc:
            raise JournalError(f"{where}: {exc}") from None


def _json_key(field: str) -> str:
    return "class" if field == "label" else field


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [k for k, _ in pairs]
        raise JournalError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
    return obj


def next_event_id(session: str, existing: list[Event]) -> str:
    """`<session>-<n>` with n one past the largest number in the journal."""
    return f"{session}-{max((e.number for e in existing), default=0) + 1}"


def parse(text: str, path: Path) -> list[Event]:
    """Every event of a journal's text; errors name `path:line`."""
    if text and not text.endswith("\n"):
        count = text.count("\n") + 1
        raise JournalError(f"{path}:{count}: last line is incomplete (no newline; a torn write?)")
    session = Path(path).stem
    events: list[Event] = []
    seen: set[str] = set()
    # split on "\n" only: str.splitlines would also cut at U+2028 etc., legal inside JSON strings
    lines = text[:-1].split("\n") if text else []
    for number, line in enumerate(lines, start=1):
        where = f"{path}:{number}"
        if not line.strip():
            raise JournalError(f"{where}: empty line")
        event = Event.from_json(line, where)
        if event.session != session:
            raise JournalError(f"{where}: session {event.session!r} in the journal of session {session!r}")
        if event.event_id in seen:
            raise JournalError(f"{where}: duplicate event_id {event.event_id!r}")
        seen.add(event.event_id)
        events.append(event)
    return events


def read_journal(path: Path) -> list[Event]:
    """The events of one journal file, in file order (line k is element k-1)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise JournalError(f"{path}: journal not found") from None
    try:
        # a shared lock: never read a line that another process is half-way through writing
        fcntl.flock(fd, fcntl.LOCK_SH)
        text = _read_fd(fd, path)
    finally:
        os.close(fd)
    return parse(text, path)


def append_next(path: Path, build: Callable[[list[Event]], Event]) -> Event:
    """Append the event that `build(existing events)` returns, all under one exclusive lock.

    Reading, building and writing under the same lock makes read-modify-append safe
    across threads and processes: e.g. the next event number, or the decision an undo
    reverses, is computed from a journal nobody else can change meanwhile.
    """
    path = Path(path)
    check_session(path.stem)
    created = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        existing = parse(_read_fd(fd, path), path)
        event = build(existing)
        if event.session != path.stem:
            raise JournalError(f"{path}: cannot append an event of session {event.session!r}")
        if any(e.event_id == event.event_id for e in existing):
            raise JournalError(f"{path}: event_id {event.event_id!r} is already in the journal")
        line = (event.to_json() + "\n").encode("utf-8")
        written = os.write(fd, line)  # O_APPEND + one write: the line lands whole at the end
        if written != len(line):
            raise JournalError(f"{path}: short write ({written} of {len(line)} bytes)")
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock
    if created:
        _fsync_dir(path.parent)  # the new file's directory entry must survive a crash too
    return event


def append(path: Path, event: Event) -> Event:
    """Append one event as one line (exclusive lock, flush + fsync)."""
    return append_next(path, lambda _existing: event)


def _read_fd(fd: int, path: Path) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise JournalError(f"{path}:{line}: not UTF-8") from None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
