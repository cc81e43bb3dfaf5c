"""The data contract: reading the competition tables and resolving image files.

Layout of `data.dir`:

    train.csv               <id_col>,<label_col>[,<group_col>]
    train/<label>/<file>    or train/<file>
    test.csv                <id_col>
    test_images/<file>
    sample_submission.csv   <id_col>,<label_col>

Resolution rule: an image id is a file name (no folder part), with or without its extension. A train
id resolves to `train/<label>/<id>` if that exists, else `train/<id>`; when the id has
no extension, the first of IMAGE_EXTENSIONS that exists is taken. Test ids resolve
the same way in `test_images/`. An id that resolves to no file is an error.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from grocer import paths
from grocer.errors import GrocerError
from grocer.images import file_sha256
from grocer.params import DataParams

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@dataclass(frozen=True)
class Contract:
    """The validated tables of one dataset, with every image resolved to a path."""

    train: pd.DataFrame  # image_id, label, group (NA when no group column), path
    test: pd.DataFrame  # image_id, path
    sample_submission: pd.DataFrame  # image_id, label, in the file's order
    classes: list[str]


def read_csv(path: Path, required: list[str], allow_empty: bool = True) -> pd.DataFrame:
    if not path.is_file():
        raise GrocerError(f"{path}: file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise GrocerError(f"{path}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x}); save the file as UTF-8") from None
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise GrocerError(f"{path}: cannot be read as CSV: {str(exc).splitlines()[0]}") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise GrocerError(f"{path}: missing column(s) {missing}; has {list(frame.columns)}")
    if frame.empty and not allow_empty:
        raise GrocerError(f"{path} has no rows")
    empty = frame[required].eq("").any(axis=1)
    if empty.any():
        line = int(empty.to_numpy().argmax()) + 2  # header is line 1
        raise GrocerError(f"{path}:{line}: empty value in a required column")
    duplicated = frame[required[0]].duplicated()
    if duplicated.any():
        raise GrocerError(f"{path}: duplicate id {frame[required[0]][duplicated].iloc[0]!r}")
    return frame


def resolve(folder: Path, image_id: str) -> Path | None:
    """The file an id names inside `folder`, by the module's resolution rule."""
    if Path(image_id).name != image_id or image_id in {".", ".."}:
        return None  # ids are file names; anything with a path part is not ours to open
    direct = folder / image_id
    if direct.is_file():
        return direct
    if Path(image_id).suffix.lower() not in IMAGE_EXTENSIONS:
        for ext in IMAGE_EXTENSIONS:
            candidate = folder / f"{image_id}{ext}"
            if candidate.is_file():
                return candidate
    return None


def _resolve_all(ids: pd.Series, folders: list[list[Path]], table: Path) -> list[str]:
    resolved = []
    for image_id, candidates in zip(ids, folders):
        if Path(image_id).name != image_id:
            raise GrocerError(f"{table}: image id {image_id!r} has a folder part; an id is a file name "
                              f"(sub-folders are not supported: move the file into {candidates[0]})")
        path = next((p for p in (resolve(f, image_id) for f in candidates) if p is not None), None)
        if path is None:
            tried = " or ".join(str(f / image_id) for f in candidates)
            raise GrocerError(f"{table}: image {image_id!r} has no file (looked for {tried}[.ext])")
        resolved.append(str(path))
    return resolved


