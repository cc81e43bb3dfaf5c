"""ingest -> clean -> folds -> cache on tiny datasets with injected defects."""

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from support.dataset import write_dataset
from support.params import deep_update, default_params_dict, make_params
from grocer import cli, paths
from grocer.errors import GrocerError
from grocer.imagecache import load_cache, save_cache
from grocer.stages import cache, clean, folds, ingest

RAW = "data/raw"


def add_train_image(root, image_id, label, image_or_bytes, group="g00"):
    target = root / "train" / label / image_id
    if isinstance(image_or_bytes, bytes):
        target.write_bytes(image_or_bytes)
    else:
        image_or_bytes.save(target)
    train = pd.read_csv(root / "train.csv")
    pd.concat([train, pd.DataFrame([{"image_id": image_id, "label": label, "group": group}])]).to_csv(
        root / "train.csv", index=False
    )


@pytest.fixture
def defective(project):
    """The tiny dataset plus one image of every defect the cleaner must catch."""
    root = project / RAW
    source = root / "train" / "class0" / "tr_0_000.png"
    good = Image.open(source)
    add_train_image(root, "small.png", "class0", good.resize((40, 40)))
    add_train_image(root, "blank.png", "class1", Image.new("RGB", (64, 64), (128, 128, 128)))
    add_train_image(root, "broken.png", "class1", source.read_bytes()[:200])
    add_train_image(root, "copy.png", "class0", source.read_bytes())
    add_train_image(root, "crosslabel.png", "class2", (root / "train" / "class1" / "tr_1_000.png").read_bytes())
    return root


def decisions():
    return pd.read_csv(paths.CLEAN_DECISIONS, keep_default_na=False).set_index("image_id")


def test_ingest_and_clean_catch_every_defect(defective, raw_params):
    ingest.run(raw_params)
    manifest = pd.read_parquet(paths.MANIFEST)
    assert len(manifest) == 36 + 5 + 9
    broken = manifest.set_index("image_id").loc["broken.png"]
    assert not broken["readable"] and "OSError" in broken["error"]

    clean.run(raw_params)
    table = decisions()
    expected = {
        "small.png": "too_small", "blank.png": "blank", "broken.png": "unreadable",
        "crosslabel.png": "cross_label_duplicate", "tr_1_000.png": "cross_label_duplicate",
    }
    for image_id, reason in expected.items():
        assert table.loc[image_id, "decision"] == "drop", image_id
        assert reason in table.loc[image_id, "reasons"].split(";"), (image_id, table.loc[image_id, "reasons"])
    # exactly one of the byte-identical same-label pair is kept, deterministically
    pair = table.loc[["copy.png", "tr_0_000.png"]]
    assert sorted(pair["decision"]) == ["drop", "keep"]
    assert (pair["reasons"] == "duplicate").sum() == 1
    # 36 originals + copy.png, less tr_1_000 (cross-label) and one of the byte-identical pair
    assert (table["decision"] == "keep").sum() == 37 - 2
    strict = pd.read_csv(paths.clean_variant("strict"))
    assert set(strict["image_id"]) == set(table.index[table["decision"] != "drop"])
    metrics = json.loads(paths.metrics_file("clean").read_text())
    assert metrics["n_drop"] == 6 and metrics["reason_unreadable"] == 1


def test_near_duplicate_across_labels_is_quarantined(project, raw_params):
    root = project / RAW
    source = Image.open(root / "train" / "class1" / "tr_1_001.png")
    near = np.asarray(source).astype(int)
    near[:2, :2] = 255 - near[:2, :2]  # a few pixels differ: same perceptual hash, other bytes
    add_train_image(root, "near.png", "class2", Image.fromarray(near.astype(np.uint8)))
    ingest.run(raw_params)
    clean.run(raw_params)
    table = decisions()
    for image_id in ("near.png", "tr_1_001.png"):
        assert table.loc[image_id, "decision"] == "quarantine"
        assert table.loc[image_id, "reasons"] == "near_duplicate_cross_label"
    aggressive = pd.read_csv(paths.clean_variant("aggressive"))
    assert "near.png" not in set(aggressive["image_id"])
    quarantine = pd.read_csv(paths.QUARANTINE)
    assert set(quarantine["image_id"]) == {"near.png", "tr_1_001.png"}


def test_unreadable_test_image_is_an_error_and_writes_nothing(project, raw_params):
    path = project / RAW / "test_images" / "te_001.png"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(GrocerError, match=r"test image .*te_001\.png cannot be decoded"):
        ingest.run(raw_params)
    assert not paths.MANIFEST.exists()


def prepare(params):
    ingest.run(params)
    clean.run(params)
    paths.PREPARED_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy(paths.clean_variant("strict"), paths.PREPARED_TRAIN)


@pytest.mark.parametrize("strategy", ["label_group", "label", "group"])
def test_folds_strategies(project, strategy):
    params = make_params({"data": {"dir": RAW}, "folds": {"n_splits": 3, "strategy": strategy}, "run": {"folds": [0]}})
    prepare(params)
    folds.run(params)
    table = pd.read_csv(paths.FOLDS)
    assert sorted(table["fold"].unique()) == [0, 1, 2]
    spans = table.groupby("group")["fold"].nunique()
    if strategy == "group":
        assert (spans == 1).all()  # a product code never spans two folds
    else:
        assert (table.groupby("label")["fold"].nunique() == 3).all()  # every class in every fold
    folds.run(params)
    assert pd.read_csv(paths.FOLDS).equals(table)  # seeded: same folds again


