"""A throwaway copy of this repository, configured for a tiny, fast pipeline run.

Used by the end-to-end and sharing tests: they run the real `dvc` commands on the real
dvc.yaml and stages, only on small data (the sample stage with small sizes) and tiny
timm test architectures, so the whole pipeline runs in about a minute on 2 cores.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO, deep_update, default_params_dict

BIN = Path(sys.executable).parent  # the venv running pytest holds dvc and grocer

TINY = {
    "sample": {"n_train": 240, "n_test": 60, "img_size": 64},
    "folds": {"n_splits": 2},
    "cache": {"img_size": 32},
    "run": {"models": ["tiny"], "folds": [0, 1]},
    "zoo": {
        "tiny": {"arch": "test_convnext", "pretrained": False, "pretrained_file": None, "channels_last": False,
                 "drop_rate": 0.0, "drop_path_rate": 0.0},
    },
    "train": {"img_size": 32, "epochs": 2, "batch_size": 32, "swa_start": 1, "warmup_epochs": 0},
    "pairs": {"list": ["mandarin-orange"], "model": "tiny", "epochs": 1},
    "audit": {"n_boot": 50, "n_repeats": 3},
}


def tiny_params(overrides: dict | None = None) -> dict:
    raw = default_params_dict()
    raw["zoo"] = {}  # the tiny zoo replaces the default models, not merges into them
    return deep_update(deep_update(raw, TINY), overrides or {})


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.splitlines()
    return [f for f in listed if (REPO / f).is_file()]


def dvc_outputs() -> set[str]:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    outs = set()
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            outs.update(e if isinstance(e, str) else next(iter(e)) for e in stage.get(kind, []))
    return outs


def copy_repo(target: Path, overrides: dict | None = None) -> Path:
    """A fresh git repository at `target` with this repo's source and tiny params, committed."""
    generated = {o.split("$")[0].rstrip("/") for o in dvc_outputs()}
    for name in tracked_files():
        if name == "dvc.lock" or any(name == g or name.startswith(g + "/") for g in generated if g):
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target / name)
    (target / "params.yaml").write_text(yaml.safe_dump(tiny_params(overrides), sort_keys=False))
    git(target, "init", "-q", "-b", "main")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "tiny grocer project")
    return target


def environment() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    env["CI"] = "true"
    return env


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=environment()).stdout


def dvc(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BIN / "dvc"), *args], cwd=cwd, capture_output=True, text=True, env=environment())
    if check and result.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def ran_stages(output: str) -> set[str]:
    """Stages whose command DVC actually ran, from its own output ("Running stage 'x':")."""
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}
