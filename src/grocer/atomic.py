"""Writes that are all-or-nothing: a temp file beside the target, then a rename.

A stage killed half-way leaves the previous output or none, never a truncated file
that a later stage would take for complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_via_temp(path: Path, write: Callable[[Path], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes) -> None:
    _write_via_temp(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: Path, text: str) -> None:
    _write_via_temp(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, obj: object) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_frame(path: Path, frame: pd.DataFrame) -> None:
    """CSV or parquet, by the file's suffix; the index is never written."""
    path = Path(path)
    if path.suffix == ".parquet":
        _write_via_temp(path, lambda tmp: frame.to_parquet(tmp, index=False))
    elif path.suffix == ".csv":
        _write_via_temp(path, lambda tmp: frame.to_csv(tmp, index=False))
    else:
        raise ValueError(f"write_frame: unsupported suffix {path.suffix!r} for {path}")


def save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array)

    _write_via_temp(path, write)


@contextmanager
def replace_dir(path: Path) -> Iterator[Path]:
    """Yield a fresh temp dir; on success it replaces `path` whole, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
