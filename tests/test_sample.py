"""The `sample` stage: a deterministic, contract-conforming dataset with recorded defects."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from support.params import make_params
from grocer import paths
from grocer.dataset import load_contract
from grocer.images import file_sha256
from grocer.params import DataParams, SampleParams
from grocer.review import journal, replay
from grocer.sample.defects import DEFECTS, defect_counts
from grocer.sample.draw import FAMILIES
from grocer.sample.generate import generate
from grocer.sample.groups import CLASSES, GROUPS, PARTNER
from grocer.sample.plan import make_plan
from grocer.stages import sample as sample_stage

SMALL = SampleParams(seed=3, n_train=300, n_test=60, img_size=64)


def _write(root: Path, sample: SampleParams = SMALL, workers: int = 1) -> Path:
    generate(sample, root / "sample", root / "truth", root / "review", workers=workers)
    return root


def _digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("sample"))


@pytest.fixture(scope="module")
def train(out: Path) -> pd.DataFrame:
    """train.csv joined with the truth file, with each row's file path."""
    table = _read(out / "sample" / "train.csv").merge(_read(out / "truth" / "train_truth.csv"), on="image_id")
    table["path"] = [out / "sample" / "train" / label / i for i, label in zip(table.image_id, table.label)]
    return table


def test_same_params_give_identical_bytes_whatever_the_workers(out: Path, tmp_path: Path):
    again = _write(tmp_path / "again", workers=2)
    assert _digest(again) == _digest(out)
    other = _write(tmp_path / "other", SampleParams(seed=4, n_train=300, n_test=60, img_size=64))
    assert _digest(other / "sample") != _digest(out / "sample")


def test_layout_follows_the_data_contract(out: Path):
    data = DataParams(dir=str(out / "sample"), id_col="image_id", label_col="label", group_col="group")
    contract = load_contract(data)
    assert contract.classes == list(CLASSES)
    assert len(contract.train) == SMALL.n_train and len(contract.test) == SMALL.n_test
    assert all(re.fullmatch(r"tr_\d{5}\.jpg", i) for i in contract.train.image_id)
    assert all(re.fullmatch(r"te_\d{5}\.jpg", i) for i in contract.test.image_id)
    for image_id, label, path in zip(contract.train.image_id, contract.train.label, contract.train.path):
        assert Path(path) == out / "sample" / "train" / label / image_id
    assert list(contract.sample_submission.image_id) == sorted(contract.test.image_id)
    assert contract.sample_submission.label.nunique() == 1
    sizes = {Image.open(p).size for p in contract.test.path}
    assert min(min(s) for s in sizes) == SMALL.img_size and any(w != h for w, h in sizes)


def test_every_injected_defect_is_present_and_recorded(train: pd.DataFrame):
    assert Counter(train.defect[train.defect != ""]) == defect_counts(SMALL.n_train)
    assert set(train.defect) <= {"", *DEFECTS}
    by_id = train.set_index("image_id")
    for row in train.itertuples():
        data = row.path.read_bytes()
        if row.defect == "unreadable":
            with pytest.raises(OSError), Image.open(row.path) as img:
                img.load()
            continue
        with Image.open(row.path) as img:
            img.load()
            pixels = np.asarray(img.convert("RGB"), np.float32)
        if row.defect == "too_small":
            assert min(pixels.shape[:2]) < 56
        else:
            assert min(pixels.shape[:2]) >= SMALL.img_size
        if row.defect == "blank":
            assert pixels.std() < 3
        else:
            assert pixels.std() > 10, row.image_id
        if row.defect in ("exact_duplicate", "cross_label_duplicate"):
            original = by_id.loc[row.duplicate_of]
            assert original.defect == "" and original.path.read_bytes() == data
            assert (original.label == row.label) == (row.defect == "exact_duplicate")
            assert row.true_label == original.true_label
        else:
            assert row.duplicate_of == ""
    # apart from the recorded duplicates, every file is distinct
    hashes = Counter(file_sha256(p) for p in train.path)
    copies = sum(n - 1 for n in hashes.values())
    assert copies == (train.defect.isin(["exact_duplicate", "cross_label_duplicate"])).sum()


def test_truth_labels_are_consistent(out: Path, train: pd.DataFrame):
    relabelled = train.defect.isin(["wrong_label", "cross_label_duplicate"])
    assert (train.label == train.true_label)[~relabelled].all()
    assert (train.label != train.true_label)[relabelled].all()
    assert set(train.true_label) == set(CLASSES)
    wrong = train[train.defect == "wrong_label"]
    to_partner = sum(PARTNER.get(t) == label for t, label in zip(wrong.true_label, wrong.label))
    assert to_partner > len(wrong) / 2, "wrong labels go mostly to the confusable partner"
    test_labels = _read(out / "truth" / "test_labels.csv")
    assert list(test_labels.image_id) == list(_read(out / "sample" / "test.csv").image_id)
    assert set(test_labels.label) == set(CLASSES)


