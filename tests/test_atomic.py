"""grocer.atomic: a write that fails half-way leaves the previous output byte-identical and no temp file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from grocer import atomic


class Unwritable:
    """A value that fails when it is written out (as text or pickled), after the rows before it."""

    def __str__(self) -> str:
        raise RuntimeError("cannot write this value")

    __repr__ = __str__

    def __reduce__(self):
        raise RuntimeError("cannot write this value")


def snapshot(directory: Path) -> dict[str, bytes | None]:
    """Every path below `directory` (hidden ones included) and each file's bytes (None for a folder)."""
    return {p.relative_to(directory).as_posix(): None if p.is_dir() else p.read_bytes()
            for p in sorted(directory.rglob("*"))}


# each writer gets a value that makes it fail after it has begun writing: the CSV writer has
# written 50,000 rows, np.save its header and part of the pickle, the text writer opened its file
FAILING_WRITES = {
    "write_text": lambda path: atomic.write_text(path, "new\n" * 50_000 + "\udc80"),
    "write_frame": lambda path: atomic.write_frame(path, pd.DataFrame({"a": [1] * 50_000 + [Unwritable()]})),
    "save_npy": lambda path: atomic.save_npy(path, np.array([1] * 50_000 + [Unwritable()], dtype=object)),
}
SUFFIX = {"write_text": ".txt", "write_frame": ".csv", "save_npy": ".npy"}


@pytest.mark.parametrize("writer", FAILING_WRITES)
def test_a_failed_write_leaves_the_previous_file_and_no_temp_file(tmp_path, writer):
    target = tmp_path / "out" / f"table{SUFFIX[writer]}"
    target.parent.mkdir()
    target.write_bytes(b"the previous, complete output\n")
    (tmp_path / "out" / "neighbour.txt").write_text("left alone\n")
    before = snapshot(tmp_path)
    with pytest.raises((RuntimeError, UnicodeEncodeError)):
        FAILING_WRITES[writer](target)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("writer", FAILING_WRITES)
def test_a_failed_first_write_leaves_nothing(tmp_path, writer):
    with pytest.raises((RuntimeError, UnicodeEncodeError)):
        FAILING_WRITES[writer](tmp_path / "new" / f"table{SUFFIX[writer]}")
    assert snapshot(tmp_path) == {"new": None}  # the parent folder may stay; no file, no temp file


def test_writes_replace_the_file_whole_with_the_usual_mode(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text('{"old": 1, "longer than the new one": true}\n')
    atomic.write_json(target, {"acc": 0.5})
    assert target.read_text() == '{\n  "acc": 0.5\n}\n'
    frame = pd.DataFrame({"image_id": ["a", "b"], "prob": [0.25, 0.75]})
    atomic.write_frame(tmp_path / "t.parquet", frame)
    atomic.write_frame(tmp_path / "t.csv", frame)
    assert pd.read_parquet(tmp_path / "t.parquet").equals(frame) and pd.read_csv(tmp_path / "t.csv").equals(frame)
    atomic.save_npy(tmp_path / "a.npy", np.arange(3))
    atomic.write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert np.load(tmp_path / "a.npy").tolist() == [0, 1, 2] and (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(snapshot(tmp_path)) == ["a.npy", "b.bin", "metrics.json", "t.csv", "t.parquet"]
    mask = os.umask(0o022)
    os.umask(mask)
    assert {p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {0o666 & ~mask}  # not mkstemp's 0600
    with pytest.raises(ValueError, match="unsupported suffix"):
        atomic.write_frame(tmp_path / "t.xlsx", frame)


def previous_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "predictions" / "blend"
    (directory / "sub").mkdir(parents=True)
    (directory / "oof.parquet").write_bytes(b"old oof")
    (directory / "sub" / "weights.json").write_text("{}")
    return directory


def test_a_failed_directory_write_leaves_the_previous_directory_and_no_temp_dir(tmp_path):
    directory = previous_dir(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(RuntimeError, match="half-way"):
        with atomic.replace_dir(directory) as tmp:
            (tmp / "oof.parquet").write_bytes(b"new oof")
            (tmp / "extra.json").write_text("{}")
            raise RuntimeError("the stage failed half-way")
    assert snapshot(tmp_path) == before


def test_a_directory_write_replaces_the_directory_whole(tmp_path):
    directory = previous_dir(tmp_path)
    with atomic.replace_dir(directory) as tmp:
        assert tmp.parent == directory.parent and tmp != directory and not any(tmp.iterdir())
        atomic.write_text(tmp / "test.parquet", "new test")
    assert snapshot(tmp_path) == {"predictions": None, "predictions/blend": None,
                                  "predictions/blend/test.parquet": b"new test"}  # the old files are gone
    mask = os.umask(0o022)
    os.umask(mask)
    assert directory.stat().st_mode & 0o777 == 0o777 & ~mask  # not mkdtemp's 0700
    with atomic.replace_dir(tmp_path / "fresh" / "dir") as tmp:
        (tmp / "a").write_text("a")
    assert (tmp_path / "fresh" / "dir" / "a").read_text() == "a"
