"""Training throughput: the project's loop against a bare loop, and the peak memory of one train item.

Usage (from the project root):

    .venv/bin/python benchmarks/train_throughput.py [--model convnext] [--epochs 2] [--rounds 3]
                                                     [--images 1200] [--cache data/prepared/cache] [--no-rss]

1. Project loop: grocer.training.loop.fit with params.yaml's `train:` recipe and `aug:`
   profile on uint8 cache images (sampler, albumentations per image, collation,
   normalisation on the batch, mixup/CutMix, schedule, clipping, SAM/SWA as configured).
   Images/s over the training phases of epochs 2..E (the first one warms up; validation
   time is excluded). The two loops alternate for --rounds rounds from the same weights.
2. Bare loop: the same model (same initial weights), batch size, resolution, torch threads
   (the runtime setting `threads`) and optimizer (AdamW with the same parameter groups, same loss), on
   batches preloaded as normalised float tensors: forward, loss, backward, optimizer step
   and nothing else. For reference, the bare loop also runs with torch's default threads.
3. Peak RSS of one `grocer train` process (a whole train item, in a temporary project
   holding the same images), read from getrusage after it exits.

The images are the real cache's training rows when --cache exists, else procedural ones.
Prints both rates, their ratio (target >= 0.85 on 2 CPU cores) and the peak RSS (target
<= 2 GiB). The machine should be otherwise idle: other processes skew every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from grocer import params as params_module
from grocer import paths, runtime
from grocer.imagecache import load_cache, save_cache
from grocer.training.augment import build_eval_transforms, build_train_transforms
from grocer.training.data import Preprocess, Split
from grocer.training.device import use_threads
from grocer.training.loop import FitConfig, fit, make_optimizer
from grocer.training.models import create_model, eval_view, normalization
from grocer.training.objectives import MultiClass, balanced_class_weights

N_CLASSES = 12


def procedural_images(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Coloured discs on noise, one hue per class: (n, size, size, 3) uint8 and labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % N_CLASSES
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = rng.integers(40, 200, (n, size, size, 3), dtype=np.uint8)
    for i, k in enumerate(labels):
        colour = 127 + 110 * np.cos(2 * np.pi * (k / N_CLASSES + np.arange(3) / 3))
        disc = (xx - 0.5) ** 2 + (yy - 0.5) ** 2 < rng.uniform(0.05, 0.12)
        images[i][disc] = colour.astype(np.uint8)
    return images, labels


def load_images(cache_dir: Path, n: int, size: int) -> tuple[np.ndarray, np.ndarray, str]:
    if (cache_dir / "index.json").is_file():
        cache = load_cache(cache_dir)
        take = min(n, len(cache.train_ids))
        folds = pd.read_csv(paths.FOLDS).set_index("image_id") if paths.FOLDS.is_file() else None
        if folds is not None:
            labels = pd.factorize(folds.loc[cache.train_ids[:take], "label"], sort=True)[0]
        else:
            labels = np.arange(take) % N_CLASSES
        return np.ascontiguousarray(cache.train[:take]), labels.astype(np.int64), f"{cache_dir} ({take} images)"
    images, labels = procedural_images(n, size)
    return images, labels, f"procedural ({n} images)"


def project_loop(model, params, name: str, images, labels, epochs: int, state_file: Path) -> tuple[float, float]:
    """(images, seconds) of fit's training phases after the first epoch."""
    entry = params.zoo[name]
    size = entry.img_size or params.train.img_size
    mean, std = normalization(model)
    prep = Preprocess(mean, std, entry.channels_last, torch.device("cpu"))
    n_classes = int(labels.max()) + 1
    weights = balanced_class_weights(labels, n_classes) if params.train.class_weights else None
    objective = MultiClass(n_classes, None if weights is None else torch.tensor(weights, dtype=torch.float32),
                           params.train.label_smoothing)
    cfg = FitConfig.from_params(params.train, epochs, runtime.load())  # SWA only if train.swa_start < epochs
    train = Split(images, np.arange(len(labels)), labels)
    val = Split(images, np.arange(min(64, len(labels))), labels[:64])
    view = eval_view(model)
    transforms = (build_train_transforms(params.aug, size, view), build_eval_transforms(size, view))
    result = fit(model, objective, train, val, transforms, cfg, prep, state_file, "bench", "bench")
    timed = result.history[1:]
    return sum(r["train_images"] for r in timed), sum(r["train_seconds"] for r in timed)


