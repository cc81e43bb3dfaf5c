"""`train.distributed: ddp`: the DVC-facing `grocer train` re-runs itself under torchrun with 2 CPU
processes (gloo); rank 0 writes a valid item, and the run is the one-process run up to float rounding."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from grocer import paths
from grocer.errors import GrocerError
from grocer.predictions import read_predictions
from grocer.runtime import Runtime
from grocer.training import checkpoint, distributed, resume
from grocer.training.live import curve_file
from grocer.training.models import create_model
from support.training_project import kill_after_an_epoch, write_training_inputs
from support.params import tiny_params

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

# No randomness that differs between one and two processes: no dropout or drop-path, no mixing,
# a LayerNorm model (BatchNorm statistics are per process), an unweighted loss (a weighted mean
# over half batches does not average to the weighted mean over the whole batch).
DETERMINISTIC = {
    "train": {"epochs": 3, "batch_size": 8, "swa_start": 1, "mix_prob": 0.0, "class_weights": False},
    "zoo": {"vit": {"arch": "test_vit", "drop_rate": 0.0, "drop_path_rate": 0.0}},
    "run": {"models": ["vit"], "folds": [0, 1]},
}


def train_item(root, params, check=True) -> subprocess.CompletedProcess:
    """`grocer train --model vit --fold 0` in `root`, as DVC runs it."""
    (root / "params.yaml").write_text(yaml.safe_dump(params.model_dump(), sort_keys=False))
    env = {**os.environ, "CI": "1"}
    return subprocess.run([sys.executable, "-m", "grocer.cli", "train", "--model", "vit", "--fold", "0"], cwd=root,
                          env=env, capture_output=True, text=True, check=check, timeout=600)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same item trained by one process and by two ddp processes."""
    roots = {}
    for name, extra in (("single", {}), ("ddp", {"distributed": "ddp", "nproc": 2})):
        root = tmp_path_factory.mktemp(name)
        write_training_inputs(root, per_class=[16, 10, 6])  # fold 0 trains on 16 rows: two whole batches of 8
        params = tiny_params(**{**DETERMINISTIC, "train": {**DETERMINISTIC["train"], **extra}})
        roots[name] = (root, train_item(root, params))
    return roots


def test_ddp_item_is_valid(runs):
    root, process = runs["ddp"]
    item = root / paths.train_item_dir("vit", 0)
    assert sorted(p.name for p in item.iterdir()) == ["best.pt", "config.json", "final.json", "oof.parquet", "swa.pt"]
    config = json.loads((item / "config.json").read_text())
    assert config["train"]["distributed"] == "ddp" and config["train"]["nproc"] == 2
    final = json.loads((item / "final.json").read_text())
    model = create_model(tiny_params(**DETERMINISTIC).zoo["vit"], 3, 32)
    model.load_state_dict(checkpoint.load_weights(item / final["file"]))  # a whole, loadable checkpoint

    folds = pd.read_csv(root / paths.FOLDS)
    oof = read_predictions(item / "oof.parquet", config["classes"])
    assert oof.ids == folds.loc[folds["fold"] == 0, "image_id"].tolist()
    metrics = json.loads((root / paths.train_metrics("vit", 0)).read_text())
    assert metrics["n_train"] == 16 and metrics["n_val"] == 16 and metrics["epochs"] == 3
    assert curve_file(root / paths.train_curves_dir("vit", 0), "val/loss").is_file()
    assert process.stderr.count("train vit-f0: val_loss") == 1  # rank 0 alone reports (and writes)
    assert not (root / paths.train_scratch("vit", 0)).exists()


def test_ddp_run_is_the_one_process_run(runs):
    """Global batch semantics: the same images in the same optimizer steps, gradients averaged."""
    (single, _), (ddp, _) = runs["single"], runs["ddp"]
    for weights in ("best.pt", "swa.pt"):
        a = checkpoint.load_weights(single / paths.train_item_dir("vit", 0) / weights)
        b = checkpoint.load_weights(ddp / paths.train_item_dir("vit", 0) / weights)
        assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4, weights
    one = json.loads((single / paths.train_metrics("vit", 0)).read_text())
    two = json.loads((ddp / paths.train_metrics("vit", 0)).read_text())
    assert two["val_loss"] == pytest.approx(one["val_loss"], rel=1e-4)
    history_one = pd.read_csv(curve_file(single / paths.train_curves_dir("vit", 0), "train/loss"), sep="\t")
    history_two = pd.read_csv(curve_file(ddp / paths.train_curves_dir("vit", 0), "train/loss"), sep="\t")
    assert np.allclose(history_one["loss"], history_two["loss"], rtol=1e-4)  # losses summed over both processes