def load_contract(data: DataParams) -> Contract:
    """Read and validate every table of `data.dir`; raises GrocerError with one clear line."""
    root = Path(data.dir)
    if not root.is_dir():
        raise GrocerError(f"data.dir {root}: not a directory")
    train_cols = [data.id_col, data.label_col] + ([data.group_col] if data.group_col else [])
    train = read_csv(root / "train.csv", train_cols, allow_empty=False)
    test = read_csv(root / "test.csv", [data.id_col], allow_empty=False)
    submission = read_csv(root / "sample_submission.csv", [data.id_col, data.label_col], allow_empty=False)

    train = pd.DataFrame({
        "image_id": train[data.id_col],
        "label": train[data.label_col],
        "group": train[data.group_col] if data.group_col else pd.NA,
    })
    counts = train["label"].value_counts()
    singletons = sorted(counts[counts < 2].index)
    if singletons:
        raise GrocerError(f"{root / 'train.csv'}: label(s) with a single image: {singletons} (folds need two)")
    train_dir = root / "train"
    train["path"] = _resolve_all(
        train["image_id"], [[train_dir / label, train_dir] for label in train["label"]], root / "train.csv"
    )

    test = pd.DataFrame({"image_id": test[data.id_col]})
    test_dir = root / "test_images"
    test["path"] = _resolve_all(test["image_id"], [[test_dir]] * len(test), root / "test.csv")

    submission = pd.DataFrame({"image_id": submission[data.id_col], "label": submission[data.label_col]})
    if set(submission["image_id"]) != set(test["image_id"]):
        only_sub = sorted(set(submission["image_id"]) - set(test["image_id"]))[:3]
        only_test = sorted(set(test["image_id"]) - set(submission["image_id"]))[:3]
        raise GrocerError(
            f"{root / 'sample_submission.csv'}: ids differ from test.csv "
            f"(only in submission: {only_sub}, only in test: {only_test})"
        )
    return Contract(train=train, test=test, sample_submission=submission, classes=sorted(counts.index))


def fingerprint(ids: list[str], hashes: list[str]) -> str:
    """One hash for a set of files: sha256 over the sorted (id, file hash) lines."""
    lines = sorted(f"{i}\t{h}" for i, h in zip(ids, hashes))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def fingerprint_record(ids: list[str], hashes: list[str]) -> dict:
    """What ingest writes to paths.TEST_FINGERPRINT: the set's hash and every file's."""
    return {"n_images": len(ids), "sha256": fingerprint(ids, hashes), "files": dict(zip(ids, hashes))}


def load_test_fingerprint() -> dict:
    if not paths.TEST_FINGERPRINT.is_file():
        raise GrocerError(f"{paths.TEST_FINGERPRINT}: missing; run `dvc repro ingest` first")
    recorded = json.loads(paths.TEST_FINGERPRINT.read_text())
    if "files" not in recorded:
        raise GrocerError(f"{paths.TEST_FINGERPRINT}: written by an older grocer; run `dvc repro ingest`")
    return recorded


def test_set_differences(data: DataParams, recorded: dict) -> list[str]:
    """'<id> changed|missing|new' for every test image that differs from `recorded`, by id.

    The ids now are those of test.csv and sample_submission.csv (the submission needs each).
    """
    root = Path(data.dir)
    now = set(read_csv(root / "test.csv", [data.id_col])[data.id_col])
    now |= set(read_csv(root / "sample_submission.csv", [data.id_col, data.label_col])[data.id_col])
    then = recorded["files"]
    differences = []
    for image_id in sorted(now | set(then)):
        path = resolve(root / "test_images", image_id) if image_id in now else None
        if image_id not in then:
            differences.append(f"{image_id} new")
        elif path is None:
            differences.append(f"{image_id} missing")
        elif file_sha256(path) != then[image_id]:
            differences.append(f"{image_id} changed")
    return differences


def verify_test_set(data: DataParams) -> str:
    """The test set on disk must be the one ingest fingerprinted (it is never modified); its sha256."""
    recorded = load_test_fingerprint()
    differences = test_set_differences(data, recorded)
    if differences:
        more = f" (and {len(differences) - 1} more)" if len(differences) > 1 else ""
        raise GrocerError(
            f"test set changed since ingest: test image {differences[0]}{more}; "
            f"run `dvc repro` from ingest (grocer never edits the test set)"
        )
    return recorded["sha256"]


def verify_fingerprint(value: str | None, where: Path) -> None:
    """An artefact built from the test set must carry ingest's fingerprint."""
    recorded = load_test_fingerprint()["sha256"]
    if value is None:
        raise GrocerError(f"{where}: records no test fingerprint (made by an older grocer?); re-run its stage")
    if value != recorded:
        raise GrocerError(f"{where}: built from a different test set than ingest's ({value[:12]} vs {recorded[:12]})")


def split_rows(manifest: pd.DataFrame, split: str) -> pd.DataFrame:
    """The rows of `split` ("train" or "test") of ingest's manifest (paths.MANIFEST), in its order."""
    return manifest[manifest["split"] == split]


def load_classes() -> list[str]:
    if not paths.CLASSES.is_file():
        raise GrocerError(f"{paths.CLASSES}: missing; run `dvc repro ingest` first")
    return json.loads(paths.CLASSES.read_text())["classes"]
