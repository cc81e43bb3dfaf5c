"""Stage `train@<model>-<fold>`: one zoo model trained on the other folds, validated on fold k.

Reads the uint8 image cache (no image decoding per epoch), folds.csv and the class
list; trains with the `train:` recipe and the `aug:` profile (grocer.training.loop);
writes, all or nothing:

* models/<model>/fold<k>/: best.pt, swa.pt (SWA on), final.json, config.json and
  oof.parquet (logits/probs of the final model on fold k's rows, no TTA: the infer
  stage adds TTA);
* plots/train/<model>-f<k>/, dvclive's directory (grocer.training.live), logged epoch by
  epoch: plots/metrics/<curve>.tsv (train/val loss and accuracy, val macro-F1, learning
  rate; `report` draws every item's in plots/train_curves.csv) and, at the end,
  metrics.json: val_loss, acc, macro_f1, errors, epochs, best_epoch, chosen_swa (1 if SWA
  weights were chosen), n_train, n_val and dvclive's step.

With `train.stage2`, the chosen weights are fine-tuned for stage2.epochs more at
train.lr * stage2.lr_scale (and stage2.img_size); the item keeps the stage with the lower
val loss (metrics: stage1_val_loss, stage2_val_loss, chosen_stage; the curves hold both).

With `train.distributed: ddp` the command checks its inputs, then runs again under
torchrun with `train.nproc` processes (grocer.training.distributed); rank 0 writes.

An interrupted run resumes from its last finished epoch (state in the untracked
.scratch/ directory, see grocer.paths.train_scratch) and ends identical to an
uninterrupted one on the CPU.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import numpy as np
import torch

from grocer import atomic, paths
from grocer.dataset import load_classes
from grocer.errors import GrocerError
from grocer.imagecache import load_cache
from grocer.params import Params, Stage2Params, ZooModel
from grocer.predictions import softmax, write_predictions
from grocer.runtime import load as load_runtime
from grocer.training import checkpoint, distributed, resume
from grocer.training.augment import build_eval_transforms, build_train_transforms
from grocer.training.data import Preprocess
from grocer.training.device import use_threads
from grocer.training.live import EpochLog
from grocer.training.loop import FitConfig, FitResult, fit
from grocer.training.models import check_arch, create_model, eval_view, normalization, takes_img_size
from grocer.training.objectives import MultiClass, balanced_class_weights
from grocer.training.resume import STAGE2_STATE_FILE, STATE_FILE, run_key
from grocer.training.splits import cache_split, read_folds


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


def stage2_size(params: Params, entry: ZooModel, img_size: int, cache_size: int) -> int:
    """The fine-tune's resolution, checked before any training."""
    size = params.train.stage2.img_size or img_size
    if size > cache_size:
        raise GrocerError(f"{paths.CACHE_DIR}: images are {cache_size}px, train.stage2.img_size is {size}px; "
                          "run `dvc repro cache` after raising cache.img_size")
    if size != img_size and takes_img_size(entry.arch):
        raise GrocerError(f"train.stage2.img_size: {entry.arch} is built for one input size ({img_size}px); "
                          "set stage2.img_size to null for it")
    return size


def stage2_config(cfg: FitConfig, stage2: Stage2Params) -> FitConfig:
    """The fine-tune's recipe: the main recipe at lr * lr_scale for stage2.epochs, no warm-up, no SWA."""
    return dataclasses.replace(cfg, epochs=stage2.epochs, lr=cfg.lr * stage2.lr_scale, warmup_epochs=0, swa_start=None)


def train_metrics(result: FitResult, epochs: int, n_train: int, n_val: int) -> dict[str, float]:
    scores = result.val_scores
    return {
        "val_loss": scores["val_loss"],
        "acc": scores["acc"],
        "macro_f1": scores["f1"],
        "errors": scores["errors"],
        "epochs": epochs,
        "best_epoch": result.best_epoch,
        "chosen_swa": int(result.chosen == "swa"),
        "n_train": n_train,
        "n_val": n_val,
    }


