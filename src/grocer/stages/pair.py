"""Stage `pair@<a-b>-<fold>`: a binary expert for one confusable class pair on one fold.

For a pair 'a-b' of `pairs.list`, the expert is the zoo model `pairs.model` with one
output: prob_b = P(class b | the image is a or b) = sigmoid(logit). It trains for
`pairs.epochs` with the `train:` recipe (sampler, mixup/CutMix, SAM, SWA when
train.swa_start < pairs.epochs, ...) on fold k's training rows of the two classes,
with BCEWithLogits (pos_weight = n_a / n_b when train.class_weights, float32 targets on
every device), validated on fold k's rows of the two classes.

Outputs in models/pairs/<a-b>/f<k>/ (grocer.paths.pair_item_dir):

* best.pt, swa.pt (SWA on), final.json, config.json: as a train item
  (grocer.training.checkpoint.load_final loads it);
* oof.parquet: columns image_id, prob_b for EVERY row of fold k, not only the pair's
  (which rows an expert scores must not reveal their labels to the stack);
* test.parquet: image_id, prob_b for the whole test set; its parquet metadata carries the
  test fingerprint (`test_fingerprint`), which stack and override check.

Both are test-time augmented (`tta.mode`, logits averaged over views, then sigmoid).
plots/pairs/<a-b>-f<k>/: dvclive's directory (grocer.training.live), the per-epoch
curves as a train item's, and metrics.json: auc and f1 (at prob_b 0.5) of the TTA predictions on the
fold's rows of the two classes, and n, their number.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
import torch

from grocer import atomic, pairs, paths
from grocer.dataset import load_classes, verify_fingerprint, verify_test_set
from grocer.errors import GrocerError
from grocer.imagecache import load_cache
from grocer.params import Params
from grocer.predictions import write_expert_table
from grocer.runtime import load as load_runtime
from grocer.stages.train import item_img_size, zoo_entry
from grocer.training import checkpoint, distributed, resume
from grocer.training.augment import build_eval_transforms, build_train_transforms
from grocer.training.data import Preprocess, Split, predict
from grocer.training.device import Precision, use_threads
from grocer.training.live import EpochLog
from grocer.training.loop import FitConfig, fit
from grocer.training.metrics import binary_f1, roc_auc
from grocer.training.models import create_model, eval_view, normalization
from grocer.training.objectives import Binary
from grocer.training.resume import STATE_FILE, run_key
from grocer.training.splits import cache_split, read_folds


def pair_classes(params: Params, pair: str, classes: list[str]) -> tuple[str, str]:
    if pair not in params.pairs.list:
        raise GrocerError(f"--pair {pair!r} is not in pairs.list ({', '.join(params.pairs.list) or 'empty'})")
    index_a, index_b = pairs.pair_classes([pair], classes)[pair]
    return classes[index_a], classes[index_b]


def pair_rows(table: pd.DataFrame, a: str, b: str, where: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows of classes a and b, and their binary target (1 for b)."""
    rows = table[table["label"].isin([a, b])]
    target = (rows["label"] == b).to_numpy(np.int64)
    if target.sum() == 0 or target.sum() == len(target):
        raise GrocerError(f"pair {a}-{b}: {where} needs rows of both classes (has {int(target.sum())} of {b}, "
                          f"{int(len(target) - target.sum())} of {a})")
    return rows, target


