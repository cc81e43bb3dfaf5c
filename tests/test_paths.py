"""dvc.yaml and grocer.paths must name the same files: a path lives in both places."""

from pathlib import Path

import yaml

from support.params import REPO
from grocer import paths


def dvc_stage_paths() -> set[str]:
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    found = set()
    for stage in dvc["stages"].values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                found.add(entry if isinstance(entry, str) else next(iter(entry)))
    return found


def module_paths() -> set[str]:
    known = {str(v) for v in vars(paths).values() if isinstance(v, Path)}
    item = {"model": "${item.model}", "fold": "${item.fold}", "pair": "${item.pair}"}
    for name in ("train_item_dir", "train_metrics", "train_curves_dir", "infer_dir", "pair_item_dir", "pair_metrics",
                 "pair_curves_dir"):
        function = getattr(paths, name)
        first = "pair" if name.startswith("pair") else "model"
        known.add(str(function(item[first], item["fold"])))
    known.add(str(paths.model_predictions_dir(item["model"])))
    known |= {str(paths.clean_variant(v)) for v in ("strict", "aggressive")}
    known |= {str(paths.metrics_file(stage)) for stage in dvc_stage_names()}
    return known


def dvc_stage_names() -> list[str]:
    return list(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])


def test_every_dvc_output_is_a_grocer_path():
    unknown = sorted(p for p in dvc_stage_paths() if p not in module_paths())
    assert unknown == [], f"dvc.yaml outputs not defined in grocer/paths.py: {unknown}"


def test_data_stage_outputs_are_declared():
    declared = dvc_stage_paths()
    for path in (paths.MANIFEST, paths.CLASSES, paths.TEST_FINGERPRINT, paths.CLEAN_DIR, paths.PREPARED_TRAIN,
                 paths.REVIEW_ACTIONS, paths.FOLDS, paths.CACHE_DIR, paths.SAMPLE_DIR):
        assert str(path) in declared, path
