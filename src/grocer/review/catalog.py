"""What the review page shows: the reviewable images, their clean flags and model hints.

Reviewable: every train image that `clean` did not drop, i.e. the rows of the chosen
variant plus, in the aggressive variant, the quarantined ones (a human keep brings
those back, see `grocer.stages.review`). Labels, sizes and groups come from the
manifest, flags from clean's decisions.csv.

Model hints come from out-of-fold predictions, the first that exists of:
`data/predictions/blend/oof.parquet`, the mean over `data/predictions/models/*/f*/oof.parquet`,
the mean over `models/*/fold*/oof.parquet`. "Likely errors first" orders each class by
cleanlab's label-quality score (`cleanlab.rank.get_label_quality_scores`, self-confidence:
the predicted probability of the given label), lowest first; images without a
prediction follow in file order. OOF tables that do not fit the current class list
(made before a data change) are left out with a warning: the page starts without hints.

Duplicate groups are the clean stage's (`grocer.cleaning.duplicates`, recomputed from
the manifest with `clean.phash_radius`), including the members clean dropped as
copies, so the duplicates view can show a group whole; the single and grid queues
hold only the images clean did not drop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from grocer import paths
from grocer.cleaning.duplicates import duplicate_groups
from grocer.dataset import read_csv, split_rows
from grocer.errors import GrocerError
from grocer.params import Params
from grocer.predictions import read_predictions

ORDERS = ("likely_errors", "file")
HINTS = 4  # classes shown in the hint box: the current one, then the likeliest others
OOF_COMMAND = "dvc repro blend"  # brings hints back after a data change


@dataclass(frozen=True)
class Item:
    image_id: str
    label: str
    group: str
    sha256: str  # the file's sha256 in the manifest: the thumbnail cache key
    path: Path  # absolute or relative to the cwd: what the server opens
    width: int
    height: int
    flags: tuple[str, ...]  # e.g. ("quarantine", "outlier"); empty for a plain keep
    in_variant: bool  # False: quarantined out of the aggressive variant
    probs: np.ndarray | None  # OOF probabilities in class order, or None

    def hints(self, classes: list[str]) -> list[dict]:
        """The current class first, then the likeliest others, with probabilities."""
        if self.probs is None:
            return []
        current = classes.index(self.label)
        others = [k for k in np.argsort(-self.probs, kind="stable") if k != current][: HINTS - 1]
        return [
            {"class": classes[k], "p": round(float(self.probs[k]), 4), "current": bool(k == current)}
            for k in [current, *others]
        ]

    def badge(self, classes: list[str]) -> dict | None:
        """The model's top class and its probability; `doubted` when it is not the label."""
        if self.probs is None:
            return None
        top = int(np.argmax(self.probs))
        return {"class": classes[top], "p": round(float(self.probs[top]), 4), "doubted": classes[top] != self.label}

    @property
    def dropped(self) -> bool:
        """Dropped by clean (only duplicate-group members are in the catalog then)."""
        return self.flags[:1] == ("drop",)

    def relabel_choices(self, classes: list[str]) -> list[str]:
        """Every other class, the model's likeliest first (alphabetical without predictions)."""
        others = [c for c in classes if c != self.label]
        if self.probs is None:
            return others
        return sorted(others, key=lambda c: -float(self.probs[classes.index(c)]))


@dataclass(frozen=True)
class Catalog:
    classes: list[str]
    items: dict[str, Item]  # by image id
    queues: dict[str, list[str]]  # class -> image ids in review order (never a dropped image)
    order: str  # the order actually used ("file" when there are no predictions)
    predictions: str | None  # where the hints come from, for the page
    quarantine: list[str]  # image ids clean quarantined, in file order
    duplicates: list[list[str]]  # duplicate groups, cross-label ones first; the keeper first in each
    warning: str | None = None  # why there are no hints although OOF tables exist

    @property
    def total(self) -> int:
        """Images in the review queues."""
        return sum(len(q) for q in self.queues.values())


def find_oof(root: Path) -> tuple[list[Path], str] | None:
    """The OOF files to use and a description of them, or None when there are none."""
    blend = paths.prediction_table(paths.BLEND_DIR, "oof")
    if (root / blend).is_file():
        return [root / blend], str(blend)
    for base, item_dir in [(paths.MODEL_PREDICTIONS_DIR, paths.infer_dir), (paths.MODELS_DIR, paths.train_item_dir)]:
        every_item = paths.prediction_table(item_dir("*", "*"), "oof")  # a glob: any model, any fold
        files = sorted(root.glob(str(every_item)))
        if files:
            models = sorted({f.parent.parent.name for f in files})
            tables = f"{len(files)} OOF table{'s' if len(files) > 1 else ''}"
            return files, f"mean of {tables} under {base}/ ({', '.join(models)})"
    return None


def mean_probs(files: list[Path], classes: list[str]) -> pd.DataFrame:
    """Image id -> probabilities (class columns), averaged over every table that has the id."""
    frames = []
    for path in files:
        table = read_predictions(path, classes)
        frames.append(pd.DataFrame(table.probs, index=pd.Index(table.ids, name="image_id"), columns=classes))
    mean = pd.concat(frames).groupby(level="image_id").mean()
    return mean.div(mean.sum(axis=1), axis=0)


