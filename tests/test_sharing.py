"""Sharing through an S3 remote: real git, real DVC (dvc-s3), a real S3 server on 127.0.0.1.

The module fixture `team` plays the README's "Team" recipe once, on the tiny project of
tests/support/pipeline_project.py (one tiny model, two folds) fed by a tiny dataset in data/raw:

    lead  `dvc add data/raw`, `dvc remote add -d storage s3://...`, `endpointurl`,
          commit, `git push`, `dvc push`. dvc.lock is never committed, so everything
          below comes through DVC's run-cache, as split work does.
    A, B  clone, set credentials with `dvc remote modify --local`; each trains half of
          the items with `dvc repro --pull --glob <items>`, then `dvc push --run-cache`.
    C     clones and runs `dvc repro --pull`: restores what A and B computed, trains
          nothing, computes the rest (infer, blend ... submit); `dvc push --run-cache`.
    D     clones and runs `dvc repro --pull`: computes nothing, gets C's files.

Each teammate's machine runs differently (RUNTIME: threads, DataLoader workers and the
inference batch size in grocer.local.yaml or GROCER_* variables), as a Mac and a GPU box
would; none of that is a stage param, so the run-cache is shared all the same.

The tests assert on what DVC itself printed (`Running stage` vs `is cached - skipping
run`) and on file checksums, then go on with: wipe + pull (C), an experiment shared
through the git remote (D -> F), broken remotes (D).
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

from support.dataset import write_dataset
from support.dvc_project import Run, Workspace, base_env, clone, init_origin
from support.pipeline_project import copy_repo
from support.s3server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server, free_port

pytestmark = pytest.mark.slow

# pipeline_project's tiny params, reading the dataset added with `dvc add data/raw`
# (write_dataset's classes are class0..class2).
OVERRIDES = {"data": {"dir": "data/raw"}, "pairs": {"list": ["class0-class1"]}}
HALF_A = ["--glob", "train@*-0"]  # teammate A trains fold 0 of every model
HALF_B = ["--glob", "train@*-1", "pair@*"]  # teammate B fold 1 and the pair experts
TRAINING = ("train@", "pair@")  # the stages that train a model: C and D must run none
PAIR_INPUTS = {"infer@tiny", "blend", "choose-pairs"}  # upstream of every pair item (data/predictions/chosen_pairs.json)
EXPERIMENT = ("audit.seed=1", "audit")  # an `exp run -S` assignment and the one stage it re-runs
# each teammate's machine-local settings (grocer.runtime): (grocer.local.yaml, environment)
RUNTIME = {
    "A": ("device: cpu\nthreads: 1\nnum_workers: 0\neval_batch_size: 128\n", {}),
    "B": ("threads: 2\nnum_workers: 1\n", {"GROCER_EVAL_BATCH_SIZE": "16"}),
    "C": ("device: cpu\nthreads: 2\nnum_workers: 2\neval_batch_size: 5\n", {}),
    "D": ("", {"GROCER_THREADS": "1", "GROCER_NUM_WORKERS": "1", "GROCER_EVAL_BATCH_SIZE": "3"}),
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

    def repro(self, name: str, *targets: str) -> Run:
        """A new teammate `name`, with RUNTIME[name]'s machine-local settings, runs
        `dvc repro --pull <targets>`, then `dvc push --run-cache`."""
        workspace = self.join(name)
        local_file, local_env = RUNTIME[name]
        (workspace.path / "grocer.local.yaml").write_text(local_file)
        workspace.env = {**workspace.env, **local_env}
        start = time.monotonic()
        self.runs[name] = workspace.dvc("repro", "--pull", *targets)
        workspace.dvc("push", "--run-cache")
        self.seconds[name] = round(time.monotonic() - start, 1)
        return self.runs[name]


@pytest.fixture(scope="module")
def team(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Team:
    root = tmp_path_factory.mktemp("team")
    env = base_env(root)
    s3_server.create_bucket(BUCKET)
    origin = init_origin(root / "origin.git")

    lead = Workspace(copy_repo(root / "lead", OVERRIDES), env)
    write_dataset(lead.path / "data" / "raw")
    lead.dvc("remote", "add", "-d", "storage", REMOTE_URL)
    lead.dvc("remote", "modify", "storage", "endpointurl", s3_server.endpoint)
    set_credentials(lead)
    lead.dvc("add", "data/raw")
    lead.git("add", "-A")
    lead.git("commit", "-q", "-m", "raw data on the S3 remote")
    lead.git("remote", "add", "origin", str(origin))
    lead.git("push", "-q", "origin", "main")
    lead.dvc("push")

    team = Team(s3_server, root, origin, env, lead)
    team.repro("A", *HALF_A)
    team.run_cache_keys = s3_server.keys(BUCKET, f"{PREFIX}/runs/")
    team.repro("B", *HALF_B)
    team.repro("C")
    team.repro("D")
    print("seconds per teammate (repro + push):", team.seconds)
    return team


def test_remote_config_is_shared_and_credentials_are_not(team):
    committed = team.lead.git("show", "HEAD:.dvc/config")
    assert REMOTE_URL in committed and team.server.endpoint in committed
    assert SECRET_ACCESS_KEY not in committed
    clone_a = team.clones["A"]
    assert SECRET_ACCESS_KEY in (clone_a.path / ".dvc" / "config.local").read_text()
    assert clone_a.git("status", "--porcelain", "--ignored", ".dvc/config.local").startswith("!!")
    assert team.run_cache_keys, f"`dvc push --run-cache` stored no run-cache under {REMOTE_URL}/runs/"


def test_machine_local_settings_stay_out_of_git_and_dvc(team):
    c = team.clones["C"]
    assert c.git("status", "--porcelain", "--ignored", "grocer.local.yaml").startswith("!!")
    lock = (c.path / "dvc.lock").read_text()
    assert "grocer.local.yaml" not in lock and "num_workers" not in lock and "threads" not in lock


def test_split_training_trains_each_item_once(team):
    a, b, c = team.runs["A"], team.runs["B"], team.runs["C"]
    assert any(targeted(stage, HALF_A) for stage in a.ran), str(a)
    # B computes its own items and what the pair items read (choose-pairs' pairs, from the blend of
    # every train item): everything else comes from A's run-cache, A's train items included
    assert b.ran and all(targeted(stage, HALF_B) or stage in PAIR_INPUTS for stage in b.ran), str(b)
    assert b.restored == a.ran, str(b)
    # C finishes: what A and B computed is restored, nothing recomputed, nothing trained
    assert a.ran | b.ran <= c.restored, str(c)
    assert not [stage for stage in c.ran if stage.startswith(TRAINING)], str(c)
    assert "submit" in c.ran, str(c)


def test_fresh_clone_repro_pull_computes_nothing(team):
    c, d = team.clones["C"], team.clones["D"]
    run = team.runs["D"]
    assert run.ran == set(), str(run)
    assert run.restored == team.runs["C"].ran | team.runs["C"].restored, str(run)
    assert yaml.safe_load((d.path / "dvc.lock").read_text()) == yaml.safe_load((c.path / "dvc.lock").read_text())
    outs = d.lock_outs()
    assert "data/submission/submission.csv" in outs
    assert d.snapshot(outs) == c.snapshot(outs)


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def test_push_wipe_pull_gives_the_same_files(team):
    c = team.clones["C"]
    watched = ["data/raw", *c.lock_outs()]
    before = c.snapshot(watched)
    wiped = [*c.cached_outs(), "data/raw"]
    assert "data/submission/submission.csv" in wiped and "models" in {Path(p).parts[0] for p in wiped}
    wiped_files = set(c.snapshot(wiped))
    c.dvc("push")
    for rel in [".dvc/cache", *wiped]:
        remove(c.path / rel)
    assert not set(c.snapshot(watched)) & wiped_files
    c.dvc("pull")
    assert c.snapshot(watched) == before
    assert "Data and pipelines are up to date" in c.dvc("status").output


def test_experiment_travels_through_the_git_remote(team):
    d = team.clones["D"]
    assignment, stage = EXPERIMENT
    run = d.dvc("exp", "run", "-n", "shared-exp", "-S", assignment)
    assert run.ran == {stage}, str(run)  # only what depends on the param re-runs
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
    # name: (url, endpoint: "live" server or "down" (a port nobody listens on), credentials set?, message)
    "down": (REMOTE_URL, "down", True, "Could not connect to the endpoint URL"),
    "no_bucket": ("s3://grocer-no-such-bucket/dvcstore", "live", True, "bucket does not exist"),
    "no_credentials": (REMOTE_URL, "live", False, "Unable to locate credentials"),
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
    quick = {"AWS_MAX_ATTEMPTS": "1"}  # no retry backoff: the test waits 2 s, not 12
    watched = ["data/raw", *d.lock_outs()]
    before, cache_before = d.snapshot(watched), d.cache_files()

    push = d.dvc("push", "-r", kind, check=False, extra_env=quick)
    assert push.returncode != 0 and "ERROR" in push.output and message in push.output, str(push)
    assert d.snapshot(watched) == before and d.cache_files() == cache_before

    # a file missing locally makes `dvc pull` go to the remote
    lost = sorted(d.snapshot(d.cached_outs()))[0]
    digest = hashlib.md5((d.path / lost).read_bytes()).hexdigest()
    lost_object = f"files/md5/{digest[:2]}/{digest[2:]}"
    (d.path / lost).unlink()
    (d.path / ".dvc" / "cache" / lost_object).unlink()
    pull = d.dvc("pull", "-r", kind, check=False, extra_env=quick)
    assert pull.returncode != 0 and "ERROR" in pull.output and message in pull.output, str(pull)
    assert d.snapshot(watched) == {k: v for k, v in before.items() if k != lost}
    assert d.cache_files() == cache_before - {lost_object}

    d.dvc("pull")  # the good remote still restores it
    assert d.snapshot(watched) == before
