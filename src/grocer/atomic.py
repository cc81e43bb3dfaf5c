"""Writes that are all-or-nothing: temp paths beside the targets, then renames.

A stage killed or failing half-way leaves its previous outputs or none, never a
truncated file that a later stage would take for complete. A stage with several
outputs writes them all inside one `together()` block, so that they are replaced
together or not at all (a failure after the first is written replaces none).

Temp paths are `.<name>.<8 random chars>.tmp` beside their target; a SIGKILLed run can
leave one behind, and the next write of that target removes it.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from grocer.interrupt import signals_held


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _remove_debris(target: Path) -> None:
    """Temp paths of `target` that a killed run left: nobody else writes this target now."""
    for debris in target.parent.glob(f".{glob.escape(target.name)}.{'?' * 8}.tmp"):
        _remove(debris)


def _temp_beside(target: Path, directory: bool) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    options = dict(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    if directory:
        return Path(tempfile.mkdtemp(**options))
    fd, tmp = tempfile.mkstemp(**options)
    os.close(fd)
    return Path(tmp)


class Staged:
    """Outputs written to temp paths beside their targets, until `together` puts them in place."""

    def __init__(self) -> None:
        self._moves: list[tuple[Path, Path]] = []

    def file(self, target: Path) -> Path:
        """Where to write `target` now (any writer will do)."""
        return self._stage(Path(target), directory=False)

    def dir(self, target: Path) -> Path:
        """An empty directory that replaces the directory `target` whole."""
        return self._stage(Path(target), directory=True)

    def write_bytes(self, target: Path, data: bytes) -> None:
        self.file(target).write_bytes(data)

    def write_text(self, target: Path, text: str) -> None:
        self.file(target).write_text(text)

    def write_json(self, target: Path, obj: object) -> None:
        self.write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")

    def write_frame(self, target: Path, frame: pd.DataFrame) -> Path:
        """CSV or parquet, by the target's suffix; the index is never written. Returns the temp file."""
        suffix = Path(target).suffix
        if suffix not in (".parquet", ".csv"):
            raise ValueError(f"write_frame: unsupported suffix {suffix!r} for {target}")
        tmp = self.file(target)
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        return tmp

    def save_npy(self, target: Path, array: np.ndarray) -> None:
        with open(self.file(target), "wb") as fh:
            np.save(fh, array)

    def _stage(self, target: Path, directory: bool) -> Path:
        _remove_debris(target)
        tmp = _temp_beside(target, directory)
        self._moves.append((tmp, target))
        return tmp

    def _commit(self) -> None:
        replaced = []
        with signals_held():  # Ctrl+C between two renames would leave a directory missing
            for tmp, target in self._moves:
                # mkstemp/mkdtemp make 0600/0700; outputs get the usual modes
                os.chmod(tmp, (0o777 if tmp.is_dir() else 0o666) & ~_umask())
                if tmp.is_dir() and target.exists():
                    old = _temp_beside(target, directory=True)
                    os.replace(target, old)  # onto the empty temp dir, then out of the way
                    replaced.append(old)
                os.replace(tmp, target)
        for old in replaced:
            _remove(old)  # interrupted here, it is debris that the next write removes

    def _discard(self) -> None:
        for tmp, _ in self._moves:
            _remove(tmp)


@contextmanager
def together() -> Iterator[Staged]:
    """Write outputs through the yielded Staged; they replace their targets only if the block succeeds."""
    staged = Staged()
    try:
        yield staged
    except BaseException:
        staged._discard()
        raise
    try:
        staged._commit()
    finally:
        staged._discard()  # what a failed commit did not move


# One output, written on its own:


def write_bytes(path: Path, data: bytes) -> None:
    with together() as staged:
        staged.write_bytes(path, data)


def write_text(path: Path, text: str) -> None:
    with together() as staged:
        staged.write_text(path, text)


def write_json(path: Path, obj: object) -> None:
    with together() as staged:
        staged.write_json(path, obj)


def write_frame(path: Path, frame: pd.DataFrame) -> None:
    with together() as staged:
        staged.write_frame(path, frame)


def save_npy(path: Path, array: np.ndarray) -> None:
    with together() as staged:
        staged.save_npy(path, array)


@contextmanager
def replace_dir(path: Path) -> Iterator[Path]:
    """Yield a fresh temp dir; on success it replaces `path` whole, on error it is removed."""
    with together() as staged:
        yield staged.dir(path)