def label_quality(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """cleanlab's label-quality score per image (0 = surely mislabelled, 1 = surely right)."""
    from cleanlab.rank import get_label_quality_scores  # imported here: cleanlab is slow to import

    return get_label_quality_scores(labels=labels, pred_probs=probs)


def load_catalog(params: Params, order: str, root: Path = Path(".")) -> Catalog:
    """Everything the page needs, from the project at `root`."""
    if order not in ORDERS:
        raise GrocerError(f"order {order!r} is unknown; allowed: {', '.join(ORDERS)}")
    manifest_path = root / paths.MANIFEST
    if not manifest_path.is_file():
        raise GrocerError(f"{paths.MANIFEST}: missing; run `dvc repro clean` first")
    manifest = pd.read_parquet(manifest_path)
    train = split_rows(manifest, "train").set_index("image_id")
    classes_file = root / paths.CLASSES
    if not classes_file.is_file():
        raise GrocerError(f"{paths.CLASSES}: missing; run `dvc repro ingest` first")
    classes = json.loads(classes_file.read_text())["classes"]
    for table in (paths.CLEAN_DECISIONS, paths.clean_variant(params.clean.variant)):
        if not (root / table).is_file():
            raise GrocerError(f"{table}: missing; run `dvc repro clean` first")
    decisions = read_csv(root / paths.CLEAN_DECISIONS, ["image_id", "label", "decision"])
    if "reasons" not in decisions.columns:
        raise GrocerError(f"{paths.CLEAN_DECISIONS}: missing column 'reasons'")
    variant = set(read_csv(root / paths.clean_variant(params.clean.variant), ["image_id", "label"])["image_id"])
    reviewable = decisions[decisions["decision"] != "drop"]
    unknown = sorted(set(reviewable["image_id"]) - set(train.index))
    if unknown:
        raise GrocerError(f"{paths.CLEAN_DECISIONS}: image {unknown[0]!r} is not in {paths.MANIFEST}; re-run `dvc repro clean`")

    oof = find_oof(root)
    probs, warning = None, None
    if oof:
        try:
            probs = mean_probs(oof[0], classes)
        except GrocerError as exc:  # e.g. made with another class list, before a data change
            warning = f"no hints: {exc}; `{OOF_COMMAND}` brings them back"
            oof = None
    groups = group_members(train, decisions, params.clean.phash_radius)
    in_groups = {i for members in groups for i in members}
    shown = decisions[(decisions["decision"] != "drop") | decisions["image_id"].isin(in_groups)]
    rows = shown[["image_id", "decision", "reasons"]].join(
        train[["label", "group", "path", "width", "height", "file_sha256"]], on="image_id"
    )
    items: dict[str, Item] = {}
    for row in rows.itertuples(index=False):
        reasons = tuple(r for r in row.reasons.split(";") if r)
        has_probs = probs is not None and row.image_id in probs.index
        items[row.image_id] = Item(
            image_id=row.image_id, label=str(row.label), group="" if pd.isna(row.group) else str(row.group),
            sha256=str(row.file_sha256), path=root / row.path, width=int(row.width), height=int(row.height),
            flags=(row.decision, *reasons) if row.decision != "keep" or reasons else (),
            in_variant=row.image_id in variant,
            probs=probs.loc[row.image_id].to_numpy(np.float64) if has_probs else None,
        )
    used = order if probs is not None else "file"
    quarantine = [i for i in reviewable["image_id"] if items[i].flags[:1] == ("quarantine",)]
    return Catalog(
        classes, items, review_queues(items, classes, used), used, oof[1] if oof else None,
        quarantine, groups, warning,
    )


def group_members(train: pd.DataFrame, decisions: pd.DataFrame, radius: int) -> list[list[str]]:
    """clean's duplicate groups among the images it decided on: cross-label groups first,
    then by size (largest first) and keeper id; within a group the keeper first."""
    readable = train[train["readable"].astype(bool)].loc[lambda t: t.index.isin(decisions["image_id"])]
    if readable.empty:
        return []
    dups = duplicate_groups(readable.reset_index(), radius).set_index(readable.index)
    groups = []
    for _, members in dups[dups["dup_group"] >= 0].groupby("dup_group"):
        ordered = [*members.index[members["keeper"]], *sorted(members.index[~members["keeper"]])]
        groups.append((not bool(members["cross_label"].iloc[0]), -len(ordered), ordered[0], ordered))
    return [ordered for *_, ordered in sorted(groups)]


def review_queues(items: dict[str, Item], classes: list[str], order: str) -> dict[str, list[str]]:
    """Per class, image ids in review order (file order, or lowest label quality first)."""
    queues: dict[str, list[str]] = {c: [] for c in classes}
    for image_id, item in items.items():
        if not item.dropped:
            queues[item.label].append(image_id)
    if order == "file":
        return queues
    scored = [i for i in items.values() if i.probs is not None and not i.dropped]
    if not scored:
        return queues
    scores = label_quality(
        np.array([classes.index(i.label) for i in scored]), np.stack([i.probs for i in scored])
    )
    score = {i.image_id: float(s) for i, s in zip(scored, scores)}
    for label, ids in queues.items():
        position = {image_id: k for k, image_id in enumerate(ids)}
        # stable: unscored images after the scored ones, each part in file order
        queues[label] = sorted(ids, key=lambda i: (i not in score, score.get(i, 0.0), position[i]))
    return queues
