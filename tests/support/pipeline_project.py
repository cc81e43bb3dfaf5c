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

from support.params import PIPELINE, REPO, tiny_config

BIN = Path(sys.executable).parent  # the venv running pytest holds dvc and grocer

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
    (target / "params.yaml").write_text(yaml.safe_dump(tiny_config(PIPELINE, overrides or {}), sort_keys=False))
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