def run(params: Params, pair: str, fold: int) -> None:
    started = time.perf_counter()
    classes = load_classes()
    a, b = pair_classes(params, pair, classes)
    entry = zoo_entry(params, params.pairs.model)
    params = params.for_model(params.pairs.model)  # the experts train with their backbone's recipe
    table = read_folds(classes, fold)
    verify_test_set(params.data)
    cache = load_cache()
    verify_fingerprint(cache.test_fingerprint, paths.CACHE_DIR)
    img_size = item_img_size(params, cache.img_size)
    fold_rows = table[table["fold"] == fold]
    train_rows, train_target = pair_rows(table[table["fold"] != fold], a, b, f"training (folds other than {fold})")
    val_rows, val_target = pair_rows(fold_rows, a, b, f"fold {fold}")
    train = cache_split(cache, train_rows, train_target)
    val = cache_split(cache, val_rows, val_target)
    runtime = load_runtime()
    if distributed.needs_launch(params.train):  # the inputs are checked above, once, before torchrun starts
        distributed.launch(["pair", "--pair", pair, "--fold", str(fold)], params.train, runtime)
        return

    world, device = distributed.join(params.train, runtime)
    log = EpochLog(paths.pair_curves_dir(pair, fold), f"pair@{pair}-{fold}") if world.is_main else None
    use_threads(runtime.threads)
    torch.manual_seed(params.train.seed)
    net = create_model(entry, 1, img_size).to(device)
    mean, std = normalization(net)
    view = eval_view(net)
    prep = Preprocess(mean, std, entry.channels_last, device)
    n_pos = int(train_target.sum())
    pos_weight = (len(train_target) - n_pos) / n_pos if params.train.class_weights else 1.0
    objective = Binary(pos_weight=pos_weight, label_smoothing=params.train.label_smoothing)
    cfg = FitConfig.from_params(params.train, params.pairs.epochs, runtime)
    config = {
        "kind": "pair_expert", "pair": pair, "fold": fold, "model": params.pairs.model, "zoo": entry.model_dump(),
        "img_size": img_size, "outputs": 1, "classes": [a, b], "mean": list(mean), "std": list(std),
        "crop_pct": view.crop_pct, "interpolation": view.interpolation,
        "aug": params.aug.model_dump(), "train": params.train.model_dump(), "epochs": params.pairs.epochs,
        "pos_weight": pos_weight, "n_train": len(train.rows), "n_val": len(val.rows),
    }
    scratch = paths.pair_scratch(pair, fold)
    eval_transform = build_eval_transforms(img_size, view)
    result = fit(
        net, objective, train, val, (build_train_transforms(params.aug, img_size, view), eval_transform),
        cfg, prep, scratch / STATE_FILE, run_key(config, train, val), name=f"{pair}-f{fold}", world=world,
        on_epoch=log.log if log is not None else None,
    )
    if result is None:  # a ddp worker other than rank 0: rank 0 predicts and writes the outputs
        return

    precision = Precision(device, params.train.amp, sam=False)

    def prob_b(split: Split) -> np.ndarray:
        logits = predict(net, split, eval_transform, prep, runtime.eval_batch_size, params.tta.mode, precision)
        return objective.probabilities(logits)[:, 0]

    oof_split = cache_split(cache, fold_rows, np.zeros(len(fold_rows), dtype=np.int64))
    oof_prob = prob_b(oof_split)
    test_prob = prob_b(Split(cache.test, np.arange(len(cache.test_ids)), np.zeros(len(cache.test_ids), np.int64)))
    of_pair = fold_rows["label"].isin([a, b]).to_numpy()
    metrics = {
        "auc": roc_auc(val_target, oof_prob[of_pair]),
        "f1": binary_f1(val_target, oof_prob[of_pair] >= 0.5),
        "n": int(of_pair.sum()),
    }

    with atomic.together() as staged:
        tmp = staged.dir(paths.pair_item_dir(pair, fold))
        checkpoint.write_item(tmp, result, config)
        write_expert_table(paths.prediction_table(tmp, "oof"), fold_rows["image_id"].tolist(), oof_prob)
        write_expert_table(paths.prediction_table(tmp, "test"), cache.test_ids, test_prob, cache.test_fingerprint)
        log.end(metrics)  # last, inside: the summary is written only with the item's files
    resume.clear(scratch)
    print(f"pair {pair}-f{fold}: auc {metrics['auc']:.4f} f1 {metrics['f1']:.4f} n {metrics['n']} "
          f"({time.perf_counter() - started:.0f}s)", file=sys.stderr)
