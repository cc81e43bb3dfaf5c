"""Render the planned sample and write it: the dataset, the truth, the demo review journal.

Layout written (the data contract of `grocer.dataset`):

    <dataset_dir>/train.csv              image_id,label,group
    <dataset_dir>/train/<label>/<image_id>
    <dataset_dir>/test.csv               image_id
    <dataset_dir>/test_images/<image_id>
    <dataset_dir>/sample_submission.csv  image_id,label   (label: the first class, a placeholder)
    <truth_dir>/train_truth.csv          image_id,true_label,defect,duplicate_of
    <truth_dir>/test_labels.csv          image_id,label,group
    <truth_dir>/groups.csv               group,label,variety,packed,test_only,background
    <truth_dir>/review_intended.csv      image_id,action,new_label   (what the demo session means)
    <review_dir>/demo.jsonl              the demo review session (grocer.review.journal format)

Image ids are file names with their extension: `tr_00001.jpg` ... in train,
`te_00001.jpg` ... in test (5 digits, more if needed), numbered in a seeded random
order so an id tells nothing about class, group or defect. Every image is a JPEG.

Every photo has its own RNG keyed by (seed, split, shot index), so the output is
byte-identical for the same params whatever the number of worker processes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from grocer import atomic, paths
from grocer.images import file_sha256
from grocer.parallel import map_in_processes
from grocer.params import SampleParams
from grocer.review import journal
from grocer.sample.defects import blank_image, shrink, truncate
from grocer.sample.demo_review import SESSION, Listed, build_session
from grocer.sample.groups import CLASSES, GROUPS
from grocer.sample.plan import Entry, Plan, Shot, make_plan
from grocer.sample.scene import Style, render_photo, sample_style


@dataclass(frozen=True)
class _Job:
    seed: int
    shot: Shot
    style: Style


def _render(job: _Job) -> bytes:
    """One shot's JPEG bytes."""
    shot, style = job.shot, job.style
    rng = np.random.default_rng([job.seed, 2, 0 if shot.split == "train" else 1, shot.index])
    if shot.kind == "blank":
        rgb = blank_image(rng, style.size)
    else:
        rgb = render_photo(rng, shot.label, shot.group.look, style, shot.group.packed)
        if shot.kind == "too_small":
            rgb = shrink(rng, rgb)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=int(rng.integers(style.quality[0], style.quality[1] + 1)))
    data = buffer.getvalue()
    return truncate(rng, data) if shot.kind == "unreadable" else data


def render_all(seed: int, shots: list[Shot], styles: dict[str, Style], workers: int) -> list[bytes]:
    jobs = [_Job(seed, shot, styles[shot.station]) for shot in shots]
    return list(map_in_processes(_render, jobs, workers))


def _ids(rng: np.random.Generator, prefix: str, n: int) -> list[str]:
    width = max(5, len(str(n)))
    return [f"{prefix}_{k + 1:0{width}d}.jpg" for k in rng.permutation(n)]


def generate(sample: SampleParams, dataset_dir: Path, truth_dir: Path, review_dir: Path, workers: int = 1) -> Plan:
    """Write the whole sample; the three directories are replaced whole, together, or not at all."""
    plan = make_plan(sample)
    styles = {g.code: sample_style(np.random.default_rng([sample.seed, 1, i]), sample.img_size)
              for i, g in enumerate(GROUPS)}
    train_bytes = render_all(sample.seed, plan.train_shots, styles, workers)
    test_bytes = render_all(sample.seed, plan.test_shots, styles, workers)
    id_rng = np.random.default_rng([sample.seed, 4])
    train_ids, test_ids = _ids(id_rng, "tr", len(plan.train)), _ids(id_rng, "te", len(plan.test))

    with atomic.together() as staged:
        data_tmp, truth_tmp, review_tmp = staged.dir(dataset_dir), staged.dir(truth_dir), staged.dir(review_dir)
        listed = _write_train(data_tmp, plan.train, train_ids, train_bytes)
        _write_test(data_tmp, plan.test, test_ids, test_bytes)
        _write_truth(truth_tmp, plan, train_ids, test_ids, styles)
        events, intended = build_session(np.random.default_rng([sample.seed, 3]), listed, list(CLASSES))
        for event in events:
            journal.append(paths.session_journal(SESSION, review_tmp), event)
        atomic.write_frame(truth_tmp / "review_intended.csv", pd.DataFrame(
            [(i.image_id, i.action, i.new_label or "") for i in intended], columns=["image_id", "action", "new_label"]))
    return plan


def _write_train(root: Path, entries: list[Entry], ids: list[str], data: list[bytes]) -> list[Listed]:
    listed = []
    for image_id, entry in zip(ids, entries):
        path = root / "train" / entry.label / image_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[entry.shot])
        listed.append(Listed(image_id, entry.label, entry.true_label, entry.defect, file_sha256(path)))
    table = pd.DataFrame({"image_id": ids, "label": [e.label for e in entries], "group": [e.group for e in entries]})
    atomic.write_frame(root / "train.csv", table.sort_values("image_id"))
    return sorted(listed, key=lambda r: r.image_id)


def _write_test(root: Path, entries: list[Entry], ids: list[str], data: list[bytes]) -> None:
    (root / "test_images").mkdir(parents=True, exist_ok=True)
    for image_id, entry in zip(ids, entries):
        (root / "test_images" / image_id).write_bytes(data[entry.shot])
    ordered = sorted(ids)
    atomic.write_frame(root / "test.csv", pd.DataFrame({"image_id": ordered}))
    atomic.write_frame(root / "sample_submission.csv", pd.DataFrame({"image_id": ordered, "label": CLASSES[0]}))


def _write_truth(root: Path, plan: Plan, train_ids: list[str], test_ids: list[str], styles: dict[str, Style]) -> None:
    truth = pd.DataFrame({
        "image_id": train_ids,
        "true_label": [e.true_label for e in plan.train],
        "defect": [e.defect for e in plan.train],
        "duplicate_of": [train_ids[e.duplicate_of] if e.duplicate_of is not None else "" for e in plan.train],
    })
    atomic.write_frame(root / paths.SAMPLE_TRAIN_TRUTH.name, truth.sort_values("image_id"))
    labels = pd.DataFrame(
        {"image_id": test_ids, "label": [e.label for e in plan.test], "group": [e.group for e in plan.test]}
    )
    atomic.write_frame(root / paths.SAMPLE_TEST_LABELS.name, labels.sort_values("image_id"))
    groups = pd.DataFrame([
        {"group": g.code, "label": g.label, "variety": g.variety, "packed": g.packed,
         "test_only": g.test_only, "background": styles[g.code].background} for g in GROUPS
    ])
    atomic.write_frame(root / "groups.csv", groups)

