"""Stage `infer` on a tiny trained item: TTA predictions, fingerprint and staleness checks."""

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from grocer import paths
from grocer.errors import GrocerError
from grocer.imagecache import load_cache
from grocer.predictions import read_predictions, softmax
from grocer.stages import infer, train
from grocer.training.augment import build_eval_transforms
from grocer.training.checkpoint import load_final
from grocer.training.tta import views
from support.training_project import write_training_inputs
from support.params import tiny_params

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES = ["class0", "class1", "class2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A project with train@convnext-0 done (trained once for the module)."""
    root = tmp_path_factory.mktemp("trained")
    write_training_inputs(root)
    cwd, threads = os.getcwd(), torch.get_num_threads()
    os.chdir(root)
    torch.set_num_threads(1)
    try:
        train.run(tiny_params(), "convnext", 0)
    finally:
        os.chdir(cwd)
        torch.set_num_threads(threads)
    return root


@pytest.fixture
def project(trained, tmp_path, monkeypatch):
    """A private copy of the trained project as the cwd."""
    shutil.copytree(trained, tmp_path / "p")
    monkeypatch.chdir(tmp_path / "p")
    return tmp_path / "p"


def fold_ids(fold):
    folds = pd.read_csv(paths.FOLDS)
    return folds.loc[folds["fold"] == fold, "image_id"].tolist()


def test_infer_writes_tta_predictions_for_oof_rows_and_test(project):
    infer.run(tiny_params(tta={"mode": "flip"}, run={"folds": [0]}), "convnext")
    out = paths.infer_dir("convnext", 0)
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "oof.parquet", "test.parquet"]
    meta = json.loads(paths.infer_meta("convnext", 0).read_text())
    fingerprint = json.loads(paths.TEST_FINGERPRINT.read_text())["sha256"]
    assert meta["test_fingerprint"] == fingerprint and meta["tta"] == "flip"
    assert read_predictions(out / "test.parquet", CLASSES).test_fingerprint == fingerprint
    oof = read_predictions(out / "oof.parquet", CLASSES)
    test = read_predictions(out / "test.parquet", CLASSES)
    cache = load_cache()
    assert oof.ids == fold_ids(0) and test.ids == cache.test_ids
    assert np.allclose(test.probs, softmax(test.logits), atol=1e-6)

    # flip TTA = mean of the logits of the image and of its mirror, by hand
    trained = load_final(paths.train_item_dir("convnext", 0), torch.device("cpu"))
    transform = build_eval_transforms(trained.img_size, trained.view)
    batch = torch.from_numpy(np.stack([transform(image=image)["image"] for image in cache.test]))
    with torch.no_grad():
        x = trained.prep(batch)
        expected = sum(trained.model(trained.prep.layout(v.apply(x))) for v in views("flip")) / 2
    assert np.allclose(test.logits, expected.numpy(), atol=1e-5)

    # without TTA the OOF logits are the train item's own OOF logits
    infer.run(tiny_params(tta={"mode": "none"}, run={"folds": [0]}), "convnext")
    plain = read_predictions(paths.infer_dir("convnext", 0) / "oof.parquet", CLASSES)
    own = read_predictions(paths.train_item_dir("convnext", 0) / "oof.parquet", CLASSES)
    assert np.allclose(plain.logits, own.logits, atol=1e-5)
    assert not np.allclose(plain.logits, oof.logits, atol=1e-5)


def test_infer_refuses_another_test_set(project):
    record = json.loads(paths.TEST_FINGERPRINT.read_text())
    paths.TEST_FINGERPRINT.write_text(json.dumps({**record, "sha256": "0" * 64}))  # the cache's is another set's
    with pytest.raises(GrocerError, match="different test set"):
        infer.run(tiny_params(run={"folds": [0]}), "convnext")
    assert not paths.infer_dir("convnext", 0).exists()


def test_infer_refuses_a_stale_or_missing_item(project):
    with pytest.raises(GrocerError, match="has the item's train stage run"):
        infer.run(tiny_params(), "convnext")  # run.folds [0, 1]: fold 1 was never trained
    assert not paths.model_predictions_dir("convnext").exists()  # fold 0's predictions are not written alone
    paths.CLASSES.write_text(json.dumps({"classes": ["class0", "class1", "class2", "class3"]}))
    with pytest.raises(GrocerError, match="trained on classes"):
        infer.run(tiny_params(run={"folds": [0]}), "convnext")
    paths.CLASSES.write_text(json.dumps({"classes": CLASSES}))
    folds = pd.read_csv(paths.FOLDS)
    folds["fold"] = 1 - folds["fold"]
    folds.to_csv(paths.FOLDS, index=False)
    with pytest.raises(GrocerError, match="validated on other rows"):
        infer.run(tiny_params(run={"folds": [0]}), "convnext")
