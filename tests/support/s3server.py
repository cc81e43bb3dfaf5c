"""A real S3-compatible server on 127.0.0.1 for the tests: moto's standalone server.

moto[server] needs a newer botocore than aiobotocore (dvc-s3's S3 client) accepts, so
installing it in the project's venv breaks `pip check`. It lives in its own small venv
instead, `.venv-s3/` at the project root (git-ignored): created by the first test run
that needs it (`python -m venv` + pip from the package registry, ~30 s), then reused.
A stamp file records the requirement it was built from; a changed requirement or a
half-built venv (no stamp) is rebuilt. A file lock keeps two concurrent test runs from
building it at once.

The tests talk to the server over real HTTP: DVC through dvc-s3, buckets are made with
the project's own botocore. moto accepts any credentials.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import botocore.session

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-s3"
MOTO_REQUIREMENT = "moto[server]>=5.0,<6"
STAMP_NAME = "grocer-stamp.txt"

ACCESS_KEY_ID = "grocer-test-key"
SECRET_ACCESS_KEY = "grocer-test-secret"
START_TIMEOUT = 60.0


@contextlib.contextmanager
def _exclusive(venv: Path) -> Iterator[None]:
    """A lock named after the venv's path (outside it, since a rebuild deletes the venv)."""
    digest = hashlib.sha256(str(venv).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"grocer-venv-s3-{digest}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}): {' '.join(command)}\n{result.stdout}\n{result.stderr}")


def ensure_venv(venv: Path = VENV) -> Path:
    """The path of `moto_server` in `venv`, building the venv first when missing or stale."""
    server = venv / "bin" / "moto_server"
    stamp = venv / STAMP_NAME
    with _exclusive(venv):
        if stamp.is_file() and stamp.read_text() == MOTO_REQUIREMENT and server.is_file():
            return server
        _run([sys.executable, "-m", "venv", "--clear", str(venv)], "creating the moto venv")
        _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
              MOTO_REQUIREMENT], f"installing {MOTO_REQUIREMENT} into {venv}")
        stamp.write_text(MOTO_REQUIREMENT)  # last: a venv without its stamp is half-built
    return server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class S3Server:
    """A running moto server; `endpoint` is what DVC's `endpointurl` takes."""

    endpoint: str
    process: subprocess.Popen
    log: Path

    def client(self):
        """A botocore S3 client for this server (the project's own botocore, from dvc-s3)."""
        session = botocore.session.get_session()
        return session.create_client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key under `prefix` (what DVC really stored)."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _wait_until_answering(process: subprocess.Popen, endpoint: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(endpoint + "/moto-api/", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise RuntimeError(f"moto_server did not answer at {endpoint} within {START_TIMEOUT:.0f} s:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running_server(workdir: Path) -> Iterator[S3Server]:
    """moto's S3 server on a free port of 127.0.0.1 for the duration of the block; its log in `workdir`."""
    moto_server = ensure_venv()
    log = workdir / "moto_server.log"
    port = free_port()
    with open(log, "wb") as sink:
        process = subprocess.Popen([str(moto_server), "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = S3Server(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_until_answering(process, server.endpoint, log)
        yield server
    finally:
        stop(process)
