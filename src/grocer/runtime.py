"""Machine-local runtime settings: how this machine runs a stage, never what the stage computes.

A Mac, a GPU box and Colab train the same items with the same params; only the device,
the CPU threads, the DataLoader workers and the inference batch size differ. As params
they would give each machine different stage hashes, so nobody could reuse a teammate's
run-cache. They come instead from, in this order (later wins):

1. the defaults below;
2. `grocer.local.yaml` beside params.yaml (optional, git-ignored, never a DVC dep);
3. environment variables GROCER_DEVICE, GROCER_THREADS, GROCER_NUM_WORKERS,
   GROCER_EVAL_BATCH_SIZE (a queued experiment runs in a copy of the repository without
   git-ignored files, unless `dvc exp run --queue --copy-paths grocer.local.yaml`).

Validated as strictly as params: an unknown key or a bad value is an error naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grocer import paths
from grocer.errors import GrocerError
from grocer.params import describe_error


class SettingsError(GrocerError):
    """grocer.local.yaml or a GROCER_* variable is not valid; the message names the key."""


class Runtime(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    device: Literal["auto", "cuda", "mps", "cpu"] = Field(
        "auto", description="auto takes CUDA, then Apple MPS, then the CPU")
    threads: int = Field(0, ge=0, description="torch CPU threads of the train/infer/pair processes; 0: torch's default")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes for augmentation; 0: the main process")
    eval_batch_size: int = Field(128, ge=1, description="batch size of validation and inference (not of training)")


ENV_VARS = {name: f"GROCER_{name.upper()}" for name in Runtime.model_fields}


def _from_env(environ: Mapping[str, str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for name, var in ENV_VARS.items():
        if var not in environ:
            continue
        text = environ[var]
        if Runtime.model_fields[name].annotation is int:
            try:
                values[name] = int(text)
            except ValueError:
                raise SettingsError(f"{var}: {text!r} is not an integer") from None
        else:
            values[name] = text
    return values


def _from_file(path: Path) -> dict[str, object]:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SettingsError(f"{path}: must be a mapping of settings ({', '.join(Runtime.model_fields)})")
    return raw


def load(path: Path = paths.LOCAL_SETTINGS, environ: Mapping[str, str] = os.environ) -> Runtime:
    """This machine's settings: defaults, then `path`, then the GROCER_* environment variables."""
    from_file, from_env = _from_file(path), _from_env(environ)
    try:
        return Runtime.model_validate({**from_file, **from_env})
    except ValidationError as exc:
        def source(error: dict) -> str:
            key = str(error["loc"][0]) if error["loc"] else ""
            return ENV_VARS[key] if key in from_env else str(path)
        raise SettingsError("; ".join(f"{source(e)}: {describe_error(e)}" for e in exc.errors())) from None
