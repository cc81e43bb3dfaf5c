"""The training loop on tiny runs: each option's effect, determinism, resume, SWA selection."""

import numpy as np
import pytest
import torch

from support.params import make_params
from grocer.training import loop, resume
from grocer.training.augment import EvalView, build_eval_transforms, build_train_transforms
from grocer.training.data import CachedImages, Preprocess, Split
from grocer.training.distributed import SINGLE, World
from grocer.training.loop import EpochItems, FitConfig, fit, train_loader
from grocer.training.models import create_model, eval_view, normalization
from grocer.training.objectives import MultiClass
from grocer.params import ZooModel
from grocer.runtime import Runtime
from support.training_project import class_images

pytestmark = pytest.mark.usefixtures("one_thread")

N_CLASSES = 3


@pytest.fixture(scope="module")
def splits():
    rng = np.random.default_rng(0)
    images = np.concatenate([class_images(rng, k, N_CLASSES, 12, 40) for k in range(N_CLASSES)])
    labels = np.repeat(np.arange(N_CLASSES), 12)
    val = np.arange(len(labels)) % 3 == 0
    rows = np.arange(len(labels))
    return Split(images, rows[~val], labels[~val]), Split(images, rows[val], labels[val])


def run_fit(tmp_path, splits, epochs=3, arch="test_efficientnet", name="run", drop_rate=0.0, num_workers=0, **train):
    """A tiny fit; the train params are the repo's with `train` overrides."""
    overrides = {"batch_size": 8, "epochs": epochs, "warmup_epochs": 1, "swa_start": None, "mix_prob": 0.3,
                 "mix_off_epochs": 1, **train}
    params = make_params({"train": overrides})
    entry = ZooModel(arch=arch, pretrained=False, pretrained_file=None, channels_last=False, drop_rate=drop_rate,
                     drop_path_rate=0.0)
    torch.manual_seed(0)
    model = create_model(entry, N_CLASSES, 32)
    mean, std = normalization(model)
    prep = Preprocess(mean, std, False, torch.device("cpu"))
    objective = MultiClass(N_CLASSES, None, params.train.label_smoothing)
    cfg = FitConfig.from_params(params.train, epochs, Runtime(num_workers=num_workers))
    train, val = splits
    view = eval_view(model)
    transforms = (build_train_transforms(params.aug, 32, view), build_eval_transforms(32, view))
    result = fit(model, objective, train, val, transforms, cfg, prep, tmp_path / name / "state.pt", "key", name)
    return result, model


