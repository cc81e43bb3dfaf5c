"""One training item, a train item or a pair expert: the recipe both stages run.

A stage checks its inputs and says what its item is (`ItemSpec`: the rows and targets,
the objective, the number of outputs, its own config keys and its paths); `run_item`
does the rest the same way for both: launch under torchrun (train.distributed: ddp),
join, seed, build the model and its preprocessing, fit with the `train:` recipe (resume
state: grocer.training.resume), and `ItemRun.writing` writes the item all or nothing.
A change to the recipe is made here, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from grocer import atomic, paths
from grocer.errors import GrocerError
from grocer.params import Params, ZooModel
from grocer.runtime import Runtime
from grocer.runtime import load as load_runtime
from grocer.training import checkpoint, distributed, resume
from grocer.training.augment import EvalView, build_eval_transforms, build_train_transforms
from grocer.training.data import Preprocess, Split, predict
from grocer.training.device import Precision, use_threads
from grocer.training.distributed import World
from grocer.training.live import EpochLog
from grocer.training.loop import FitConfig, FitResult, Objective, fit
from grocer.training.models import check_arch, create_model, eval_view, normalization
from grocer.training.resume import STATE_FILE, run_key


def zoo_entry(params: Params, model: str) -> ZooModel:
    """The zoo entry of `model`, its architecture checked with timm before any work."""
    if model not in params.zoo:
        raise GrocerError(f"--model {model!r} is not in zoo (known: {', '.join(sorted(params.zoo))})")
    check_arch(params.zoo[model].arch, where=f"zoo.{model}.arch")
    return params.zoo[model]


def item_img_size(params: Params, cache_size: int) -> int:
    size = params.train.img_size
    if size > cache_size:
        raise GrocerError(f"{paths.CACHE_DIR}: images are {cache_size}px, the model needs {size}px; "
                          "run `dvc repro cache` after raising cache.img_size")
    return size


@dataclass(frozen=True)
class ItemSpec:
    """What a train item and a pair item differ in."""

    command: list[str]  # the item's grocer command line: run again under torchrun with train.distributed: ddp
    item: str  # DVC's name of the item (train@convnext-0), shown in metrics/running.json
    name: str  # in progress lines (convnext-f0)
    params: Params  # resolved for the item's backbone (Params.for_model)
    entry: ZooModel
    img_size: int
    train: Split
    val: Split
    objective: Objective
    outputs: int  # the model's logits
    classes: list[str]  # what config.json says the outputs are about
    epochs: int
    identity: dict  # config.json's first keys: kind, what the item is, fold
    directory: Path  # the item's outputs (grocer.paths)
    curves: Path  # dvclive's directory
    scratch: Path  # resume state, cleared once the item is written
    extra: dict = field(default_factory=dict)  # config.json keys only this kind of item has


@dataclass
class ItemRun:
    """An item trained in this process. Under ddp every process has one; rank 0 alone logs,
    gets results and writes."""

    spec: ItemSpec
    net: nn.Module  # after a fit, it holds the chosen weights on rank 0
    prep: Preprocess
    view: EvalView
    cfg: FitConfig
    config: dict  # config.json
    world: World
    device: torch.device
    runtime: Runtime
    log: EpochLog | None
    result: FitResult | None = None  # the first fit's; None on ddp workers other than rank 0

    def fit(self, cfg: FitConfig, img_size: int, state_file: str, key_config: dict, name: str,
            earlier: list[dict[str, float]] | None = None) -> FitResult | None:
        """Train the net with `cfg` at `img_size` (resumable under `state_file`); the curves go on after `earlier`."""
        spec = self.spec
        transforms = (build_train_transforms(spec.params.aug, img_size, self.view),
                      build_eval_transforms(img_size, self.view))
        on_epoch = None if self.log is None else (lambda history: self.log.log([*(earlier or []), *history]))
        return fit(self.net, spec.objective, spec.train, spec.val, transforms, cfg, self.prep,
                   spec.scratch / state_file, run_key(key_config, spec.train, spec.val), name=name, world=self.world,
                   on_epoch=on_epoch)

    def predict(self, split: Split) -> np.ndarray:
        """The net's logits on `split` at the item's size, test-time augmented (tta.mode)."""
        params = self.spec.params
        return predict(self.net, split, build_eval_transforms(self.spec.img_size, self.view), self.prep,
                       self.runtime.eval_batch_size, params.tta.mode, Precision(self.device, params.train.amp, sam=False))

    @contextmanager
    def writing(self, result: FitResult, metrics: dict[str, float]) -> Iterator[Path]:
        """The item's staged directory, holding the checkpoint files (grocer.training.checkpoint) for the
        caller's tables; the curves' summary last, so all of it is written or none."""
        with atomic.together() as staged:
            directory = staged.dir(self.spec.directory)
            checkpoint.write_item(directory, result, self.config)
            yield directory
            self.log.end(metrics)
        resume.clear(self.spec.scratch)


def run_item(spec: ItemSpec) -> ItemRun | None:
    """Build the item's model and fit it once; None when train.distributed: ddp handed the item to torchrun.

    The caller has checked its inputs: under ddp they are checked once, before torchrun starts."""
    params = spec.params
    runtime = load_runtime()
    if distributed.needs_launch(params.train):
        distributed.launch(spec.command, params.train, runtime)
        return None

    world, device = distributed.join(params.train, runtime)
    log = EpochLog(spec.curves, spec.item) if world.is_main else None
    use_threads(runtime.threads)
    torch.manual_seed(params.train.seed)
    net = create_model(spec.entry, spec.outputs, spec.img_size).to(device)
    mean, std = normalization(net)
    view = eval_view(net)
    config = {
        **spec.identity, "zoo": spec.entry.model_dump(), "img_size": spec.img_size, "outputs": spec.outputs,
        "classes": spec.classes, "mean": list(mean), "std": list(std),
        "crop_pct": view.crop_pct, "interpolation": view.interpolation,
        "aug": params.aug.model_dump(), "train": params.train.model_dump(), **spec.extra,
        "n_train": len(spec.train.rows), "n_val": len(spec.val.rows),
    }
    run = ItemRun(spec, net, Preprocess(mean, std, spec.entry.channels_last, device), view,
                  FitConfig.from_params(params.train, spec.epochs, runtime), config, world, device, runtime, log)
    run.result = run.fit(run.cfg, spec.img_size, STATE_FILE, config, spec.name)
    return run
