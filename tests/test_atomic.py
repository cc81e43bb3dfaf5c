"""A stage replaces all of its outputs together or none of them (grocer.atomic)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import deep_update, default_params_dict
from grocer import atomic, cli, paths
from grocer import params as params_module
from grocer.stages import ingest


def digests(root: Path) -> dict[str, str]:
    """sha256 of every file under `root`, temp files included (they must not be there)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_failure_after_the_first_output_replaces_none(tmp_path: Path):
    atomic.write_text(tmp_path / "a.txt", "old a")
    with atomic.replace_dir(tmp_path / "d") as d:
        (d / "x").write_text("old x")
    before = digests(tmp_path)

    with pytest.raises(RuntimeError, match="third"):
        with atomic.together() as staged:
            staged.write_text(tmp_path / "a.txt", "new a")
            (staged.dir(tmp_path / "d") / "x").write_text("new x")
            raise RuntimeError("the third output failed")
    assert digests(tmp_path) == before

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


def outputs(root: Path) -> dict[str, str]:
    return {**digests(root / paths.INTERIM_DIR), **digests(root / paths.METRICS_DIR)}


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