def deterministic(history):
    return [{k: v for k, v in record.items() if k != "train_seconds"} for record in history]


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_params_same_run(tmp_path, splits):
    first, model_a = run_fit(tmp_path, splits, name="a")
    second, model_b = run_fit(tmp_path, splits, name="b")
    assert deterministic(first.history) == deterministic(second.history)
    assert same_weights(model_a.state_dict(), model_b.state_dict())
    assert np.array_equal(first.val_logits, second.val_logits)
    assert len(first.history) == 3 and first.history[-1]["val_acc"] > 0
    other, _ = run_fit(tmp_path, splits, name="c", seed=1)  # and the seed matters
    assert deterministic(other.history) != deterministic(first.history)


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, splits, monkeypatch):
    reference, reference_model = run_fit(tmp_path, splits, name="reference", swa_start=1, sam=True)
    real_save = resume.save_state
    saved_epochs = []

    def save_then_interrupt(path, state):
        real_save(path, state)
        saved_epochs.append(state["epoch"])
        if state["epoch"] == 2 and len(saved_epochs) == 2:
            raise KeyboardInterrupt  # Ctrl-C right after epoch 2's state is on disk

    monkeypatch.setattr(resume, "save_state", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_fit(tmp_path, splits, name="resumed", swa_start=1, sam=True)
    resumed, resumed_model = run_fit(tmp_path, splits, name="resumed", swa_start=1, sam=True)
    assert saved_epochs == [1, 2, 3]  # the second run trained only the last epoch
    assert deterministic(resumed.history) == deterministic(reference.history)
    assert same_weights(resumed_model.state_dict(), reference_model.state_dict())
    assert same_weights(resumed.swa_state, reference.swa_state)
    assert resumed.chosen == reference.chosen


def test_a_state_of_another_run_is_not_resumed(tmp_path, splits):
    state_file = tmp_path / "run" / "state.pt"
    run_fit(tmp_path, splits, epochs=2)
    assert resume.load_state(state_file, "key")["epoch"] == 2
    assert resume.load_state(state_file, "another key") is None


def test_mixing_stops_for_the_last_epochs(tmp_path, splits, monkeypatch):
    calls = []
    real_mix = loop.mix_batch
    monkeypatch.setattr(loop, "mix_batch", lambda *a: calls.append(1) or real_mix(*a))
    run_fit(tmp_path, splits, epochs=3, mix_off_epochs=1, name="a")
    steps_per_epoch = 24 // 8
    assert len(calls) == 2 * steps_per_epoch
    calls.clear()
    run_fit(tmp_path, splits, epochs=3, mix_off_epochs=0, name="b")
    assert len(calls) == 3 * steps_per_epoch
    calls.clear()
    run_fit(tmp_path, splits, epochs=3, mix_prob=0.0, name="c")
    assert calls == []


def test_sam_perturbs_every_step_and_changes_the_result(tmp_path, splits, monkeypatch):
    plain, plain_model = run_fit(tmp_path, splits, epochs=2, name="plain")
    calls = []
    real_perturb = loop.SAM.perturb
    monkeypatch.setattr(loop.SAM, "perturb", lambda self: calls.append(1) or real_perturb(self))
    _, sam_model = run_fit(tmp_path, splits, epochs=2, sam=True, sam_rho=0.5, name="sam")
    assert len(calls) == 2 * (24 // 8)
    assert not same_weights(plain_model.state_dict(), sam_model.state_dict())


def test_gradients_are_clipped_to_grad_clip(tmp_path, splits, monkeypatch):
    norms = []
    real_clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_",
                        lambda params, max_norm: norms.append(max_norm) or real_clip(params, max_norm))
    _, clipped = run_fit(tmp_path, splits, epochs=1, warmup_epochs=0, grad_clip=0.01, name="a")
    assert norms == [0.01] * (24 // 8)
    norms.clear()
    _, free = run_fit(tmp_path, splits, epochs=1, warmup_epochs=0, grad_clip=0.0, name="b")
    assert norms == []
    assert not same_weights(clipped.state_dict(), free.state_dict())


def test_weighted_sampler_balances_classes(splits):
    images, _ = splits
    labels = np.array([0] * 20 + [1] * 4)
    view = EvalView(0.875, "bilinear")
    dataset = CachedImages(Split(images.images, images.rows, labels), build_eval_transforms(32, view))
    counts = {}
    for sampler in ("shuffle", "weighted"):
        cfg = FitConfig.from_params(make_params({"train": {"sampler": sampler, "batch_size": 4}}).train, 3, Runtime())
        loader, items = train_loader(dataset, cfg, SINGLE, pin_memory=False)
        drawn = []
        for epoch in range(5):
            items.set_epoch(epoch)
            drawn += [y.numpy() for _, y in loader]
        drawn = np.concatenate(drawn)
        counts[sampler] = np.bincount(drawn, minlength=2) / len(drawn)
    assert counts["shuffle"][1] == pytest.approx(4 / 24, abs=0.05)
    assert 0.35 < counts["weighted"][1] < 0.65


@pytest.mark.parametrize("sampler", ["shuffle", "weighted"])
def test_processes_share_each_global_batch(sampler):
    """With ddp, the per-process batches of batch_size / nproc interleave into the one-process batch."""
    labels = np.array([0] * 8 + [1] * 3)  # 11 items: padded to 12 for 2 and 3 processes
    whole = EpochItems(labels, sampler, seed=3, world=SINGLE)
    whole.set_epoch(2)
    order = list(whole)
    assert len(order) == 11
    for size in (2, 3):
        shards = []
        for rank in range(size):
            items = EpochItems(labels, sampler, seed=3, world=World(rank, size))
            items.set_epoch(2)
            shards.append(list(items))
        assert [len(shard) for shard in shards] == [12 // size] * size
        per_process = 6 // size  # a global batch of 6
        for b in range(12 // 6):
            merged = [shards[r][b * per_process + j] for j in range(per_process) for r in range(size)]
            assert merged == (order + order[:1])[b * 6:(b + 1) * 6]


def test_swa_is_chosen_by_validation_loss(tmp_path, splits):
    result, model = run_fit(tmp_path, splits, epochs=3, swa_start=1, name="swa")
    assert result.swa_state is not None and result.swa_val_loss is not None
    assert result.chosen == ("swa" if result.swa_val_loss < result.best_val_loss else "best")
    chosen_state = result.swa_state if result.chosen == "swa" else result.best_state
    assert same_weights(model.state_dict(), chosen_state)
    assert result.val_scores["val_loss"] == pytest.approx(min(result.swa_val_loss, result.best_val_loss), rel=1e-5)
    # SWA recomputed BatchNorm statistics: they are not the last epoch's model's
    assert not torch.equal(result.swa_state["bn1.running_mean"], result.best_state["bn1.running_mean"])
    without, _ = run_fit(tmp_path, splits, epochs=3, swa_start=None, name="noswa")
    assert without.swa_state is None and without.chosen == "best"
    assert result.best_val_loss == min(r["val_loss"] for r in result.history)


def test_worker_processes_do_not_change_the_run(tmp_path, splits):
    # dropout draws from the global RNG: the loader must not shift that stream either
    serial, serial_model = run_fit(tmp_path, splits, epochs=2, num_workers=0, drop_rate=0.3, name="serial")
    parallel, parallel_model = run_fit(tmp_path, splits, epochs=2, num_workers=2, drop_rate=0.3, name="parallel")
    assert deterministic(serial.history) == deterministic(parallel.history)
    assert same_weights(serial_model.state_dict(), parallel_model.state_dict())
