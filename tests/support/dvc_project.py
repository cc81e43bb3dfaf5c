"""Clones of the tiny project (tests/support/pipeline_project.py), driven by real `git` and `dvc`.

`Workspace` runs commands in one checkout: the project venv's `dvc` and `grocer` first on
PATH and the checkout's own `src/` on PYTHONPATH, so a clone runs its own code, as a
teammate's would. The environment carries no AWS credentials and reads no AWS config
file: each test says where credentials come from.

DVC tells what it did on stdout; `Run` reads it back:
    Running stage 'x':                                          x was computed
    Stage 'x' is cached - skipping run, checking out outputs    x was restored from the run-cache
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from support.pipeline_project import BIN, environment

COMMAND_TIMEOUT = 900

RAN = re.compile(r"^Running stage '([^']+)':", re.MULTILINE)
RESTORED = re.compile(r"^Stage '([^']+)' is cached - skipping run, checking out outputs", re.MULTILINE)


@dataclass
class Run:
    """One finished command: its output (stdout and stderr, interleaved) and exit code."""

    command: list[str]
    returncode: int
    output: str

    @property
    def ran(self) -> set[str]:
        return set(RAN.findall(self.output))

    @property
    def restored(self) -> set[str]:
        return set(RESTORED.findall(self.output))

    def __str__(self) -> str:
        return f"$ {' '.join(self.command)}  (exit {self.returncode})\n{self.output}"


def base_env(home: Path) -> dict[str, str]:
    """pipeline_project's environment less every AWS_/DVC_ variable.

    The AWS config and credentials files point into `home` (absent) and the EC2 metadata
    lookup is off, so a missing credential fails at once instead of being found elsewhere.
    """
    env = {key: value for key, value in environment().items() if not key.startswith(("AWS_", "DVC_"))}
    env["AWS_CONFIG_FILE"] = str(home / "aws-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(home / "aws-credentials")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["DVC_NO_ANALYTICS"] = "1"
    return env


@dataclass
class Workspace:
    """A git checkout of the project; `dvc(...)` and `git(...)` run in it."""

    path: Path
    env: dict[str, str] = field(repr=False)

    def run(self, *command: str, check: bool = True, extra_env: dict[str, str] | None = None) -> Run:
        env = {**self.env, "PYTHONPATH": str(self.path / "src"), **(extra_env or {})}
        result = subprocess.run(list(command), cwd=self.path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, timeout=COMMAND_TIMEOUT)
        run = Run(list(command), result.returncode, result.stdout)
        if check and run.returncode != 0:
            raise AssertionError(f"command failed in {self.path}:\n{run}")
        return run

    def dvc(self, *args: str, check: bool = True, extra_env: dict[str, str] | None = None) -> Run:
        return self.run(str(BIN / "dvc"), *args, check=check, extra_env=extra_env)

    def git(self, *args: str) -> str:
        return self.run("git", *args).output

    def lock_outs(self) -> list[str]:
        """Every output path in dvc.lock."""
        lock = yaml.safe_load((self.path / "dvc.lock").read_text())
        return sorted({out["path"] for stage in lock["stages"].values() for out in stage.get("outs", [])})

    def cached_outs(self) -> list[str]:
        """The outputs DVC keeps out of git (it lists them in .gitignore files): what `dvc pull` restores."""
        outs = self.lock_outs()
        return sorted(self.run("git", "check-ignore", *outs, check=False).output.split())

    def snapshot(self, rels: list[str]) -> dict[str, str]:
        """sha256 of every file under `rels` (files or directories), keyed by relative path."""
        digests = {}
        for rel in rels:
            target = self.path / rel
            files = [target] if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file())
            for file in files:
                digests[str(file.relative_to(self.path))] = hashlib.sha256(file.read_bytes()).hexdigest()
        return digests

    def cache_files(self) -> set[str]:
        cache = self.path / ".dvc" / "cache"
        return {str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file()}


def init_origin(path: Path) -> Path:
    """A bare repo standing in for the team's git server."""
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return path


def clone(origin: Path, path: Path, env: dict[str, str]) -> Workspace:
    subprocess.run(["git", "clone", "-q", str(origin), str(path)], check=True, env=env)
    return Workspace(path, env)
