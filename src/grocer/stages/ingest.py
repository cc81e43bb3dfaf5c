"""Stage `ingest`: validate the data contract and measure every image once.

Writes the manifest (one row per train and test image with its measurements),
the class list, the test-set fingerprint that later stages verify, and
metrics/ingest.json. A train image that cannot be decoded is recorded
(`readable=False`) for `clean` to drop; a test image that cannot be decoded is an
error, since the submission needs a prediction for every test id.
"""

from __future__ import annotations

import pandas as pd

from grocer import atomic, paths
from grocer.dataset import Contract, fingerprint_record, load_contract, split_rows
from grocer.errors import GrocerError
from grocer.images import inspect_image
from grocer.parallel import map_in_processes
from grocer.params import Params


def measure(image_paths: list[str]) -> pd.DataFrame:
    """inspect_image for every path, on every core, in input order."""
    return pd.DataFrame(list(map_in_processes(inspect_image, image_paths)))


def build_manifest(contract: Contract) -> pd.DataFrame:
    tables = [
        contract.train.assign(split="train"),
        contract.test.assign(split="test", label=None, group=None),
    ]
    listing = pd.concat(tables, ignore_index=True)[["split", "image_id", "label", "group", "path"]]
    listing["group"] = listing["group"].astype(object).where(listing["group"].notna(), None)
    return pd.concat([listing, measure(list(listing["path"]))], axis=1)


def ingest_metrics(manifest: pd.DataFrame, classes: list[str]) -> dict:
    train = split_rows(manifest, "train")
    readable = manifest[manifest["readable"]]
    short_side = readable[["width", "height"]].min(axis=1)
    return {
        "n_train": int(len(train)),
        "n_test": len(split_rows(manifest, "test")),
        "n_classes": len(classes),
        "n_groups": int(train["group"].nunique()),
        "n_unreadable": int((~manifest["readable"]).sum()),
        "min_side_min": int(short_side.min()),
        "min_side_median": float(short_side.median()),
        "class_count_min": int(train["label"].value_counts().min()),
        "class_count_max": int(train["label"].value_counts().max()),
    }


def run(params: Params) -> None:
    contract = load_contract(params.data)
    manifest = build_manifest(contract)

    test = split_rows(manifest, "test")
    bad_test = test[~test["readable"]]
    if len(bad_test):
        first = bad_test.iloc[0]
        raise GrocerError(f"test image {first['path']} cannot be decoded ({first['error']}); the test set must be complete")

    with atomic.together() as out:
        out.write_frame(paths.MANIFEST, manifest)
        out.write_json(paths.CLASSES, {"classes": contract.classes})
        out.write_json(paths.TEST_FINGERPRINT, fingerprint_record(list(test["image_id"]), list(test["file_sha256"])))
        out.write_json(paths.metrics_file("ingest"), ingest_metrics(manifest, contract.classes))
