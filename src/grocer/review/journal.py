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
append (one line, or every line of a grid page) goes out in one `write` followed by fsync: two tabs or two server
processes on one session can never interleave or tear lines, and a crash or a closed
tab loses no decision that the page reported as saved.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

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
            obj = json.loads(line, object_pairs_hook=no_duplicate_keys)
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


def no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [k for k, _ in pairs]
        raise JournalError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
    return obj


def next_event_ids(session: str, existing: Sequence[Event], count: int) -> list[str]:
    """`count` ids `<session>-<n>`, n counting on from the largest number in the journal
    (found once: per event it made a 40-image page on a 10,000-line journal take 0.6 s)."""
    first = max((e.number for e in existing), default=0) + 1
    return [f"{session}-{first + k}" for k in range(count)]


def next_event_id(session: str, existing: Sequence[Event]) -> str:
    """`<session>-<n>` with n one past the largest number in the journal."""
    return next_event_ids(session, existing, 1)[0]


def parse(text: str, path: Path, first_line: int = 1, seen: frozenset[str] = frozenset()) -> list[Event]:
    """Every event of a journal's text (or of the lines appended after `first_line - 1`).

    Errors name `path:line`. `seen` holds the event ids of the lines before, so a
    duplicate id is caught in an appended tail too.
    """
    if text and not text.endswith("\n"):
        count = first_line + text.count("\n")
        raise JournalError(f"{path}:{count}: last line is incomplete (no newline; a torn write?)")
    session = Path(path).stem
    events: list[Event] = []
    ids = set(seen)
    # split on "\n" only: str.splitlines would also cut at U+2028 etc., legal inside JSON strings
    lines = text[:-1].split("\n") if text else []
    for number, line in enumerate(lines, start=first_line):
        where = f"{path}:{number}"
        if not line.strip():
            raise JournalError(f"{where}: empty line")
        event = Event.from_json(line, where)
        if event.session != session:
            raise JournalError(f"{where}: session {event.session!r} in the journal of session {session!r}")
        if event.event_id in ids:
            raise JournalError(f"{where}: duplicate event_id {event.event_id!r}")
        ids.add(event.event_id)
        events.append(event)
    return events


class Journal:
    """One journal file, read and appended under its lock, parsed incrementally.

    Journals only grow, so a long-lived reader (the review server) keeps what it
    parsed and parses only the lines added since; if the bytes it parsed were changed
    (the file was rewritten, e.g. by a git checkout) it parses the whole file again.
    A swipe on a 10,000-line journal then costs one line of parsing, not 10,000.
    Safe to share between threads.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._raw = b""
        self._events: tuple[Event, ...] = ()
        self._ids: frozenset[str] = frozenset()

    def events(self) -> tuple[Event, ...]:
        """Every event, in file order (line k is element k-1).

        The same tuple object comes back while the file is unchanged, so callers can
        cache what they derive from it by identity.
        """
        with self._lock:
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                raise JournalError(f"{self.path}: journal not found") from None
            try:
                # a shared lock: never read a line that another process is half-way through writing
                fcntl.flock(fd, fcntl.LOCK_SH)
                return self._sync(_read_fd(fd))
            finally:
                os.close(fd)

    def append_next(self, build: Callable[[Sequence[Event]], Event]) -> Event:
        """Append the event that `build(existing events)` returns (see `append_batch`)."""
        return self.append_batch(lambda existing: [build(existing)])[0]

    def append_batch(self, build: Callable[[Sequence[Event]], Sequence[Event]]) -> list[Event]:
        """Append the events that `build(existing events)` returns, all under one exclusive lock.

        Reading, building and writing under the same lock makes read-modify-append safe
        across threads and processes: e.g. the next event number, or the decision an undo
        reverses, is computed from a journal nobody else can change meanwhile. When the
        file does not exist yet, `build(())` runs once before it is created, so a build
        that raises leaves no empty file; `build` is then called again under the lock.
        Every line goes out in one write (O_APPEND), then one fsync: a grid page of 60
        decisions lands whole or not at all, and costs one fsync, not 60.
        """
        check_session(self.path.stem)
        with self._lock:
            created = False
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
            except FileNotFoundError:
                # a build that refuses (e.g. nothing to undo) must not leave an empty journal behind
                build(())
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
                created = True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                raw = _read_fd(fd)
                existing = self._sync(raw)
                events = list(build(existing))
                ids = set(self._ids)
                for event in events:
                    if event.session != self.path.stem:
                        raise JournalError(f"{self.path}: cannot append an event of session {event.session!r}")
                    if event.event_id in ids:
                        raise JournalError(f"{self.path}: event_id {event.event_id!r} is already in the journal")
                    ids.add(event.event_id)
                lines = "".join(event.to_json() + "\n" for event in events).encode("utf-8")
                written = os.write(fd, lines)  # O_APPEND + one write: the lines land whole at the end
                if written != len(lines):
                    raise JournalError(f"{self.path}: short write ({written} of {len(lines)} bytes)")
                os.fsync(fd)
                self._sync(raw + lines)
            finally:
                os.close(fd)  # closing releases the lock
            if created:
                _fsync_dir(self.path.parent)  # the new file's directory entry must survive a crash too
            return events

    def _sync(self, raw: bytes) -> tuple[Event, ...]:
        if not raw.startswith(self._raw):  # rewritten, not appended: start over
            self._raw, self._events, self._ids = b"", (), frozenset()
        tail = raw[len(self._raw):]
        first_line = len(self._events) + 1
        try:
            text = tail.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = first_line + tail[: exc.start].count(b"\n")
            raise JournalError(f"{self.path}:{line}: not UTF-8") from None
        new = parse(text, self.path, first_line, self._ids)
        if new:
            self._events = (*self._events, *new)
            self._ids = self._ids | {e.event_id for e in new}
        self._raw = raw
        return self._events


def read_journal(path: Path) -> list[Event]:
    """The events of one journal file, in file order (line k is element k-1)."""
    return list(Journal(path).events())


def append_next(path: Path, build: Callable[[Sequence[Event]], Event]) -> Event:
    """`Journal(path).append_next(build)`: read, build and append under one lock."""
    return Journal(path).append_next(build)


def append(path: Path, event: Event) -> Event:
    """Append one event as one line (exclusive lock, flush + fsync)."""
    return append_next(path, lambda _existing: event)


def _read_fd(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
