"""Stage `infer@<model>`: test-time-augmented predictions of every trained fold of one model.

For each fold k of `run.folds`, loads the final weights of models/<model>/fold<k>/
(grocer.training.checkpoint.load_final) and predicts, averaging logits over the
geometric views of `tta.mode` (grocer.training.tta), for

* the item's OOF rows (fold k of folds.csv, the rows it never trained on), and
* the whole test set,

into data/predictions/models/<model>/f<k>/{oof,test}.parquet (grocer.predictions
format) plus meta.json carrying the test fingerprint, which the ensemble stages
check. The test files and the image cache's test fingerprint must be ingest's.

One process per model, not per (model, fold): inference takes seconds, importing
torch and timm about four, so per-fold processes spent most of their time starting.
All folds are replaced together, or none.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from grocer import atomic, paths
from grocer.dataset import load_classes, verify_fingerprint, verify_test_set
from grocer.errors import GrocerError
from grocer.imagecache import ImageCache, load_cache
from grocer.params import Params
from grocer.predictions import read_predictions, softmax, write_predictions
from grocer.runtime import Runtime
from grocer.runtime import load as load_runtime
from grocer.training.augment import build_eval_transforms
from grocer.training.checkpoint import load_final
from grocer.training.data import Split, predict
from grocer.training.device import Precision, resolve_device, use_threads
from grocer.training.splits import read_folds


def run(params: Params, model: str) -> None:
    params = params.for_model(model)
    classes = load_classes()
    verify_test_set(params.data)
    cache = load_cache()
    verify_fingerprint(cache.test_fingerprint, paths.CACHE_DIR)
    runtime = load_runtime()
    use_threads(runtime.threads)
    with atomic.replace_dir(paths.model_predictions_dir(model)) as tmp:
        for fold in params.run.folds:
            infer_fold(params, runtime, model, fold, classes, cache, tmp / paths.infer_dir(model, fold).name)


def infer_fold(params: Params, runtime: Runtime, model: str, fold: int, classes: list[str], cache: ImageCache,
               out: Path) -> None:
    """The TTA predictions of train item (model, fold), written into the directory `out`."""
    item_dir = paths.train_item_dir(model, fold)
    device = resolve_device(runtime.device)
    trained = load_final(item_dir, device)
    if trained.classes != classes:
        raise GrocerError(f"{item_dir}: trained on classes {trained.classes[:4]}..., {paths.CLASSES} now has "
                          f"{classes[:4]}...; rerun `dvc repro train@{model}-{fold}`")
    table = read_folds(classes, fold)
    oof_ids = table.loc[table["fold"] == fold, "image_id"].tolist()
    trained_on = read_predictions(paths.prediction_table(item_dir, "oof"), classes).ids
    if sorted(trained_on) != sorted(oof_ids):
        raise GrocerError(f"{item_dir}: validated on other rows than fold {fold} of {paths.FOLDS}; "
                          f"rerun `dvc repro train@{model}-{fold}`")

    transform = build_eval_transforms(trained.img_size, trained.view)
    precision = Precision(device, params.train.amp, sam=False)

    def tta(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
        split = Split(images, rows, np.zeros(len(rows), dtype=np.int64))
        return predict(trained.model, split, transform, trained.prep, runtime.eval_batch_size, params.tta.mode,
                       precision)

    oof_logits = tta(cache.train, cache.train_rows(oof_ids))
    test_logits = tta(cache.test, np.arange(len(cache.test_ids)))
    out.mkdir(parents=True)
    write_predictions(paths.prediction_table(out, "oof"), oof_ids, oof_logits, softmax(oof_logits), classes)
    write_predictions(paths.prediction_table(out, "test"), cache.test_ids, test_logits, softmax(test_logits), classes,
                      cache.test_fingerprint)
    atomic.write_json(out / paths.infer_meta(model, fold).name, {
        "test_fingerprint": cache.test_fingerprint, "tta": params.tta.mode, "model": model, "fold": fold,
        "n_oof": len(oof_ids), "n_test": len(cache.test_ids),
    })