def bare_loop(model, params, name: str, images, labels, epochs: int) -> tuple[float, float]:
    """(images, seconds) of forward + loss + backward + AdamW step on preloaded normalised tensors,
    epochs after the first."""
    entry = params.zoo[name]
    size = entry.img_size or params.train.img_size
    mean, std = normalization(model)
    prep = Preprocess(mean, std, entry.channels_last, torch.device("cpu"))
    transform = build_eval_transforms(size, eval_view(model))
    batch_size = params.train.batch_size
    x_all = prep(torch.from_numpy(np.stack([transform(image=image)["image"] for image in images])))
    y_all = torch.from_numpy(labels)
    objective = MultiClass(int(labels.max()) + 1, None, params.train.label_smoothing)
    optimizer = make_optimizer(model, params.train.lr, params.train.weight_decay)
    model.train()
    steps = len(labels) // batch_size
    seen, seconds = 0, 0.0
    for epoch in range(epochs):
        started = time.perf_counter()
        for step in range(steps):
            x = x_all[step * batch_size:(step + 1) * batch_size]
            y = y_all[step * batch_size:(step + 1) * batch_size]
            loss = objective.loss(model(x), objective.targets(y))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if epoch > 0:  # same warm-up rule as the project loop
            seen += steps * batch_size
            seconds += time.perf_counter() - started
    return seen, seconds


def train_item_peak_rss(params, name: str, images, labels, size: int) -> int:
    """Peak RSS (bytes) of `grocer train --model <model> --fold 0` in a temporary project."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ids = [f"img{i:05d}" for i in range(len(labels))]
        classes = [f"class{k:02d}" for k in range(int(labels.max()) + 1)]
        (root / paths.INTERIM_DIR).mkdir(parents=True)
        (root / paths.CLASSES).write_text(json.dumps({"classes": classes}))
        (root / paths.PREPARED_DIR).mkdir(parents=True)
        pd.DataFrame({"image_id": ids, "label": [classes[k] for k in labels], "group": "",
                      "fold": np.arange(len(ids)) % params.folds.n_splits}).to_csv(root / paths.FOLDS, index=False)
        save_cache(root / paths.CACHE_DIR, images, ids, images[:8], ids[:8], size, "0" * 64)
        (root / "params.yaml").write_text(yaml.safe_dump(params.model_dump(), sort_keys=False))
        subprocess.run([sys.executable, "-m", "grocer.cli", "train", "--model", name, "--fold", "0"],
                       cwd=root, check=True, env={**os.environ, "CI": "1"})
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux reports KiB


def main(args: argparse.Namespace) -> None:
    params = params_module.load()
    entry = params.zoo[args.model]
    size = entry.img_size or params.train.img_size
    images, labels, source = load_images(Path(args.cache), args.images, params.cache.img_size)
    default_threads = torch.get_num_threads()
    settings = runtime.load()
    use_threads(settings.threads)
    threads = torch.get_num_threads()
    print(f"model {args.model} ({entry.arch}), {size}px, batch {params.train.batch_size}, aug {params.aug.profile}, "
          f"num_workers {settings.num_workers}, torch threads {threads} (default {default_threads}), "
          f"{os.cpu_count()} CPUs, images: {source}")
    torch.manual_seed(0)
    model = create_model(entry, int(labels.max()) + 1, size)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    loops = {
        "project loop": lambda state_file: project_loop(model, params, args.model, images, labels, args.epochs,
                                                        state_file),
        "bare loop": lambda _: bare_loop(model, params, args.model, images, labels, args.epochs),
    }
    totals = {name: [0.0, 0.0] for name in loops}
    with tempfile.TemporaryDirectory() as scratch:
        # alternate the loops so that a change in the machine's load hits them alike
        for round_ in range(args.rounds):
            for name, run in loops.items():
                model.load_state_dict(initial)
                seen, seconds = run(Path(scratch) / f"state{round_}.pt")
                totals[name][0] += seen
                totals[name][1] += seconds
    rates = {name: seen / seconds for name, (seen, seconds) in totals.items()}
    for name, rate in rates.items():
        print(f"{name:13s} {rate:8.1f} images/s ({threads} torch threads)")
    print(f"ratio         {rates['project loop'] / rates['bare loop']:8.3f}   (target >= 0.85)")
    if threads != default_threads:
        torch.set_num_threads(default_threads)
        model.load_state_dict(initial)
        seen, seconds = bare_loop(model, params, args.model, images, labels, args.epochs)
        print(f"for reference: bare loop with torch's default {default_threads} threads {seen / seconds:8.1f} images/s")
    if not args.no_rss:
        rss = train_item_peak_rss(params, args.model, images, labels, params.cache.img_size)
        print(f"peak RSS of one train item: {rss / 2**30:.2f} GiB   (target <= 2 GiB)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="convnext", help="zoo key (params.yaml)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per loop and round; the first is not timed")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (project loop, bare loop)")
    parser.add_argument("--images", type=int, default=1200, help="training images per epoch")
    parser.add_argument("--cache", default=str(paths.CACHE_DIR), help="image cache to take images from, if present")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS run of a whole train item")
    return parser.parse_args()


if __name__ == "__main__":
    main(parse_args())
