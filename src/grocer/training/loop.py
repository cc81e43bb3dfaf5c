"""The training loop: one model, one training split, one validation split.

Read it top to bottom in `fit`: per epoch, seed everything from (seed, epoch), draw
batches from the uint8 image cache through the augmentation pipeline, mix them
(mixup/CutMix, off for the last epochs), take an AdamW step (SAM optional, gradient
clipping, AMP on CUDA), follow the warm-up + cosine schedule, average weights for
SWA, evaluate on the validation split, keep the best-by-val-loss weights, and save
the resume state. At the end, SWA's BatchNorm statistics are recomputed and the
final model is the better of best-by-val-loss and SWA, by validation loss.

Under torchrun (train.distributed: ddp, see grocer.training.distributed) every process
trains on its share of each global batch through DistributedDataParallel, and rank 0
alone evaluates, averages SWA weights, saves the resume state and returns the result.

Because every epoch re-derives its random streams from (seed, epoch) and the resume
state holds everything else (weights, optimizer, SWA average, best weights, history),
a run killed after epoch k and resumed ends bit-identical to an uninterrupted run on
the CPU. The loop is generic over the head (`objective`: multi-class or binary).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import albumentations as A
import numpy as np
import torch
from timm.optim import param_groups_weight_decay
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, update_bn
from torch.utils.data import DataLoader, RandomSampler, WeightedRandomSampler
from tqdm import tqdm

from grocer.params import TrainParams
from grocer.runtime import Runtime
from grocer.training import resume
from grocer.training.data import CachedImages, Preprocess, Split, predict
from grocer.training.device import Precision
from grocer.training.distributed import SINGLE, World, all_sum
from grocer.training.mix import MixConfig, mix_batch
from grocer.training.sam import SAM
from grocer.training.schedule import lr_at


class Objective(Protocol):
    """A head's targets, loss and scores (see grocer.training.objectives)."""

    def targets(self, labels: torch.Tensor) -> torch.Tensor: ...
    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...
    def eval_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor: ...
    def correct(self, logits: torch.Tensor, labels: torch.Tensor) -> int: ...
    def scores(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, float]: ...


@dataclass(frozen=True)
class FitConfig:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_epochs: int
    grad_clip: float  # max gradient norm; 0 disables clipping
    sampler: str  # shuffle | weighted
    mix: MixConfig
    mix_off_epochs: int
    sam_rho: float | None  # None: plain optimizer steps
    swa_start: int | None  # None: no SWA
    swa_lr: float
    amp: bool
    seed: int
    num_workers: int  # runtime settings (grocer.runtime): they change the speed, not the run
    eval_batch_size: int

    @classmethod
    def from_params(cls, train: TrainParams, epochs: int, runtime: Runtime) -> FitConfig:
        """The `train:` recipe for a run of `epochs` (pair experts run fewer epochs than models)
        on this machine's `runtime`.

        SWA runs only if it starts before the last epoch of this run.
        """
        swa = train.swa_start if train.swa_start is not None and train.swa_start < epochs else None
        return cls(
            epochs=epochs, batch_size=train.batch_size, lr=train.lr, weight_decay=train.weight_decay,
            warmup_epochs=train.warmup_epochs, grad_clip=train.grad_clip, sampler=train.sampler,
            mix=MixConfig(train.mixup_alpha, train.cutmix_alpha, train.mix_prob), mix_off_epochs=train.mix_off_epochs,
            sam_rho=train.sam_rho if train.sam else None, swa_start=swa, swa_lr=train.swa_lr, amp=train.amp,
            seed=train.seed, num_workers=runtime.num_workers, eval_batch_size=runtime.eval_batch_size,
        )


@dataclass
class FitResult:
    history: list[dict[str, float]]  # one record per epoch: train_loss, train_acc, val_loss, val_<score>..., lr
    best_epoch: int  # 0-based
    best_val_loss: float
    best_state: dict[str, torch.Tensor]
    swa_val_loss: float | None
    swa_state: dict[str, torch.Tensor] | None
    chosen: str  # "best" | "swa"
    val_logits: np.ndarray  # the chosen model on the validation split (eval transform, no TTA)
    val_scores: dict[str, float]  # val_loss and the objective's scores of the chosen model


