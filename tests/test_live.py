"""Per-epoch logging through dvclive (grocer.training.live), in the repositories it meets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from grocer import paths
from grocer.errors import GrocerError
from grocer.training.live import EpochLog, check_repository, curve_file, read_curves
from support.params import tiny_params
from support.pipeline_project import BIN, environment
from support.training_project import write_training_inputs

HISTORY = [{"train_loss": 1.5, "val_loss": 1.25, "train_acc": 0.5, "val_acc": 0.625, "val_f1": 0.5, "lr": 0.01},
           {"train_loss": 1.0, "val_loss": 1.125, "train_acc": 0.75, "val_acc": 0.75, "val_f1": 0.7, "lr": 0.005},
           {"train_loss": 0.5, "val_loss": 1.0, "train_acc": 0.875, "val_acc": 0.8, "val_f1": 0.75, "lr": 0.001}]


def run(cwd: Path, *command: str) -> str:
    return subprocess.run(list(command), cwd=cwd, env=environment(), check=True, capture_output=True, text=True,
                          timeout=120).stdout


def dvc_project(root: Path) -> Path:
    """A git + DVC repository with one commit, as a clone of the project is."""
    run(root, "git", "init", "-q", "-b", "main")
    run(root, str(BIN / "dvc"), "init", "-q")
    run(root, "git", "commit", "-q", "-m", "init")
    return root


def test_curves_summary_and_progress(tmp_path, monkeypatch):
    monkeypatch.chdir(dvc_project(tmp_path))
    directory = paths.train_curves_dir("m", 0)
    log = EpochLog(directory, "train@m-0")
    log.log(HISTORY[:1])
    log.log(HISTORY[:2])
    running = json.loads(paths.RUNNING_METRICS.read_text())
    assert running == {"item": "train@m-0", "step": 1, **{k: HISTORY[1][k] for k in HISTORY[1]}}
    assert not (directory / "metrics.json").exists()  # no summary before the item has a result
    log.end({"acc": 0.75, "val_loss": 1.125})

    table = pd.read_csv(curve_file(directory, "val/loss"), sep="\t")
    assert table.columns.tolist() == ["step", "loss"] and table["loss"].tolist() == [1.25, 1.125]
    assert json.loads((directory / "metrics.json").read_text()) == {"acc": 0.75, "val_loss": 1.125, "step": 1}
    assert json.loads(paths.RUNNING_METRICS.read_text()) == {}  # at rest: no column in `dvc exp show`
    curves = read_curves(directory, "train@m-0")
    assert sorted(curves["metric"].unique()) == ["lr", "train/acc", "train/loss", "val/acc", "val/f1", "val/loss"]
    # dvclive touched nothing else: no dvc.yaml, no report, nothing staged in git
    made = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")
                  if p.is_file() and not {".git", ".dvc", ".dvcignore"} & set(p.parts))
    assert made == [str(paths.RUNNING_METRICS), *(f"{directory}/{f}" for f in (
        "metrics.json", "plots/metrics/lr.tsv", "plots/metrics/train/acc.tsv", "plots/metrics/train/loss.tsv",
        "plots/metrics/val/acc.tsv", "plots/metrics/val/f1.tsv", "plots/metrics/val/loss.tsv"))]
    assert run(tmp_path, "git", "diff", "--cached", "--name-only") == ""


def test_a_resumed_run_replays_its_history_once(tmp_path, monkeypatch):
    monkeypatch.chdir(dvc_project(tmp_path))
    directory = paths.train_curves_dir("m", 0)
    EpochLog(directory, "train@m-0").log(HISTORY[:2])  # killed after two epochs
    resumed = EpochLog(directory, "train@m-0")  # a new process: Live() starts the files afresh
    resumed.log(HISTORY[:2])  # fit() hands the saved history over first
    resumed.log(HISTORY)
    resumed.end({"acc": 0.8})
    table = pd.read_csv(curve_file(directory, "lr"), sep="\t")
    assert table["step"].tolist() == [0, 1, 2] and table["lr"].tolist() == [0.01, 0.005, 0.001]


def test_a_git_repository_without_commits_is_one_clear_line(tmp_path):
    write_training_inputs(tmp_path, per_class=[8, 8, 8])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params().model_dump(), sort_keys=False))
    run(tmp_path, "git", "init", "-q")
    run(tmp_path, str(BIN / "dvc"), "init", "-q")
    result = subprocess.run([sys.executable, "-m", "grocer.cli", "train", "--model", "convnext", "--fold", "0"],
                            cwd=tmp_path, env={**environment(), "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"grocer train: error: {tmp_path} is a git repository without commits, on which dvclive fails; "
        "commit first (git add -A && git commit -m init)"]
    assert not (tmp_path / paths.train_item_dir("convnext", 0)).exists()


def test_a_git_repository_without_dvc_is_refused_before_dvclive_runs_dvc_init(tmp_path):
    run(tmp_path, "git", "init", "-q")
    with pytest.raises(GrocerError, match="git repository without DVC, where dvclive would run `dvc init`"):
        check_repository(tmp_path)
    assert not (tmp_path / ".dvc").exists()
    check_repository(tmp_path.parent)  # outside git: dvclive only writes its files
