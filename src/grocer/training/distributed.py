"""Data-parallel training under torchrun (`train.distributed: ddp`, `train.nproc`).

The DVC stage runs `grocer train ...` (or `grocer pair ...`) as always. With ddp that
process checks its inputs, then runs the same command again under
`torchrun --standalone --nproc-per-node <nproc>` and waits: each of those workers joins
one process group (NCCL on CUDA, one GPU per worker; gloo on the CPU), trains its share
of every batch, and only rank 0 evaluates, keeps the resume state and writes outputs.

`train.batch_size` stays the global batch: each worker takes batch_size / nproc images,
and worker r's batch b holds positions r, r + nproc, ... of the single-process batch b,
so the optimizer steps, the learning-rate schedule and the images of every step are
those of a one-process run (see grocer.training.loop.EpochItems).

torchrun starts each worker in a session of its own, so signals to the stage's process
group do not reach them. On Linux every process of the chain (the grocer process DVC
started -> torchrun's agent -> the workers) is SIGKILLed when its parent dies: a killed
stage (kill -9, the OOM killer) leaves no worker that trains on, holds a GPU and writes
the item after DVC gave up on it.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from grocer import paths
from grocer.errors import GrocerError
from grocer.interrupt import PARENT_PID, die_with_parent
from grocer.params import TrainParams
from grocer.runtime import Runtime
from grocer.training.device import resolve_device


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int
    size: int

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that evaluates, saves state and writes outputs."""
        return self.rank == 0


SINGLE = World(rank=0, size=1)


def _torchrun_world_size() -> int | None:
    """WORLD_SIZE when this process is a torchrun worker, else None."""
    return int(os.environ["WORLD_SIZE"]) if "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ else None


def needs_launch(train: TrainParams) -> bool:
    """True in the process DVC started for a ddp item: it must hand the work to torchrun."""
    return train.distributed == "ddp" and _torchrun_world_size() is None


def launch(argv: list[str], train: TrainParams, runtime: Runtime) -> None:
    """Run `grocer <argv>` under torchrun with `train.nproc` workers on this machine; wait for it.

    torchrun's --standalone rendezvous takes a free local port, so several items can
    run side by side. Raises GrocerError if any worker failed (its own error is above).
    """
    _ddp_device_type(train, runtime)  # no device for the workers: say so once, before starting them
    threads = runtime.threads or max(1, (os.cpu_count() or 1) // train.nproc)  # 0: share the cores
    command = [sys.executable, "-m", "grocer.training.torchrun", "--standalone", f"--nproc-per-node={train.nproc}",
               "-m", "grocer.cli", *argv]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), PARENT_PID: str(os.getpid())}
    code = subprocess.run(command, env=env).returncode
    if code != 0:
        raise GrocerError(f"train.distributed: ddp: torchrun with {train.nproc} processes exited with code {code} "
                          "(the failing worker's error is above)")


def _ddp_device_type(train: TrainParams, runtime: Runtime) -> str:
    """cuda (one GPU per process) or cpu: DDP has no MPS backend."""
    name = runtime.device if runtime.device != "auto" else "cuda" if torch.cuda.is_available() else "cpu"
    device = resolve_device(name)
    if device.type == "mps":
        raise GrocerError("train.distributed: ddp runs on CUDA or the CPU, not on mps; set device: cpu "
                          f"in {paths.LOCAL_SETTINGS} (or GROCER_DEVICE=cpu), or train.distributed: none")
    if device.type == "cuda" and train.nproc > torch.cuda.device_count():
        raise GrocerError(f"train.nproc: {train.nproc} processes but torch sees {torch.cuda.device_count()} GPU(s)")
    return device.type


def join(train: TrainParams, runtime: Runtime) -> tuple[World, torch.device]:
    """This process's World and device; a torchrun worker joins the process group here.

    The group is destroyed when the process exits (rank 0 may still be writing outputs
    when the others are done, so there is no collective at the end).
    """
    world_size = _torchrun_world_size()
    if world_size is None:
        return SINGLE, resolve_device(runtime.device)
    if train.distributed != "ddp":
        raise GrocerError(f"started by torchrun ({world_size} processes) but train.distributed is "
                          f"{train.distributed!r}: every process would train the whole item; set it to ddp")
    die_with_parent()
    if _ddp_device_type(train, runtime) == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    atexit.register(dist.destroy_process_group)
    return World(rank=dist.get_rank(), size=dist.get_world_size()), device


def all_sum(values: list[float], world: World, device: torch.device) -> list[float]:
    """Element-wise sums of `values` over every process (the values themselves in one process)."""
    if world.size == 1:
        return values
    total = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()