def test_groups_are_product_codes_with_test_only_ones(out: Path, train: pd.DataFrame):
    groups = _read(out / "truth" / "groups.csv")
    label_of = dict(zip(groups.group, groups.label))
    test_labels = _read(out / "truth" / "test_labels.csv")
    for table in (train, test_labels):
        assert all(label_of[g] == label for g, label in zip(table.group, table.label))
    test_only = set(groups.group[groups.test_only == "True"])
    assert not test_only & set(train.group)
    share = test_labels.group.isin(test_only).mean()
    assert 0.1 <= share <= 0.25


def test_group_table_and_painters_cover_every_class():
    assert set(FAMILIES) == set(CLASSES) and len(CLASSES) == 15
    assert len({g.code for g in GROUPS}) == len(GROUPS)
    per_class = Counter(g.label for g in GROUPS)
    assert all(3 <= n <= 6 for n in per_class.values())
    assert all(any(g.label == c and not g.test_only for g in GROUPS) for c in CLASSES)
    assert {a for pair in PARTNER.items() for a in pair} <= set(CLASSES)


def test_default_size_plan_is_mildly_imbalanced():
    plan = make_plan(SampleParams(seed=7, n_train=1500, n_test=500, img_size=96))
    counts = Counter(e.label for e in plan.train)
    assert len(plan.train) == 1500 and len(plan.test) == 500
    assert 50 <= min(counts.values()) and max(counts.values()) <= 150
    assert max(counts.values()) / min(counts.values()) > 1.3
    # stations (background, light, camera) are shared across classes, so a background is no class shortcut
    classes_at: dict[str, set[str]] = {}
    for shot in plan.train_shots:
        classes_at.setdefault(shot.station, set()).add(shot.label)
    assert np.median([len(c) for c in classes_at.values()]) >= 5
    test_only = {g.code for g in GROUPS if g.test_only}
    assert not test_only & set(classes_at), "a test-only group's home station stays unseen in train"


def test_demo_journal_parses_matches_the_files_and_replays_as_intended(out: Path, train: pd.DataFrame):
    path = out / "review" / "demo.jsonl"
    events = journal.read_journal(path)
    rows = train.set_index("image_id")
    for event in events:
        assert event.sha256 == file_sha256(rows.loc[event.image_id].path)
        assert event.label == rows.loc[event.image_id].label
    actions = Counter(e.action for e in events)
    assert actions["undo"] >= 3 and actions["relabel"] >= 3 and actions["trash"] >= 3 and actions["keep"] >= 10
    verdicts = {d.event.image_id: (d.event.action, d.event.new_label or "") for d in replay.resolve([(path, events)])}
    intended = _read(out / "truth" / "review_intended.csv")
    assert verdicts == {i: (a, n) for i, a, n in zip(intended.image_id, intended.action, intended.new_label)}
    for image_id, (action, new_label) in verdicts.items():
        if action == "relabel":
            assert new_label == rows.loc[image_id].true_label != rows.loc[image_id].label


def test_stage_writes_the_project_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    params = make_params({"sample": {"seed": 1, "n_train": 200, "n_test": 50, "img_size": 64}})
    sample_stage.run(params)
    assert len(_read(paths.SAMPLE_DIR / "train.csv")) == 200
    assert len(_read(paths.SAMPLE_TEST_LABELS)) == 50
    assert paths.session_journal("demo", paths.SAMPLE_REVIEW_DIR).is_file()
    assert sorted(p.name for p in tmp_path.joinpath("data").iterdir()) == ["sample", "sample_review", "sample_truth"]


def test_stage_generates_nothing_for_real_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    """With data.dir elsewhere the outputs are one placeholder each (a demo left by an
    earlier run is replaced, so a stale sample cannot pass for the data's)."""
    monkeypatch.chdir(tmp_path)
    sample_stage.run(make_params({"sample": {"seed": 1, "n_train": 200, "n_test": 50, "img_size": 64}}))
    sample_stage.run(make_params({"data": {"dir": "data/raw"}}))
    for directory in (paths.SAMPLE_DIR, paths.SAMPLE_TRUTH_DIR, paths.SAMPLE_REVIEW_DIR):
        assert [p.name for p in directory.iterdir()] == [sample_stage.PLACEHOLDER]
        assert "data.dir is data/raw" in (directory / sample_stage.PLACEHOLDER).read_text()
    assert "the demo dataset is not generated" in capsys.readouterr().out


def test_clean_catches_the_injected_defects(out: Path, monkeypatch: pytest.MonkeyPatch):
    """ingest + clean on the generated sample: every rule-detectable defect, few clean images lost."""
    from grocer.sample.truth import clean_recall
    from grocer.stages import clean, ingest

    monkeypatch.chdir(out)
    params = make_params({"data": {"dir": "sample"}})
    ingest.run(params)
    clean.run(params)
    scores = clean_recall(_read(out / "truth" / "train_truth.csv"), _read(out / paths.CLEAN_DECISIONS))
    assert scores["recall_rule_defects"] >= 0.95, scores
    assert scores["clean_dropped_share"] <= 0.01, scores
