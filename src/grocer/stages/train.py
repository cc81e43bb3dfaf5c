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

from grocer import paths
from grocer.dataset import load_classes
from grocer.errors import GrocerError
from grocer.imagecache import load_cache
from grocer.params import Params, Stage2Params, ZooModel
from grocer.predictions import softmax, write_predictions
from grocer.training.runner import ItemSpec, item_img_size, run_item, zoo_entry
from grocer.training.loop import FitConfig, FitResult
from grocer.training.models import takes_img_size
from grocer.training.objectives import MultiClass, balanced_class_weights
from grocer.training.resume import STAGE2_STATE_FILE
from grocer.training.splits import cache_split, read_folds


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
    weights = balanced_class_weights(train.labels, len(classes)) if params.train.class_weights else None
    objective = MultiClass(
        num_classes=len(classes),
        class_weights=None if weights is None else torch.tensor(weights, dtype=torch.float32),
        label_smoothing=params.train.label_smoothing,
    )
    item = run_item(ItemSpec(
        command=["train", "--model", model, "--fold", str(fold)], item=f"train@{model}-{fold}",
        name=f"{model}-f{fold}", params=params, entry=entry, img_size=img_size, train=train, val=val,
        objective=objective, outputs=len(classes), classes=classes, epochs=params.train.epochs,
        identity={"kind": "classifier", "model": model, "fold": fold}, directory=paths.train_item_dir(model, fold),
        curves=paths.train_curves_dir(model, fold), scratch=paths.train_scratch(model, fold),
    ))
    if item is None:  # run under torchrun
        return
    result = item.result
    if stage2 is not None:  # every ddp process fine-tunes; the net holds the chosen stage-1 weights on rank 0
        fine = item.fit(stage2_config(item.cfg, stage2), size2, STAGE2_STATE_FILE, {**item.config, "stage": 2},
                        name=f"{model}-f{fold} stage 2",
                        earlier=result.history if result is not None else None)  # the curves go on from stage 1's
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
            result, item.config["img_size"] = fine, size2
        result = dataclasses.replace(result, history=history)

    epochs = item.cfg.epochs + (stage2.epochs if stage2 is not None else 0)
    metrics = {**train_metrics(result, epochs, len(train.rows), len(val.rows)), **stage_metrics}
    with item.writing(result, metrics) as directory:
        logits = result.val_logits.astype(np.float32)
        write_predictions(paths.prediction_table(directory, "oof"), val_rows["image_id"].tolist(), logits,
                          softmax(logits), classes)
    print(f"train {model}-f{fold}: val_loss {metrics['val_loss']:.4f} acc {metrics['acc']:.4f} "
          f"macro_f1 {metrics['macro_f1']:.4f} ({result.chosen} weights, {time.perf_counter() - started:.0f}s)",
          file=sys.stderr)