def derive_seed(seed: int, *keys: int) -> int:
    """An independent 32-bit seed for (seed, *keys): one stream per epoch and purpose."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


def show_progress() -> bool:
    """Progress bars on an interactive terminal only; CI logs stay quiet."""
    return not os.environ.get("CI") and sys.stderr.isatty()


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW; biases and norm weights (1-d params) get no weight decay."""
    return torch.optim.AdamW(param_groups_weight_decay(model, weight_decay), lr=lr)


class EpochItems:
    """One process's items of a training epoch: (augmentation seed, position) pairs, in sampling order.

    Order and seeds are functions of (seed, epoch) only; call `set_epoch` before iterating
    (as with torch's DistributedSampler), so one DataLoader with persistent workers serves
    every epoch. Each item carries its own seed (see CachedImages): the batches are the
    same whatever num_workers is; workers only make them faster.

    With several processes (`world`), every process draws the same epoch order (shuffled
    or weighted: the weighted sampler needs no distributed variant), pads it to a multiple
    of world.size by repeating its start, as DistributedSampler does, and takes every
    world.size-th item from its rank on. With batches of batch_size / world.size, process
    r's batch b is then positions r, r + world.size, ... of the one-process batch b.
    """

    def __init__(self, labels: np.ndarray, sampler: str, seed: int, world: World):
        self.labels = labels
        self.sampler = sampler
        self.seed = seed
        self.world = world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.labels) // self.world.size)

    def __iter__(self):
        return iter(self.epoch_items()[self.world.rank::self.world.size])

    def epoch_items(self) -> list[tuple[int, int]]:
        """Every process's items of the epoch, padded to a multiple of world.size."""
        n = len(self.labels)
        generator = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, 0))
        if self.sampler == "weighted":
            counts = np.bincount(self.labels)
            weights = torch.as_tensor(1.0 / counts[self.labels], dtype=torch.double)
            order = WeightedRandomSampler(weights, num_samples=n, replacement=True, generator=generator)
        else:
            order = RandomSampler(range(n), generator=generator)
        seeds = np.random.SeedSequence([self.seed, self.epoch, 1]).generate_state(n)
        items = [(int(s), int(i)) for s, i in zip(seeds, order)]
        return items + items[:len(self) * self.world.size - n]


