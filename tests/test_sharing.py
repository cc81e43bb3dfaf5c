"""Sharing through an S3 remote: real git, real DVC (dvc-s3), a real S3 server on 127.0.0.1.

The module fixture `team` plays the README's "Team" recipe once, on a tiny dataset:

    lead  makes the project: `dvc add data/raw`, `dvc remote add -d storage s3://...`,
          `endpointurl`, commit, `git push`, `dvc push`. dvc.lock is never committed, so
          everything below comes through DVC's run-cache, the way split work does.
    A, B  clone, set credentials with `dvc remote modify --local`, each runs half of the
          work with `dvc repro --pull <targets>` and `dvc push --run-cache`.
    C     clones and runs `dvc repro --pull`: restores what A and B computed, computes
          only what is left, and pushes (`dvc push --run-cache`).
    D     clones and runs `dvc repro --pull`: computes nothing, gets C's files.

The tests then assert on what DVC itself printed (`Running stage` vs `is cached -
skipping run`) and on file checksums, and go on with: wipe + pull (C), an experiment
shared through the git remote (D -> F), and broken remotes (D).
"""

from __future__ import annotations

import fnmatch
import hashlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from dvc_project import Run, Workspace, base_env, clone, init_origin, make_project
from s3server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server, free_port

# What the scenarios reproduce, on the pipeline as it stands. The data stages run; train,
# infer and pair are not in dvc.yaml yet, so blend and after cannot. When `dvc repro` runs
# the whole pipeline, switch to the values in the comments (the README's recipe):
FINISH: list[str] = ["folds", "cache"]  # -> [] (no target: the whole pipeline)
HALF_A: list[str] = ["folds"]  # -> ["--glob", "train@convnext-*"]
HALF_B: list[str] = ["cache"]  # -> ["--glob", "train@effnet-*", "pair@*"]
EXPERIMENT = ("cache.img_size=40", "cache")  # -> ("stack.method=hgb", "stack"): -S value, a stage it re-runs
TRAINING = ("train@", "pair@")  # the stages that train a model: C and D must run none

# A tiny run of the whole pipeline: 36 train images in 3 classes (conftest.write_dataset).
TINY_PARAMS = {
    "data": {"dir": "data/raw"},
    "sample": {"n_train": 200, "n_test": 50, "img_size": 64},  # the smallest the sample stage takes
    "folds": {"n_splits": 2},
    "cache": {"img_size": 32},
    "run": {"models": ["convnext", "effnet"], "folds": [0, 1]},
    "train": {"img_size": 32, "epochs": 1, "batch_size": 16, "warmup_epochs": 0, "mix_off_epochs": 0,
              "swa_start": None},
    "pairs": {"list": ["class0-class1"], "epochs": 1},
    "audit": {"n_boot": 10, "n_repeats": 2},
}

BUCKET = "grocer-team"
PREFIX = "dvcstore"
REMOTE_URL = f"s3://{BUCKET}/{PREFIX}"


def targeted(stage: str, targets: list[str]) -> bool:
    """Whether `dvc repro <targets>` names `stage` itself (not only as an upstream)."""
    names = [t for t in targets if not t.startswith("--")]
    if "--glob" in targets:
        return any(fnmatch.fnmatchcase(stage, name) for name in names)
    return stage in names


def set_credentials(workspace: Workspace, remote: str = "storage") -> None:
    """The README's way: in .dvc/config.local, which git ignores."""
    workspace.dvc("remote", "modify", "--local", remote, "access_key_id", ACCESS_KEY_ID)
    workspace.dvc("remote", "modify", "--local", remote, "secret_access_key", SECRET_ACCESS_KEY)