def test_folds_say_nothing_of_a_label_group_key_rarer_than_the_folds(tmp_path, monkeypatch):
    write_dataset(tmp_path / RAW)
    train = pd.read_csv(tmp_path / RAW / "train.csv")
    train.loc[0, "group"] = "rare"  # a label+group key of one image, 3 folds
    train.to_csv(tmp_path / RAW / "train.csv", index=False)
    monkeypatch.chdir(tmp_path)
    params = make_params({"data": {"dir": RAW}, "folds": {"n_splits": 3, "strategy": "label_group"},
                          "run": {"folds": [0]}})
    prepare(params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        folds.run(params)
    assert not [str(w.message) for w in caught if "least populated" in str(w.message)]
    assert sorted(pd.read_csv(paths.FOLDS)["fold"].unique()) == [0, 1, 2]


def test_folds_without_groups(tmp_path, monkeypatch, capsys):
    from conftest import write_dataset

    write_dataset(tmp_path / RAW, with_groups=False)
    monkeypatch.chdir(tmp_path)
    params = make_params({"data": {"dir": RAW, "group_col": None}, "folds": {"n_splits": 3}, "run": {"folds": [0]}})
    prepare(params)
    folds.run(params)
    assert json.loads(paths.metrics_file("folds").read_text())["group_fallback"] == 1
    assert "falls back to the label" in capsys.readouterr().err
    group_params = make_params({"data": {"dir": RAW, "group_col": None}, "folds": {"n_splits": 3, "strategy": "group"},
                                "run": {"folds": [0]}})
    with pytest.raises(GrocerError, match="needs a group column"):
        folds.run(group_params)


def test_cache_holds_every_image_and_refuses_a_changed_test_set(project, raw_params):
    prepare(raw_params)
    cache.run(raw_params)
    cached = load_cache()
    assert cached.train.shape == (36, 72, 72, 3) and cached.train.dtype == np.uint8
    assert cached.test.shape == (9, 72, 72, 3)
    assert cached.train_ids == pd.read_csv(paths.PREPARED_TRAIN)["image_id"].tolist()
    row = cached.train_rows(["tr_2_005.png"])[0]
    source = np.asarray(Image.open(project / RAW / "train" / "class2" / "tr_2_005.png").convert("RGB").resize((72, 72)))
    assert np.abs(cached.train[row].astype(int) - source.astype(int)).mean() < 8
    assert np.abs(cached.train[row - 1].astype(int) - source.astype(int)).mean() > 25  # another image is far

    Image.new("RGB", (64, 64), (1, 2, 3)).save(project / RAW / "test_images" / "te_004.png")
    with pytest.raises(GrocerError, match="test set changed since ingest"):
        cache.run(raw_params)


def test_cache_writer_streams_images_and_keeps_the_old_cache_on_bad_input(tmp_path):
    def images(n, size=8):  # a generator: the writer takes one image at a time
        for i in range(n):
            yield np.full((size, size, 3), i, np.uint8)

    def ids(n):
        return [f"id{i}" for i in range(n)]

    directory = tmp_path / "cache"
    save_cache(directory, images(5), ids(5), images(2), ids(2), 8, "f" * 64)
    cached = load_cache(directory)
    assert [int(cached.train[i].mean()) for i in range(5)] == [0, 1, 2, 3, 4] and cached.test.shape == (2, 8, 8, 3)
    for train, message in ((images(4), "train cache: 4 images for 5 ids"),
                           (images(6), "train cache: more images than its 5 ids"),
                           (images(5, size=9), r"train cache: image 0 is \(9, 9, 3\) uint8, not \(8, 8, 3\) uint8")):
        with pytest.raises(ValueError, match=message):
            save_cache(directory, train, ids(5), images(2), ids(2), 8, "0" * 64)
        assert load_cache(directory).test_fingerprint == "f" * 64  # the complete old cache, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # no half-written directory left


def test_cli_turns_errors_into_one_line(project, capsys):
    (project / "params.yaml").write_text("data: {dir: 3}\n")
    assert cli.main(["ingest"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("grocer ingest: error: params.yaml: data.dir:")


def test_cache_names_a_train_image_corrupted_after_ingest(tmp_path, monkeypatch, capsys):
    write_dataset(tmp_path / RAW, per_class=30)  # 90 train images: decoded by the process pool
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump(deep_update(default_params_dict(), {"data": {"dir": RAW}})))
    prepare(make_params({"data": {"dir": RAW}}))
    broken = tmp_path / RAW / "train" / "class1" / "tr_1_007.png"
    broken.write_bytes(broken.read_bytes()[:300])
    capsys.readouterr()
    assert cli.main(["cache"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"grocer cache: error: image {RAW}/train/class1/tr_1_007.png cannot "
                                                   "be decoded (OSError: "), err
    assert err.endswith("it changed after ingest: re-run from ingest (`dvc repro`)\n")
    assert not paths.CACHE_DIR.exists()
