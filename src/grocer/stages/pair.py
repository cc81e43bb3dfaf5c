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

from grocer import pairs, paths
from grocer.dataset import load_classes, verify_fingerprint, verify_test_set
from grocer.errors import GrocerError
from grocer.imagecache import load_cache
from grocer.params import Params
from grocer.predictions import write_expert_table
from grocer.training.data import Split
from grocer.training.runner import ItemRun, ItemSpec, item_img_size, run_item, zoo_entry
from grocer.training.metrics import binary_f1, roc_auc
from grocer.training.objectives import Binary
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


def prob_b(item: ItemRun, split: Split) -> np.ndarray:
    return item.spec.objective.probabilities(item.predict(split))[:, 0]


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
    n_pos = int(train_target.sum())
    pos_weight = (len(train_target) - n_pos) / n_pos if params.train.class_weights else 1.0
    item = run_item(ItemSpec(
        command=["pair", "--pair", pair, "--fold", str(fold)], item=f"pair@{pair}-{fold}", name=f"{pair}-f{fold}",
        params=params, entry=entry, img_size=img_size, train=train, val=val,
        objective=Binary(pos_weight=pos_weight, label_smoothing=params.train.label_smoothing),
        outputs=1, classes=[a, b], epochs=params.pairs.epochs,
        identity={"kind": "pair_expert", "pair": pair, "fold": fold, "model": params.pairs.model},
        extra={"epochs": params.pairs.epochs, "pos_weight": pos_weight},
        directory=paths.pair_item_dir(pair, fold), curves=paths.pair_curves_dir(pair, fold),
        scratch=paths.pair_scratch(pair, fold),
    ))
    if item is None or item.result is None:  # run under torchrun, or a ddp worker other than rank 0
        return

    oof_prob = prob_b(item, cache_split(cache, fold_rows, np.zeros(len(fold_rows), dtype=np.int64)))
    test_prob = prob_b(item, Split(cache.test, np.arange(len(cache.test_ids)), np.zeros(len(cache.test_ids), np.int64)))
    of_pair = fold_rows["label"].isin([a, b]).to_numpy()
    metrics = {
        "auc": roc_auc(val_target, oof_prob[of_pair]),
        "f1": binary_f1(val_target, oof_prob[of_pair] >= 0.5),
        "n": int(of_pair.sum()),
    }
    with item.writing(item.result, metrics) as directory:
        write_expert_table(paths.prediction_table(directory, "oof"), fold_rows["image_id"].tolist(), oof_prob)
        write_expert_table(paths.prediction_table(directory, "test"), cache.test_ids, test_prob,
                           cache.test_fingerprint)
    print(f"pair {pair}-f{fold}: auc {metrics['auc']:.4f} f1 {metrics['f1']:.4f} n {metrics['n']} "
          f"({time.perf_counter() - started:.0f}s)", file=sys.stderr)