@dataclass
class Team:
    server: S3Server
    root: Path
    origin: Path
    env: dict[str, str]
    lead: Workspace
    runs: dict[str, Run] = field(default_factory=dict)
    clones: dict[str, Workspace] = field(default_factory=dict)
    run_cache_keys: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def join(self, name: str) -> Workspace:
        """A teammate: git clone of origin, credentials in .dvc/config.local."""
        workspace = clone(self.origin, self.root / name, self.env)
        set_credentials(workspace)
        self.clones[name] = workspace
        return workspace

    def timed(self, name: str, workspace: Workspace, *args: str) -> Run:
        start = time.monotonic()
        self.runs[name] = workspace.dvc(*args)
        self.seconds[name] = time.monotonic() - start
        return self.runs[name]


@pytest.fixture(scope="module")
def team(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Team:
    root = tmp_path_factory.mktemp("team")
    env = base_env(root)
    s3_server.create_bucket(BUCKET)
    origin = init_origin(root / "origin.git", env)

    lead = make_project(root / "lead", TINY_PARAMS, env)
    lead.dvc("remote", "add", "-d", "storage", REMOTE_URL)
    lead.dvc("remote", "modify", "storage", "endpointurl", s3_server.endpoint)
    set_credentials(lead)
    lead.dvc("add", "data/raw")
    lead.git("add", "-A")
    lead.git("commit", "-q", "-m", "tiny grocer project")
    lead.git("remote", "add", "origin", str(origin))
    lead.git("push", "-q", "origin", "main")
    lead.dvc("push")

    team = Team(s3_server, root, origin, env, lead)
    team.timed("A", team.join("A"), "repro", "--pull", *HALF_A)
    team.clones["A"].dvc("push", "--run-cache")
    team.run_cache_keys = s3_server.keys(BUCKET, f"{PREFIX}/runs/")
    team.timed("B", team.join("B"), "repro", "--pull", *HALF_B)
    team.clones["B"].dvc("push", "--run-cache")
    team.timed("C", team.join("C"), "repro", "--pull", *FINISH)
    team.clones["C"].dvc("push", "--run-cache")
    team.timed("D", team.join("D"), "repro", "--pull", *FINISH)
    print("seconds per repro:", {name: round(s, 1) for name, s in team.seconds.items()})
    return team


def test_remote_config_is_shared_and_credentials_are_not(team):
    committed = team.lead.git("show", "HEAD:.dvc/config")
    assert REMOTE_URL in committed and team.server.endpoint in committed
    assert SECRET_ACCESS_KEY not in committed
    clone_a = team.clones["A"]
    assert SECRET_ACCESS_KEY in (clone_a.path / ".dvc" / "config.local").read_text()
    assert clone_a.git("status", "--porcelain", "--ignored", ".dvc/config.local").startswith("!!")
    assert team.run_cache_keys, f"`dvc push --run-cache` stored no run-cache under s3://{BUCKET}/{PREFIX}/runs/"


def test_split_work_is_computed_once(team):
    a, b, c = team.runs["A"], team.runs["B"], team.runs["C"]
    assert a.ran and any(targeted(stage, HALF_A) for stage in a.ran), str(a)
    # B computes only its own targets: its upstream comes from A's run-cache
    assert b.ran and all(targeted(stage, HALF_B) for stage in b.ran), str(b)
    assert b.restored == {stage for stage in a.ran if not targeted(stage, HALF_A)}, str(b)
    # C finishes: everything A and B computed is restored, nothing recomputed, nothing trained
    assert not c.ran & (a.ran | b.ran), str(c)
    assert a.ran | b.ran <= c.restored, str(c)
    assert not [stage for stage in c.ran if stage.startswith(TRAINING)], str(c)


def test_fresh_clone_repro_pull_computes_nothing(team):
    c, d = team.clones["C"], team.clones["D"]
    run = team.runs["D"]
    assert run.ran == set(), str(run)
    assert run.restored == team.runs["C"].ran | team.runs["C"].restored, str(run)
    assert yaml.safe_load((d.path / "dvc.lock").read_text()) == yaml.safe_load((c.path / "dvc.lock").read_text())
    outs = d.lock_outs()
    assert d.snapshot(outs) == c.snapshot(outs)


def test_push_wipe_pull_gives_the_same_files(team):
    c = team.clones["C"]
    watched = ["data/raw", *c.lock_outs()]
    before = c.snapshot(watched)
    wiped = c.cached_outs() + ["data/raw"]
    assert "data/prepared/cache" in wiped  # a directory output, and a sanity check of the .gitignore listing
    wiped_files = set(c.snapshot(wiped))
    c.dvc("push", "--with-deps", *FINISH)
    for rel in [".dvc/cache", *wiped]:
        path = c.path / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert not set(c.snapshot(watched)) & wiped_files
    c.dvc("pull", "--with-deps", *FINISH)
    assert c.snapshot(watched) == before
    assert "Data and pipelines are up to date" in c.dvc("status", *FINISH).output


def test_experiment_travels_through_the_git_remote(team):
    d = team.clones["D"]
    assignment, stage = EXPERIMENT
    run = d.dvc("exp", "run", "-n", "shared-exp", "-S", assignment, *FINISH)
    assert stage in run.ran, str(run)
    assert "ingest" not in run.ran, run  # only what depends on the param re-runs
    expected = d.snapshot(d.lock_outs())
    d.dvc("exp", "push", "origin", "shared-exp")

    f = team.join("F")
    assert "shared-exp" in f.dvc("exp", "list", "origin").output
    f.dvc("exp", "pull", "origin", "shared-exp")
    f.dvc("exp", "apply", "shared-exp")
    key, value = assignment.split("=")
    section, name = key.split(".")
    assert str(yaml.safe_load((f.path / "params.yaml").read_text())[section][name]) == value
    assert f.snapshot(f.lock_outs()) == expected


BROKEN = {
    # name: (url, endpoint (None: the live server; "down": a port nobody listens on), credentials?, message)
    "down": (REMOTE_URL, "down", True, "Could not connect to the endpoint URL"),
    "no_bucket": ("s3://grocer-no-such-bucket/dvcstore", None, True, "bucket does not exist"),
    "no_credentials": (REMOTE_URL, None, False, "Unable to locate credentials"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_remote_fails_clearly_and_keeps_local_data(team, kind):
    url, endpoint, credentials, message = BROKEN[kind]
    d = team.clones["D"]
    d.dvc("remote", "add", "--local", "-f", kind, url)
    endpoint = f"http://127.0.0.1:{free_port()}" if endpoint == "down" else team.server.endpoint
    d.dvc("remote", "modify", "--local", kind, "endpointurl", endpoint)
    if credentials:
        set_credentials(d, kind)
    # one retry instead of botocore's default backoff: the test waits 2 s, not 12
    quick = {"AWS_MAX_ATTEMPTS": "1"}
    watched = ["data/raw", *d.lock_outs()]
    before, cache_before = d.snapshot(watched), d.cache_files()

    push = d.dvc("push", "-r", kind, "--with-deps", *FINISH, check=False, extra_env=quick)
    assert push.returncode != 0 and "ERROR" in push.output and message in push.output, str(push)
    assert d.snapshot(watched) == before and d.cache_files() == cache_before

    # a file missing locally makes `dvc pull` go to the remote
    lost = sorted(d.snapshot(d.cached_outs()))[0]
    digest = hashlib.md5((d.path / lost).read_bytes()).hexdigest()
    lost_object = f"files/md5/{digest[:2]}/{digest[2:]}"
    (d.path / lost).unlink()
    (d.path / ".dvc" / "cache" / lost_object).unlink()
    pull = d.dvc("pull", "-r", kind, "--with-deps", *FINISH, check=False, extra_env=quick)
    assert pull.returncode != 0 and "ERROR" in pull.output and message in pull.output, str(pull)
    assert d.snapshot(watched) == {k: v for k, v in before.items() if k != lost}
    assert d.cache_files() == cache_before - {lost_object}

    d.dvc("pull", "--with-deps", *FINISH)  # the good remote still restores it
    assert d.snapshot(watched) == before
