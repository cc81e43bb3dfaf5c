"""grocer.atomic: a write that fails half-way leaves the previous output byte-identical and no temp file;
a stage replaces all of its outputs together or none of them."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from support.params import deep_update, default_params_dict
from grocer import atomic, cli, paths
from grocer import params as params_module
from grocer.stages import ingest


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


def test_a_failure_after_the_first_output_replaces_none(tmp_path: Path):
    atomic.write_text(tmp_path / "a.txt", "old a")
    with atomic.replace_dir(tmp_path / "d") as d:
        (d / "x").write_text("old x")
    before = snapshot(tmp_path)

    with pytest.raises(RuntimeError, match="third"):
        with atomic.together() as staged:
            staged.write_text(tmp_path / "a.txt", "new a")
            (staged.dir(tmp_path / "d") / "x").write_text("new x")
            raise RuntimeError("the third output failed")
    assert snapshot(tmp_path) == before

    with atomic.together() as staged:
        staged.write_text(tmp_path / "a.txt", "new a")
        staged.write_frame(tmp_path / "t.csv", pd.DataFrame({"k": [1]}))
        (staged.dir(tmp_path / "d") / "y").write_text("new y")
    assert {p: (tmp_path / p).read_text() for p in ("a.txt", "t.csv", "d/y")} == {
        "a.txt": "new a", "t.csv": "k\n1\n", "d/y": "new y"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "d", "t.csv"]  # d/x went with the old d


def test_the_next_write_removes_what_a_killed_run_left(tmp_path: Path):
    (tmp_path / ".out.json.abcd1234.tmp").write_text("half")  # a SIGKILLed write of out.json
    (tmp_path / ".d.efgh5678.tmp").mkdir()  # ... and of the directory d
    (tmp_path / ".out.json.x.abcd1234.tmp").write_text("not ours")  # another target's name
    atomic.write_json(tmp_path / "out.json", {"a": 1})
    with atomic.replace_dir(tmp_path / "d"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.json.x.abcd1234.tmp", "d", "out.json"]


@pytest.fixture
def ingested(project: Path) -> Path:
    params = deep_update(default_params_dict(), {"data": {"dir": "data/raw"}})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert cli.main(["ingest"]) == 0
    return project


def outputs(root: Path) -> dict[str, bytes | None]:
    return {**snapshot(root / paths.INTERIM_DIR), **snapshot(root / paths.METRICS_DIR)}


def test_ingest_failing_after_its_first_output_replaces_none(ingested: Path, monkeypatch: pytest.MonkeyPatch):
    before = outputs(ingested)
    (ingested / "data/raw/test_images/te_000.png").unlink()  # a new dataset: every output would change
    (ingested / "data/raw/test.csv").write_text("image_id\n" + "".join(f"te_{i:03d}.png\n" for i in range(1, 9)))
    (ingested / "data/raw/sample_submission.csv").write_text(
        "image_id,label\n" + "".join(f"te_{i:03d}.png,class0\n" for i in range(1, 9)))

    def failing(*args):  # the metrics come after the manifest is written
        raise RuntimeError("metrics failed")

    monkeypatch.setattr(ingest, "ingest_metrics", failing)
    with pytest.raises(RuntimeError, match="metrics failed"):
        ingest.run(params_module.load())
    assert outputs(ingested) == before


def test_header_only_train_csv_is_one_line_and_replaces_nothing(ingested: Path, capsys: pytest.CaptureFixture):
    before = outputs(ingested)
    capsys.readouterr()
    (ingested / "data/raw/train.csv").write_text("image_id,label,group\n")
    assert cli.main(["ingest"]) == 1
    assert capsys.readouterr().err == "grocer ingest: error: data/raw/train.csv has no rows\n"
    assert outputs(ingested) == before


def test_writes_work_outside_the_main_thread(tmp_path: Path):
    """The commit holds Ctrl+C between its renames; in another thread (a server's) there is nothing to hold."""
    errors = []

    def write():
        try:
            atomic.write_json(tmp_path / "x.json", {"a": 1})
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(timeout=30)
    assert not errors and json.loads((tmp_path / "x.json").read_text()) == {"a": 1}
