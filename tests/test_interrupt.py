"""Ctrl+C and SIGTERM end the stages that use the process pool, promptly and cleanly.

Each case starts the real `grocer` command (or `dvc repro`) in a process group of its own,
waits until the pool's workers are running, waits a little more (a loop over delays) and
signals the whole group, as a terminal's Ctrl+C does. Required: the command ends within
GRACE seconds with the one line `interrupted` and exit code 130 (SIGINT) or 143 (SIGTERM),
no traceback, no process of the group left, the previous outputs byte-identical and no
temp files beside them.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from support.dataset import write_dataset
from support.params import REPO, deep_update, default_params_dict
from support.dvc_project import Workspace
from support.pipeline_project import BIN, copy_repo, environment

pytestmark = [
    pytest.mark.slow,  # minutes: a pool-sized project and `dvc repro`
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table in /proc"),
]

GRACE = 30  # seconds a signalled command may take to end (it takes about one)
STARTUP = 120  # seconds until the pool's workers run (imports on a busy machine)
DELAYS = (0.0, 0.1, 0.3)  # after the workers appear


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if int(group) == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def signal_when_pool_runs(command: list[str], cwd: Path, env: dict, stage: str, delay: float, signum: int):
    """Run `command` in a new process group; once 2+ processes run `stage` (the stage and a pool
    worker, which is a fork of it) and `delay` seconds more have passed, send `signum` to the group.

    Returns (exit code, stdout + stderr, members of the group still alive after it ended)."""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP
        while process.poll() is None and time.monotonic() < deadline:
            running = [p for p in group_members(process.pid) if f"grocer {stage}" in command_line(p)
                       and "sh -c" not in command_line(p)]
            if len(running) >= 2:
                break
            time.sleep(0.01)
        assert process.poll() is None, f"{command} ended before its pool started:\n{process.stdout.read().decode()}"
        time.sleep(delay)
        os.killpg(process.pid, signum)
        try:
            output, _ = process.communicate(timeout=GRACE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{command} still running {GRACE} s after {signal.Signals(signum).name} (delay {delay})")
        deadline = time.monotonic() + 10  # orphans would be reparented and live on
        while group_members(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        return process.returncode, output.decode(), group_members(process.pid)
    finally:
        for pid in group_members(process.pid):  # never leave a hung test's processes behind
            os.kill(pid, signal.SIGKILL)
        process.wait(timeout=GRACE)


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def pool_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose sample, ingest and cache have run once (on enough images for the pool)."""
    root = tmp_path_factory.mktemp("interrupt")
    write_dataset(root / "data" / "raw", classes=3, per_class=150, n_test=60, size=(192, 192))
    for stage in ("sample", "ingest", "cache"):
        write_params(root, stage)
        if stage == "cache":  # the reviewed training table: every train image
            manifest = pd.read_parquet(root / "data/interim/manifest.parquet")
            prepared = root / "data/prepared/train.csv"
            prepared.parent.mkdir(parents=True, exist_ok=True)
            manifest[manifest["split"] == "train"][["image_id", "label"]].to_csv(prepared, index=False)
        subprocess.run([str(BIN / "grocer"), stage], cwd=root, env=grocer_env(), check=True, timeout=300)
    return root


def write_params(root: Path, stage: str) -> None:
    """The sample stage generates the demo data only when data.dir is data/sample; the others read data/raw."""
    data_dir = "data/sample" if stage == "sample" else "data/raw"
    params = deep_update(default_params_dict(), {"data": {"dir": data_dir},
                                                 "sample": {"n_train": 300, "n_test": 60, "img_size": 64}})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def grocer_env() -> dict:
    return {**environment(), "PYTHONPATH": str(REPO / "src")}


@pytest.mark.parametrize("stage", ["sample", "ingest", "cache"])
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_a_pool_stage_with_one_line(pool_project: Path, stage: str, signum: int, code: int):
    write_params(pool_project, stage)
    before = digests(pool_project / "data")
    for delay in DELAYS if signum == signal.SIGINT else DELAYS[:1]:
        returncode, output, left = signal_when_pool_runs(
            [str(BIN / "grocer"), stage], pool_project, grocer_env(), stage, delay, signum)
        assert (returncode, output) == (code, "interrupted\n"), f"delay {delay}: exit {returncode}\n{output}"
        assert not left, f"delay {delay}: processes left: {[command_line(p) for p in left]}"
        assert digests(pool_project / "data") == before, f"delay {delay}: outputs changed or temp files left"


def test_ctrl_c_ends_dvc_repro_of_a_pool_stage(tmp_path: Path):
    """DVC has removed the stage's outputs when it runs it; `dvc checkout` restores them (README)."""
    workspace = Workspace(copy_repo(tmp_path / "repo"), environment())
    project = workspace.path
    workspace.dvc("repro", "ingest")
    outputs = ["data/interim/manifest.parquet", "data/interim/classes.json", "data/interim/test_fingerprint.json"]
    before = {name: (project / name).read_bytes() for name in outputs}

    env = {**environment(), "PYTHONPATH": str(project / "src")}
    returncode, output, left = signal_when_pool_runs(
        [str(BIN / "dvc"), "repro", "--force", "--single-item", "ingest"], project, env, "ingest", 0.0, signal.SIGINT)
    assert returncode != 0 and "interrupted" in output and "Traceback" not in output, output
    assert not left, [command_line(p) for p in left]
    assert not list((project / "data").rglob("*.tmp")), "temp files left"

    workspace.dvc("checkout", "ingest")
    assert {name: (project / name).read_bytes() for name in outputs} == before