def run(params: Params, model: str, fold: int) -> None:
    started = time.perf_counter()
    entry = zoo_entry(params, model)
    params = params.for_model(model)
    classes = load_classes()
    table = read_folds(classes, fold)
    cache = load_cache()
    img_size = item_img_size(params, cache.img_size)
    stage2 = params.train.stage2
    size2 = stage2_size(params, entry, img_size, cache.img_size) if stage2 is not None else None
    train_rows, val_rows = table[table["fold"] != fold], table[table["fold"] == fold]
    train = cache_split(cache, train_rows, train_rows["y"].to_numpy())
    val = cache_split(cache, val_rows, val_rows["y"].to_numpy())
    runtime = load_runtime()
    if distributed.needs_launch(params.train):  # the inputs are checked above, once, before torchrun starts
        distributed.launch(["train", "--model", model, "--fold", str(fold)], params.train, runtime)
        return

    world, device = distributed.join(params.train, runtime)
    log = EpochLog(paths.train_curves_dir(model, fold), f"train@{model}-{fold}") if world.is_main else None
    use_threads(runtime.threads)
    torch.manual_seed(params.train.seed)
    net = create_model(entry, len(classes), img_size).to(device)
    mean, std = normalization(net)
    view = eval_view(net)
    prep = Preprocess(mean, std, entry.channels_last, device)
    weights = balanced_class_weights(train.labels, len(classes)) if params.train.class_weights else None
    objective = MultiClass(
        num_classes=len(classes),
        class_weights=None if weights is None else torch.tensor(weights, dtype=torch.float32),
        label_smoothing=params.train.label_smoothing,
    )
    cfg = FitConfig.from_params(params.train, params.train.epochs, runtime)
    config = {
        "kind": "classifier", "model": model, "fold": fold, "zoo": entry.model_dump(), "img_size": img_size,
        "outputs": len(classes), "classes": classes, "mean": list(mean), "std": list(std),
        "crop_pct": view.crop_pct, "interpolation": view.interpolation,
        "aug": params.aug.model_dump(), "train": params.train.model_dump(),
        "n_train": len(train.rows), "n_val": len(val.rows),
    }
    scratch = paths.train_scratch(model, fold)
    result = fit(
        net, objective, train, val,
        (build_train_transforms(params.aug, img_size, view), build_eval_transforms(img_size, view)),
        cfg, prep, scratch / STATE_FILE, run_key(config, train, val), name=f"{model}-f{fold}", world=world,
        on_epoch=log.log if log is not None else None,
    )
    if stage2 is not None:  # every ddp process fine-tunes; the net holds the chosen stage-1 weights on rank 0
        fine = fit(
            net, objective, train, val,
            (build_train_transforms(params.aug, size2, view), build_eval_transforms(size2, view)),
            stage2_config(cfg, stage2), prep, scratch / STAGE2_STATE_FILE,
            run_key({**config, "stage": 2}, train, val), name=f"{model}-f{fold} stage 2", world=world,
            # the curves go on from stage 1's epochs
            on_epoch=(lambda history: log.log(result.history + history)) if log is not None else None,
        )
    if result is None:  # a ddp worker other than rank 0: rank 0 writes the outputs
        return
    stage_metrics = {}
    if stage2 is not None:
        # one val split, each stage at its own resolution: the lower val loss is kept, as best/SWA are
        chosen_stage = 2 if fine.val_scores["val_loss"] < result.val_scores["val_loss"] else 1
        stage_metrics = {"stage1_val_loss": result.val_scores["val_loss"],
                         "stage2_val_loss": fine.val_scores["val_loss"], "chosen_stage": chosen_stage}
        history = result.history + fine.history
        if chosen_stage == 2:
            result, config["img_size"] = fine, size2
        result = dataclasses.replace(result, history=history)

    epochs = cfg.epochs + (stage2.epochs if stage2 is not None else 0)
    metrics = {**train_metrics(result, epochs, len(train.rows), len(val.rows)), **stage_metrics}
    with atomic.together() as staged:
        tmp = staged.dir(paths.train_item_dir(model, fold))
        checkpoint.write_item(tmp, result, config)
        logits = result.val_logits.astype(np.float32)
        write_predictions(paths.prediction_table(tmp, "oof"), val_rows["image_id"].tolist(), logits,
                          softmax(logits), classes)
        log.end(metrics)  # last, inside: the summary is written only with the item's files
    resume.clear(scratch)
    print(f"train {model}-f{fold}: val_loss {metrics['val_loss']:.4f} acc {metrics['acc']:.4f} "
          f"macro_f1 {metrics['macro_f1']:.4f} ({result.chosen} weights, {time.perf_counter() - started:.0f}s)",
          file=sys.stderr)
