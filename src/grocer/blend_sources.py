"""Blend sources: predictions made outside this run, blended as extra members (`blend.sources`).

A source is a folder data/sources/<name>/ in one of two layouts:

* another revision or experiment of this repository, imported the DVC way, so the folder
  is pinned to a commit and `dvc update` moves it:
      dvc import . data/predictions/models --rev <rev> -o data/sources/<name>
  (<model>/f<k>/{oof,test}.parquet and meta.json per fold; every model is a member
  `<name>:<model>`, its OOF rows from its own folds, its test predictions the folds' mean);
* a prediction file pair oof.{parquet,csv} and test.{parquet,csv} with image_id and
  prob_<class> (a teammate's checkpoints): one member `<name>`.

Alignment is by image_id: a source must predict every OOF row of this run and exactly the
test ids, with exactly this run's classes; otherwise a GrocerError names the source. OOF
rows this run does not have (images the review removed since) are dropped and counted.
A source is `optimistic` when its OOF rows did not come from this run's folds (another
fold assignment, another train set, or a file whose folds are unknown): its models may
have trained on rows of the fold whose blend weights they get, so its weight and the
blend's OOF score lean high.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grocer import paths
from grocer.dataset import verify_fingerprint
from grocer.errors import GrocerError
from grocer.predictions import read_probabilities


@dataclass(frozen=True)
class SourceMember:
    name: str  # "<source>:<model>" or "<source>"
    source: str
    oof_probs: np.ndarray  # (n_oof, K) in this run's OOF row order
    test_probs: np.ndarray  # (n_test, K) in the given test id order
    optimistic: bool
    n_extra_oof: int  # OOF rows the source has and this run does not


def _table(folder: Path, split: str) -> Path:
    for suffix in (".parquet", ".csv"):
        if (folder / f"{split}{suffix}").is_file():
            return folder / f"{split}{suffix}"
    raise GrocerError(f"{folder}: no {split}.parquet or {split}.csv")


def _align(source: str, ids: list[str], probs: np.ndarray, wanted: list[str], split: str) -> tuple[np.ndarray, int]:
    """`probs` in the order of `wanted`; every wanted id must be there (test: and nothing else)."""
    position = {image_id: i for i, image_id in enumerate(ids)}
    missing = [i for i in wanted if i not in position]
    if missing:
        raise GrocerError(f"blend.sources: {source!r} has no {split} prediction for {len(missing)} id(s) of this run, "
                          f"e.g. {missing[:3]}")
    extra = len(ids) - len(wanted)
    if split == "test" and extra:
        raise GrocerError(f"blend.sources: {source!r} predicts {extra} test id(s) this test set does not have")
    return probs[[position[i] for i in wanted]], extra


def _file_member(source: str, folder: Path, rows_ids: list[str], test_ids: list[str], classes: list[str]):
    oof_ids, oof = read_probabilities(_table(folder, "oof"), classes)
    test_ids_found, test = read_probabilities(_table(folder, "test"), classes)
    oof, extra = _align(source, oof_ids, oof, rows_ids, "OOF")
    test, _ = _align(source, test_ids_found, test, test_ids, "test")
    return [SourceMember(source, source, oof, test, optimistic=True, n_extra_oof=extra)]


def _model_members(source: str, folder: Path, rows_ids: list[str], rows_fold: np.ndarray, test_ids: list[str],
                   classes: list[str]) -> list[SourceMember]:
    members = []
    this_fold = dict(zip(rows_ids, rows_fold.tolist()))
    for model_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        fold_dirs = sorted(p for p in model_dir.iterdir() if p.is_dir() and p.name.startswith("f"))
        if not fold_dirs:
            raise GrocerError(f"{model_dir}: no f<k>/ folders of infer outputs")
        oof_ids, oof_parts, test_parts, same_folds = [], [], [], True
        for fold_dir in fold_dirs:
            meta = fold_dir / "meta.json"
            if meta.is_file():  # the test set it predicted must be this one
                verify_fingerprint(json.loads(meta.read_text())["test_fingerprint"], meta)
            ids, probs = read_probabilities(_table(fold_dir, "oof"), classes)
            k = int(fold_dir.name[1:])
            same_folds &= all(this_fold.get(i, k) == k for i in ids)
            oof_ids += ids
            oof_parts.append(probs)
            found_test, test = read_probabilities(_table(fold_dir, "test"), classes)
            test_parts.append(_align(f"{source}:{model_dir.name}", found_test, test, test_ids, "test")[0])
        name = f"{source}:{model_dir.name}"
        oof, extra = _align(name, oof_ids, np.concatenate(oof_parts), rows_ids, "OOF")
        members.append(SourceMember(name, source, oof, np.mean(test_parts, axis=0),
                                    optimistic=bool(extra) or not same_folds, n_extra_oof=extra))
    if not members:
        raise GrocerError(f"{folder}: no <model>/f<k>/ predictions (is it an imported data/predictions/models?)")
    return members


def load_sources(sources: list[str], rows_ids: list[str], rows_fold: np.ndarray, test_ids: list[str],
                 classes: list[str]) -> list[SourceMember]:
    """Every member of every source, aligned on this run's OOF rows and test ids."""
    members: list[SourceMember] = []
    for source in sources:
        folder = paths.SOURCES_DIR / source
        if not folder.is_dir():
            raise GrocerError(f"blend.sources: {folder} does not exist (dvc import . data/predictions/models "
                              f"--rev <rev> -o {folder}, or put oof/test prediction files there)")
        if any((folder / f"oof{s}").is_file() for s in (".parquet", ".csv")):
            members += _file_member(source, folder, rows_ids, test_ids, classes)
        else:
            members += _model_members(source, folder, rows_ids, rows_fold, test_ids, classes)
    return members