def train_loader(dataset: CachedImages, cfg: FitConfig, world: World, pin_memory: bool) -> tuple[DataLoader, EpochItems]:
    """This process's batches for every epoch (set the epoch on the returned EpochItems first)."""
    items = EpochItems(dataset.split.labels, cfg.sampler, cfg.seed, world)
    batch_size = cfg.batch_size // world.size  # params check that nproc divides batch_size
    loader = DataLoader(
        dataset, batch_size=batch_size, sampler=items, num_workers=cfg.num_workers, pin_memory=pin_memory,
        persistent_workers=cfg.num_workers > 0,  # workers start once per run, not once per epoch
        drop_last=len(items) > batch_size,  # no 1-image last batch (BatchNorm cannot train on it)
        # its own generator: a new iterator draws a seed, which must not shift the global stream
        # that dropout uses (else num_workers, which changes when iterators are made, changes the run)
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    return loader, items


def evaluate(
    model: nn.Module, objective: Objective, split: Split, transform: A.Compose, prep: Preprocess, batch_size: int,
    precision: Precision,
) -> tuple[float, dict[str, float], np.ndarray]:
    """Mean validation loss, scores and logits of `model` on `split` (no TTA)."""
    logits = predict(model, split, transform, prep, batch_size, "none", precision)
    loss = float(objective.eval_loss(torch.from_numpy(logits), torch.tensor(split.labels))) / len(split.rows)
    return loss, objective.scores(logits, split.labels), logits


def _state_dict_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fit(
    model: nn.Module,
    objective: Objective,
    train: Split,
    val: Split,
    transforms: tuple[A.Compose, A.Compose],
    cfg: FitConfig,
    prep: Preprocess,
    state_file: Path,
    state_key: str,
    name: str,
    world: World = SINGLE,
    on_epoch: Callable[[list[dict[str, float]]], None] | None = None,
) -> FitResult | None:
    """Train `model` in place (it ends holding the chosen weights) and return what happened.

    In a ddp run every process calls this; rank 0 gets the result, the others None.

    Args:
        model: the network, already on `prep.device`.
        objective: the head's targets/loss/scores.
        train, val: the two splits.
        transforms: (training pipeline, evaluation pipeline).
        cfg: the recipe.
        prep: batch preprocessing (device, normalisation, memory format).
        state_file: resume state, rewritten after every epoch (an untracked scratch file).
        state_key: identifies the run; a state file with another key is ignored.
        name: shown on the progress bar.
        world: this process among the training processes (grocer.training.distributed).
        on_epoch: called on rank 0 with the history after each epoch, and once with the saved
            history when a run resumes (grocer.training.live.EpochLog.log).
    """
    train_transform, eval_transform = transforms
    device = prep.device
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    precision = Precision(device, cfg.amp, sam=cfg.sam_rho is not None)
    optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay)
    sam = SAM(optimizer, cfg.sam_rho) if cfg.sam_rho is not None else None
    swa_model = AveragedModel(model) if cfg.swa_start is not None and world.is_main else None
    dataset = CachedImages(train, train_transform)
    history: list[dict[str, float]] = []
    best = {"epoch": -1, "val_loss": float("inf"), "state": None}
    start_epoch = 0

    state = resume.load_state(state_file, state_key)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if swa_model is not None:
            swa_model.load_state_dict(state["swa"])
        if precision.scaler is not None:
            precision.scaler.load_state_dict(state["scaler"])
        history, best, start_epoch = state["history"], state["best"], state["epoch"]
        if on_epoch is not None and world.is_main:
            on_epoch(history)
    # DDP copies rank 0's weights to every process here and averages gradients in backward
    net = (DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
           if world.size > 1 else model)

    loader, items = train_loader(dataset, cfg, world, pin_memory=device.type == "cuda")
    for epoch in range(start_epoch, cfg.epochs):
        items.set_epoch(epoch)
        started = time.perf_counter()
        total_loss, correct, seen, lr = train_one_epoch(
            net, model, objective, optimizer, sam, precision, loader, cfg, prep, epoch, f"{name} {epoch + 1}/{cfg.epochs}",
            world,
        )
        train_seconds = time.perf_counter() - started
        total_loss, correct, seen = all_sum([total_loss, correct, seen], world, device)
        if not world.is_main:
            continue
        if swa_model is not None and epoch >= cfg.swa_start:
            swa_model.update_parameters(model)

        val_loss, val_scores, _ = evaluate(model, objective, val, eval_transform, prep, cfg.eval_batch_size, precision)
        if val_loss < best["val_loss"]:
            best = {"epoch": epoch, "val_loss": val_loss, "state": _state_dict_copy(model)}
        history.append({
            "train_loss": total_loss / max(seen, 1), "train_acc": correct / max(seen, 1), "val_loss": val_loss,
            **{f"val_{k}": v for k, v in val_scores.items()}, "lr": lr,
            "train_images": float(seen), "train_seconds": train_seconds,
        })
        if on_epoch is not None:
            on_epoch(history)
        if show_progress():
            tqdm.write(f"{name} epoch {epoch + 1}/{cfg.epochs}: loss {history[-1]['train_loss']:.4f} "
                       f"val_loss {val_loss:.4f} val_acc {val_scores['acc']:.4f}", file=sys.stderr)
        resume.save_state(state_file, {
            "key": state_key, "epoch": epoch + 1, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "swa": swa_model.state_dict() if swa_model is not None else None,
            "scaler": precision.scaler.state_dict() if precision.scaler is not None else None,
            "history": history, "best": best,
        })

    if not world.is_main:
        return None
    if world.size > 1:  # SWA's BatchNorm statistics from every image, not only rank 0's share
        loader, items = train_loader(dataset, cfg, SINGLE, pin_memory=device.type == "cuda")
    items.set_epoch(cfg.epochs)  # a seeded extra "epoch" of batches for SWA's BatchNorm statistics
    return _finish(model, objective, swa_model, loader, val, eval_transform, cfg, prep, precision, history, best)


