"""The real `dvc repro` and `dvc exp run -S` on a tiny copy of this project."""

import json
import re
import subprocess
import time

import pandas as pd
import pytest

from support.dvc_project import Workspace
from support.pipeline_project import BIN, copy_repo, environment

pytestmark = pytest.mark.slow

DATA_STAGES = {"sample", "ingest", "clean"}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    workspace = Workspace(copy_repo(tmp_path_factory.mktemp("e2e")), environment())
    return workspace, workspace.dvc("repro").ran


def test_repro_runs_every_stage_and_writes_the_submission(repo):
    workspace, ran = repo
    root = workspace.path
    assert {"sample", "ingest", "clean", "review", "folds", "cache", "train@tiny-0", "train@tiny-1",
            "infer@tiny", "blend", "stack", "override", "submit", "audit", "report"} <= ran
    submission = pd.read_csv(root / "data/submission/submission.csv")
    sample = pd.read_csv(root / "data/sample/sample_submission.csv")
    assert list(submission.columns) == list(sample.columns)
    assert submission["image_id"].tolist() == sample["image_id"].tolist()
    classes = json.loads((root / "data/interim/classes.json").read_text())["classes"]
    assert submission["label"].isin(classes).all()
    final = json.loads((root / "metrics/final.json").read_text())
    assert final  # the evolution table exists


def test_second_repro_is_a_no_op(repo):
    workspace, _ = repo
    again = workspace.dvc("repro")
    assert again.ran == set()
    assert "up to date" in again.output


def test_param_change_reruns_only_dependent_stages(repo):
    workspace, _ = repo
    root = workspace.path
    variant = workspace.dvc("exp", "run", "-S", "clean.variant=aggressive")
    ran = variant.ran
    assert "review" in ran and not ran & DATA_STAGES

    stack = workspace.dvc("exp", "run", "-S", "stack.method=hgb")
    ran = stack.ran
    assert "stack" in ran and "submit" in ran
    assert not any(s.startswith(("train@", "infer@", "pair@")) for s in ran) and "blend" not in ran

    chosen = workspace.dvc("exp", "run", "-S", "submit.source=blend")
    assert chosen.ran == {"submit", "audit", "report"}
    params = (root / "params.yaml").read_text()
    bad = workspace.dvc("exp", "run", "-S", "submit.source=best", check=False)
    assert bad.returncode != 0 and "submit.source: 'best' is not allowed" in bad.output
    (root / "params.yaml").write_text(params)
    based = workspace.dvc("exp", "run", "-S", "override.base=blend").ran
    assert "override" in based and not based & {"blend", "stack"} and not any("@" in s for s in based)


def test_augmentation_ab_shows_in_metrics_diff(repo):
    workspace, _ = repo
    workspace.dvc("exp", "run", "-n", "color-off", "-S", "aug.profile=no_color")
    run = workspace.dvc("exp", "run", "-n", "color-on", "-S", "aug.profile=full")
    ran = run.ran
    assert "train@tiny-0" in ran and not ran & (DATA_STAGES | {"review", "folds", "cache"})
    diff = workspace.dvc("metrics", "diff", "color-off", "color-on", "--json").output
    changed = json.loads(diff)
    assert any(path.startswith("metrics/train/") for path in changed)
    assert not any(path in changed for path in ("metrics/ingest.json", "metrics/clean.json"))


def test_queued_experiments_run_in_parallel_workers(repo):
    """The README's A/B recipe: `dvc exp run --queue` twice, then `dvc queue start -j 2`."""
    workspace, _ = repo
    root = workspace.path
    # alpha values no other test sets, so both differ from the workspace whatever ran before
    names = {"q-ridge-half": "0.5", "q-ridge-double": "2.0"}
    for name, alpha in names.items():
        workspace.dvc("exp", "run", "--queue", "-n", name, "-S", "stack.method=classwise_ridge",
            "-S", f"stack.ridge_alpha={alpha}")
    # `queue start` leaves a daemon holding its stdout/stderr until the workers stop: capturing
    # them would wait for that daemon, so the output goes nowhere and the call is bounded
    subprocess.run([str(BIN / "dvc"), "queue", "start", "-j", "2"], cwd=root, env=environment(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    try:
        deadline = time.monotonic() + 900
        while re.search(r"\b(Queued|Running)\b", status := workspace.dvc("queue", "status").output):
            assert time.monotonic() < deadline, status
            time.sleep(2)
    finally:
        workspace.dvc("queue", "stop", "--kill", check=False)
    assert len(re.findall(r"q-ridge-(half|double)\s.*\bSuccess\b", status)) == 2, status
    for name in names:
        ran = workspace.dvc("queue", "logs", name).ran
        assert "stack" in ran and not any(s.startswith(("train@", "infer@", "pair@")) for s in ran), ran
    changed = json.loads(workspace.dvc("metrics", "diff", *names, "--json").output)
    assert "metrics/stack.json" in changed and "metrics/train/tiny-f0.json" not in changed


def test_another_experiments_zoo_is_a_blend_source(repo):
    """The README's recipe: the default as one experiment, its zoo imported the DVC way
    (`dvc import . data/predictions/models --rev ...`) into a second experiment
    (`clean.variant=aggressive`) that blends both zoos."""
    workspace, _ = repo
    root = workspace.path
    subprocess.run(["git", "checkout", "--", "params.yaml"], cwd=root, check=True)
    workspace.dvc("exp", "run", "-n", "zoo-strict")
    workspace.dvc("exp", "branch", "zoo-strict", "zoo-strict")
    workspace.dvc("import", ".", "data/predictions/models", "--rev", "zoo-strict", "-o", "data/sources/strict")
    both = workspace.dvc("exp", "run", "-S", "clean.variant=aggressive", "-S", "blend.sources=[strict]")
    assert "blend" in both.ran
    metrics = json.loads((root / "metrics/blend.json").read_text())
    assert metrics["sources"]["strict"]["members"] == ["strict:tiny"]
    assert set(json.loads((root / "data/predictions/blend/weights.json").read_text())["weights"]["0"]) == {
        "tiny", "strict:tiny"}
    # the strict zoo trained on rows the aggressive variant removed: flagged
    assert metrics["sources"]["strict"]["optimistic"] == 1 == metrics["optimistic"]
    assert metrics["sources"]["strict"]["n_extra_oof_rows"] > 0
