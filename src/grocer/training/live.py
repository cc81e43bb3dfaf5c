"""Per-epoch logging of a train or pair item with dvclive.

`EpochLog` wraps `dvclive.Live(dir=<the item's curves directory>, save_dvc_exp=False,
dvcyaml=None, report=None, monitor_system=False)`, created on rank 0 only. The directory
is a declared out of the item, so under `dvc exp run` dvclive git-adds nothing (it adds
only untracked files that are no DVC out), and dvc.yaml, not dvclive, declares what
DVC shows. It holds dvclive's usual layout:

* plots/metrics/<curve>.tsv: columns step,<last part of the curve's name>, one row per
  epoch (train/loss, train/acc, val/loss, val/acc, val/f1, lr);
* metrics.json: `live.summary`, the item's final scalars (val_loss, acc, ...) and the
  last step, written once at the end (each epoch sets `live.step` and logs its curves;
  no next_step, whose summary would stand for the item's result before it has one).

A resumed run replays the saved history first, so the curves hold every epoch once.
Every epoch also rewrites metrics/running.json (dvc.yaml's top-level metrics) with the
running item's step and latest figures, and empties it ({}) when the item ends: `dvc exp
show` shows a running item's progress, and a finished run adds no columns.

dvclive reads the git repository it runs in; two cases would go wrong there and are
refused with one line instead: a git repository without commits (dvclive fails on it)
and a git repository without DVC (dvclive would run `dvc init` in it).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd

from grocer import atomic, paths
from grocer.errors import GrocerError

# history key -> dvclive metric name (its .tsv under plots/metrics/)
CURVES = {"train_loss": "train/loss", "train_acc": "train/acc", "val_loss": "val/loss", "val_acc": "val/acc",
          "val_f1": "val/f1", "lr": "lr"}
METRICS_SUBDIR = Path("plots") / "metrics"  # dvclive's: <dir>/plots/metrics/<name>.tsv
SUMMARY = "metrics.json"  # dvclive's summary file in <dir>


def _ancestor_with(name: str, start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / name).exists():
            return folder
    return None


def check_repository(cwd: Path | None = None) -> None:
    """Raise GrocerError (one line) where dvclive would fail or run `dvc init`."""
    cwd = (cwd or Path.cwd()).resolve()
    git_root = _ancestor_with(".git", cwd)
    if git_root is None:
        return  # no git: dvclive just writes its files
    dvc_root = _ancestor_with(".dvc", cwd)
    if dvc_root is None or not dvc_root.is_relative_to(git_root):
        raise GrocerError(f"{git_root} is a git repository without DVC, where dvclive would run `dvc init`; "
                          "run grocer in the project (its dvc.yaml), or `dvc init` first")
    head = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "HEAD"], cwd=cwd, capture_output=True,
                          timeout=30)
    if head.returncode != 0:
        raise GrocerError(f"{git_root} is a git repository without commits, on which dvclive fails; "
                          "commit first (git add -A && git commit -m init)")


class EpochLog:
    """dvclive's Live for one item's curves in `directory`, its progress in metrics/running.json."""

    def __init__(self, directory: Path, item: str):
        check_repository()
        os.environ.setdefault("DVC_STUDIO_OFFLINE", "1")  # never post to DVC Studio
        from dvclive import Live  # imports dvc: only in the processes that log

        self.item = item
        self.live = Live(dir=str(directory), save_dvc_exp=False, dvcyaml=None, report=None, monitor_system=False)
        self.logged = 0

    def log(self, history: list[dict[str, float]]) -> None:
        """Log the epochs of `history` not logged yet (on resume: the saved ones first)."""
        for step in range(self.logged, len(history)):
            self.live.step = step
            for key, name in CURVES.items():
                self.live.log_metric(name, float(history[step][key]))
        self.logged = len(history)
        atomic.write_json(paths.RUNNING_METRICS, {"item": self.item, "step": self.logged - 1,
                                                  **{k: float(history[-1][k]) for k in CURVES}})

    def end(self, summary: dict[str, float]) -> None:
        """The item's final scalars as live.summary (metrics.json), then dvclive's end."""
        self.live.summary = dict(summary)
        self.live.end()
        atomic.write_json(paths.RUNNING_METRICS, {})


def curve_file(directory: Path, name: str) -> Path:
    """dvclive's history file of curve `name` (e.g. val/loss) in an item's directory."""
    return Path(directory) / METRICS_SUBDIR / f"{name}.tsv"


def read_curves(directory: Path, item: str) -> pd.DataFrame:
    """The curves of `item` (e.g. train@resnet-0) from dvclive's files in its directory:
    metric (the curve's name), step, value."""
    root = Path(directory) / METRICS_SUBDIR
    files = sorted(root.rglob("*.tsv"))
    if not files:
        raise GrocerError(f"{directory}: no training curves for {item} (has it run?)")
    frames = []
    for path in files:
        table = pd.read_csv(path, sep="\t")
        values = [c for c in table.columns if c not in ("step", "timestamp")]
        if "step" not in table.columns or len(values) != 1:
            raise GrocerError(f"{path}: expected the columns step,<metric>; has {list(table.columns)}")
        frames.append(pd.DataFrame({"metric": path.relative_to(root).with_suffix("").as_posix(),
                                    "step": table["step"], "value": table[values[0]]}))
    return pd.concat(frames, ignore_index=True)
