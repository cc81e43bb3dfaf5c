"""Resume state of a training run (a train or pair item, or its stage 2).

One file in the item's scratch folder (.scratch/, untracked: grocer.paths.train_scratch,
pair_scratch), rewritten whole after every epoch (grocer.atomic) by loop.fit. It is
reused only by a run with the same key, `run_key`: its resolved config and the exact
pixels and labels it sees, so a state left by another config, another fold assignment
or re-cached images is never resumed. The stage clears the folder once its item is written.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import torch

from grocer import atomic
from grocer.training.data import Split

STATE_FILE = "state.pt"
STAGE2_STATE_FILE = "stage2-state.pt"


def run_key(config: dict, *splits: Split) -> str:
    """Identity of a run: its resolved config and the exact pixels and labels it sees."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for split in splits:
        digest.update(np.ascontiguousarray(split.labels).tobytes())
        for start in range(0, len(split.rows), 256):  # chunks: never the whole array in memory
            digest.update(np.ascontiguousarray(split.images[split.rows[start:start + 256]]).tobytes())
        digest.update(np.ascontiguousarray(split.rows).tobytes())
    return digest.hexdigest()


def save_state(path: Path, state: dict) -> None:
    """The per-epoch resume state (see loop.fit); written whole or not at all."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic.write_bytes(path, buffer.getvalue())


def load_state(path: Path, key: str) -> dict | None:
    """The resume state at `path` if it belongs to the run identified by `key`, else None."""
    if not Path(path).is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state if state.get("key") == key else None


def clear(scratch: Path) -> None:
    """Drop an item's resume state once its outputs are written."""
    shutil.rmtree(scratch, ignore_errors=True)