def processes_in(directory) -> list[int]:
    """Pids of the live processes whose working directory is `directory` (Linux /proc)."""
    pids = []
    for entry in os.scandir("/proc"):
        try:
            if entry.name.isdigit() and os.readlink(f"/proc/{entry.name}/cwd") == str(directory):
                pids.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            pass
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the workers' tie to their parent is Linux's prctl")
def test_killed_ddp_run_leaves_no_worker_and_resumes_to_the_uninterrupted_result(tmp_path):
    """SIGKILL only the process DVC started, after an epoch: torchrun's agent and both workers
    die with it (they run in sessions of their own), nothing is written; the rerun resumes
    from rank 0's state and ends like an uninterrupted run."""
    params = tiny_params(**{**DETERMINISTIC, "train": {**DETERMINISTIC["train"], "epochs": 10,
                                                       "distributed": "ddp", "nproc": 2}})
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    for root in (killed, clean):
        write_training_inputs(root, per_class=[16, 10, 6])
        (root / "params.yaml").write_text(yaml.safe_dump(params.model_dump(), sort_keys=False))
    state = kill_after_an_epoch(killed, "vit", {**os.environ, "CI": "1"})
    deadline = time.monotonic() + 60
    while (survivors := processes_in(killed)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not survivors
    assert not (killed / paths.train_item_dir("vit", 0)).exists()
    assert not (killed / paths.train_metrics("vit", 0)).exists()

    # mark the killed run's history: a resumed run carries it into its curves, a restarted one would not
    saved = torch.load(state, weights_only=True)
    assert 1 <= saved["epoch"] < 10
    saved["history"][0]["lr"] = -1.0
    resume.save_state(state, saved)
    train_item(killed, params)
    train_item(clean, params)

    curves = pd.read_csv(curve_file(killed / paths.train_curves_dir("vit", 0), "lr"), sep="\t")
    assert curves["lr"].iloc[0] == -1.0 and len(curves) == 10
    for weights in ("best.pt", "swa.pt"):
        a = checkpoint.load_weights(killed / paths.train_item_dir("vit", 0) / weights)
        b = checkpoint.load_weights(clean / paths.train_item_dir("vit", 0) / weights)
        assert all(torch.equal(a[k], b[k]) for k in a), weights


def test_ddp_pair_expert(tmp_path):
    """Pair experts train with the same recipe, so under ddp too (a BatchNorm model here)."""
    write_training_inputs(tmp_path, per_class=[16, 10, 6])
    params = tiny_params({"distributed": "ddp", "nproc": 2})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params.model_dump(), sort_keys=False))
    process = subprocess.run([sys.executable, "-m", "grocer.cli", "pair", "--pair", "class0-class1", "--fold", "0"],
                             cwd=tmp_path, env={**os.environ, "CI": "1"}, capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-2000:]
    item = tmp_path / paths.pair_item_dir("class0-class1", 0)
    assert json.loads((item / "config.json").read_text())["train"]["nproc"] == 2
    assert len(pd.read_parquet(item / "test.parquet")) == 6
    metrics = json.loads((tmp_path / paths.pair_metrics("class0-class1", 0)).read_text())
    assert 0 <= metrics["auc"] <= 1 and metrics["n"] == 13
    assert process.stderr.count("pair class0-class1-f0: auc") == 1


def test_failing_worker_fails_the_item(tmp_path):
    """A worker's error (here: a missing pretrained file, found only when the model is made) ends the item
    non-zero with the worker's message and one line from the launcher; nothing is written."""
    write_training_inputs(tmp_path, per_class=[16, 10, 6])
    params = tiny_params(**{**DETERMINISTIC, "train": {**DETERMINISTIC["train"], "distributed": "ddp", "nproc": 2},
                            "zoo": {"vit": {"pretrained": True, "pretrained_file": "missing.pth"}}})
    process = train_item(tmp_path, params, check=False)
    assert process.returncode == 1
    assert "missing.pth" in process.stderr
    assert process.stderr.strip().splitlines()[-1].startswith(
        "grocer train: error: train.distributed: ddp: torchrun with 2 processes exited with code 1")
    assert not (tmp_path / paths.train_item_dir("vit", 0)).exists()
    assert not (tmp_path / paths.train_metrics("vit", 0)).exists()


def test_torchrun_without_ddp_is_an_error(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(GrocerError, match="started by torchrun .2 processes. but train.distributed is 'none'"):
        distributed.join(tiny_params().train, Runtime())


def test_ddp_needs_cuda_or_cpu(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    with pytest.raises(GrocerError, match="ddp runs on CUDA or the CPU, not on mps"):
        distributed.launch(["train"], tiny_params({"distributed": "ddp", "nproc": 2}).train, Runtime(device="mps"))
