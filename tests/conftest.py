"""Shared fixtures; what they build lives in tests/support/."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from grocer import params as params_module
from support.dataset import write_dataset
from support.params import make_params
from support.s3server import running_server


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tmp project root (the cwd) holding a tiny dataset in data/raw."""
    write_dataset(tmp_path / "data" / "raw")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def raw_params() -> params_module.Params:
    return make_params({"data": {"dir": "data/raw"}, "folds": {"n_splits": 3}, "run": {"folds": [0, 1, 2]}})


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    """moto's S3 server on a free port of 127.0.0.1 (its own venv: tests/support/s3server.py), stopped after the run."""
    with running_server(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture
def one_thread():
    """Tiny models train fastest on one thread (and do not thrash when the machine is busy).

    A training test module asks for it with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