def train_one_epoch(
    net: nn.Module, model: nn.Module, objective: Objective, optimizer: torch.optim.Optimizer, sam: SAM | None,
    precision: Precision, loader: DataLoader, cfg: FitConfig, prep: Preprocess, epoch: int, desc: str, world: World,
) -> tuple[float, int, int, float]:
    """One pass over `loader` (its items already set to `epoch`): this process's summed loss,
    correct count and images seen, and the last learning rate. `net` is `model` or its DDP wrapper."""
    torch.manual_seed(derive_seed(cfg.seed, epoch, 2, world.rank))  # dropout, drop-path: a stream per process
    mix_rng = np.random.default_rng(derive_seed(cfg.seed, epoch, 3))  # the same mixing draws in every process
    mixing = cfg.mix.enabled and epoch < cfg.epochs - cfg.mix_off_epochs
    steps_per_epoch = len(loader)
    model.train()
    total_loss, correct, seen, lr = 0.0, 0, 0, cfg.lr
    bar = tqdm(loader, desc=desc, leave=False, disable=not (show_progress() and world.is_main))
    for step, (images, labels) in enumerate(bar):
        lr = lr_at(epoch * steps_per_epoch + step, steps_per_epoch, cfg.epochs, cfg.lr, cfg.warmup_epochs,
                   cfg.swa_start, cfg.swa_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        labels = labels.to(prep.device)
        x, targets = prep(images), objective.targets(labels)
        if mixing:
            x, targets = mix_batch(x, targets, cfg.mix, mix_rng)
        loss, logits = _step(net, objective, optimizer, sam, precision, x, targets, cfg.grad_clip)
        total_loss += float(loss) * len(labels)
        correct += objective.correct(logits, labels)
        seen += len(labels)
        bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
    return total_loss, correct, seen, lr


def _step(
    model: nn.Module, objective: Objective, optimizer: torch.optim.Optimizer, sam: SAM | None, precision: Precision,
    x: torch.Tensor, targets: torch.Tensor, grad_clip: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step (two forward/backward passes with SAM); returns the loss and logits at w."""
    with precision.autocast():
        logits = model(x)
        loss = objective.loss(logits, targets)
    precision.backward(loss)
    if sam is not None:
        sam.perturb()
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            objective.loss(model(x), targets).backward()
        sam.restore()
    precision.unscale(optimizer)
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    precision.step(optimizer)
    optimizer.zero_grad(set_to_none=True)
    return loss.detach(), logits.detach()


def _finish(
    model: nn.Module, objective: Objective, swa_model: AveragedModel | None, loader: DataLoader, val: Split,
    eval_transform: A.Compose, cfg: FitConfig, prep: Preprocess, precision: Precision,
    history: list[dict[str, float]], best: dict,
) -> FitResult:
    """SWA's BatchNorm update and evaluation, then the choice between best-by-val-loss and SWA."""
    swa_val_loss, swa_state = None, None
    if swa_model is not None:
        torch.manual_seed(derive_seed(cfg.seed, cfg.epochs, 2))
        update_bn((prep(images) for images, _ in loader), swa_model)
        swa_val_loss, _, _ = evaluate(swa_model.module, objective, val, eval_transform, prep, cfg.eval_batch_size, precision)
        swa_state = _state_dict_copy(swa_model.module)
    chosen = "swa" if swa_val_loss is not None and swa_val_loss < best["val_loss"] else "best"
    model.load_state_dict(swa_state if chosen == "swa" else best["state"])
    val_loss, val_scores, val_logits = evaluate(model, objective, val, eval_transform, prep, cfg.eval_batch_size, precision)
    return FitResult(
        history=history, best_epoch=best["epoch"], best_val_loss=best["val_loss"], best_state=best["state"],
        swa_val_loss=swa_val_loss, swa_state=swa_state, chosen=chosen, val_logits=val_logits,
        val_scores={"val_loss": val_loss, **val_scores},
    )
