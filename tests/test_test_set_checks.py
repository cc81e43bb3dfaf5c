"""Every stage that reads test data or test predictions checks the test files against ingest's
fingerprint, and test predictions against the fingerprint they were made from; the message
names the first differing image and what differs (changed / missing / new)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from grocer import paths
from grocer.dataset import fingerprint_record, verify_test_set
from grocer.errors import GrocerError
from grocer.images import file_sha256
from grocer.stages import audit, blend, cache, infer, ingest, override, pair, report, stack, submit
from support.ensemble_project import params_for, run_chain, write_project
from support.params import tiny_params
from support.training_project import write_training_inputs

RAW = Path("data/raw")


@pytest.fixture
def ingested(project: Path, raw_params):
    ingest.run(raw_params)
    return raw_params


def change(kind: str) -> str:
    """Change the test set as a user might after ingest; the image that differs."""
    if kind == "changed":
        Image.new("RGB", (64, 64), (1, 2, 3)).save(RAW / "test_images" / "te_004.png")
        return "te_004.png"
    if kind == "missing":
        (RAW / "test_images" / "te_002.png").unlink()
        return "te_002.png"
    shutil.copy(RAW / "test_images" / "te_001.png", RAW / "test_images" / "te_100.png")
    for table, line in (("test.csv", "te_100.png\n"), ("sample_submission.csv", "te_100.png,class0\n")):
        (RAW / table).write_text((RAW / table).read_text() + line)
    return "te_100.png"


@pytest.mark.parametrize("kind", ["changed", "missing", "new"])
def test_verify_names_the_image_and_what_differs(ingested, kind: str):
    verify_test_set(ingested.data)  # as ingest left it: fine
    image = change(kind)
    with pytest.raises(GrocerError, match=rf"^test set changed since ingest: test image {image} {kind}; run"):
        verify_test_set(ingested.data)


@pytest.mark.parametrize("kind", ["missing", "new"])
def test_cache_names_a_deleted_or_added_test_image(ingested, kind: str):
    image = change(kind)
    with pytest.raises(GrocerError, match=rf"test image {image} {kind}"):
        cache.run(ingested)
    assert not paths.CACHE_DIR.exists()


@pytest.fixture
def chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The ensemble chain run once on the synthetic project of test_stages_ensemble."""
    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    run_chain(params_for())
    audit.run(params_for())
    return tmp_path


STAGES = {"blend": blend, "stack": stack, "override": override, "submit": submit, "audit": audit, "report": report}


@pytest.mark.parametrize("name", STAGES)
def test_every_ensemble_stage_refuses_a_changed_test_image(chain: Path, name: str):
    image = paths.SAMPLE_DIR / "test_images" / "te007.jpg"
    image.write_bytes(image.read_bytes() + b"\0")
    with pytest.raises(GrocerError, match=r"test image te007\.jpg changed"):
        STAGES[name].run(params_for())


def test_submit_refuses_predictions_of_the_test_set_before_a_reingest(chain: Path):
    before = paths.SUBMISSION.read_bytes()
    image = paths.SAMPLE_DIR / "test_images" / "te007.jpg"
    image.write_bytes(image.read_bytes() + b"\0")
    record = json.loads(paths.TEST_FINGERPRINT.read_text())  # what a re-ingest records
    ids = sorted(record["files"])
    paths.TEST_FINGERPRINT.write_text(json.dumps(fingerprint_record(
        ids, [file_sha256(paths.SAMPLE_DIR / "test_images" / i) for i in ids])))
    with pytest.raises(GrocerError, match=r"override/test\.parquet: built from a different test set"):
        submit.run(params_for())
    assert paths.SUBMISSION.read_bytes() == before


@pytest.mark.parametrize("stage", ["infer", "pair"])
def test_infer_and_pair_refuse_a_changed_test_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str):
    write_training_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    (paths.SAMPLE_DIR / "test_images" / "te_0002").write_bytes(b"not the image ingest saw")
    with pytest.raises(GrocerError, match=r"test image te_0002 changed"):
        if stage == "infer":
            infer.run(tiny_params(run={"folds": [0]}), "convnext")
        else:
            pair.run(tiny_params(), "class0-class1", 0)


@pytest.mark.parametrize("name", ["stack", "override"])
def test_a_pair_experts_test_table_from_another_test_set_is_refused(chain: Path, name: str):
    table_path = paths.prediction_table(paths.pair_item_dir("c0-c1", 1), "test")
    table = pd.read_parquet(table_path)
    table.attrs["test_fingerprint"] = "0" * 64
    table.to_parquet(table_path, index=False)
    with pytest.raises(GrocerError, match=r"pairs/c0-c1/f1/test\.parquet: built from a different test set"):
        STAGES[name].run(params_for())
