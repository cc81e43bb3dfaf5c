"""The real `dvc repro` and `dvc exp run -S` on a tiny copy of this project."""

import json
import re
import subprocess
import time

import pandas as pd
import pytest
import yaml

from support.dvc_project import Workspace
from support.params import REPO
from support.pipeline_project import BIN, copy_repo, environment

pytestmark = pytest.mark.slow

DATA_STAGES = {"sample", "ingest", "clean"}
HEADLINE = {"metrics/final.json", "metrics/models.json", "metrics/risk.json"}  # dvc.yaml's `metrics:`


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
    changed = json.loads(workspace.dvc("metrics", "diff", "color-off", "color-on", "--json").output)
    assert "metrics/models.json" in changed and set(changed) <= HEADLINE
    # a per-item file is a cached out, not a declared metric: named, it diffs all the same
    item = json.loads(workspace.dvc("metrics", "diff", "color-off", "color-on", "--json",
                                    "--targets", "plots/train/tiny-f0/metrics.json").output)
    assert "acc" in item["plots/train/tiny-f0/metrics.json"]


def metric_columns(exp_show: list) -> dict[str, list[str]]:
    """`dvc exp show --json`'s metric columns of the workspace row, per file."""
    def leaves(tree: dict, prefix: str = "") -> list[str]:
        return [name for key, value in tree.items()
                for name in (leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else [prefix + key])]
    workspace = next(row for row in exp_show if row["rev"] == "workspace")
    columns = {path: leaves(entry["data"]) for path, entry in workspace["data"]["metrics"].items()}
    return {path: names for path, names in columns.items() if names}  # metrics/running.json: {} at rest


def test_exp_show_prints_only_the_headline_metrics(repo):
    workspace, _ = repo
    columns = metric_columns(json.loads(workspace.dvc("exp", "show", "--json").output))
    assert set(columns) == HEADLINE, columns
    per_model = {name.split(".", 1)[1] for name in columns["metrics/models.json"]}
    assert per_model == {"oof_acc", "fold_acc_min", "weight"}
    # the default run has more models than this one (1): each adds its per-model columns
    n_models = len(yaml.safe_load((REPO / "params.yaml").read_text())["run"]["models"])
    default_total = sum(map(len, columns.values())) + (n_models - 1) * len(per_model)
    assert default_total <= 40, columns


def test_pictures_are_image_plots(repo):
    workspace, _ = repo
    shown = json.loads(workspace.dvc("plots", "show", "--json").output)["data"]
    for image in ("plots/confusion.png", "plots/evolution.png"):
        assert [entry["type"] for entry in shown[image]] == ["image"], shown.get(image)


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
    changed = json.loads(workspace.dvc("metrics", "diff", *names, "--json", "--targets", "metrics/stack.json",
                                       "plots/train/tiny-f0/metrics.json").output)
    assert "metrics/stack.json" in changed and "plots/train/tiny-f0/metrics.json" not in changed


def test_exp_show_follows_a_running_item(repo):
    """While `dvc exp run` trains an item, `dvc exp show` shows its step advance (metrics/running.json).
    60 tiny epochs: a `dvc exp show` takes seconds, so the item must run for several of them."""
    workspace, _ = repo
    root = workspace.path
    run = subprocess.Popen([str(BIN / "dvc"), "exp", "run", "train@tiny-0", "-S", "train.epochs=60"], cwd=root,
                           env={**environment(), "PYTHONPATH": str(root / "src")}, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        deadline = time.monotonic() + 600
        while run.poll() is None and time.monotonic() < deadline:
            shown = json.loads(workspace.dvc("exp", "show", "--json").output)
            row = next(row for row in shown if row["rev"] == "workspace")
            # a poll can catch the workspace row mid-write, without data: the next one reads it
            running = (((row.get("data") or {}).get("metrics") or {}).get("metrics/running.json") or {}).get("data") or {}
            if running and (not seen or running["step"] != seen[-1]):
                assert running["item"] == "train@tiny-0"
                seen.append(running["step"])
    finally:
        if run.poll() is None:
            run.kill()
        output = run.communicate()[0]
    assert run.returncode == 0, output
    assert len(seen) >= 2 and seen == sorted(seen), seen  # the step advanced while it ran
    assert json.loads((root / "metrics/running.json").read_text()) == {}  # and is at rest once it ended
    # dvclive's directory is a declared out: under `dvc exp run` it git-added none of its files
    tracked = workspace.git("ls-files", "--cached", "plots/train").split()
    assert [path for path in tracked if not path.endswith(".gitignore")] == [], tracked


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
