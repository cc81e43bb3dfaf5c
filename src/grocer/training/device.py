"""Where tensors live (the runtime setting `device`: auto | cuda | mps | cpu) and in which precision."""

from __future__ import annotations

from contextlib import nullcontext

import torch

from grocer.errors import GrocerError


def resolve_device(name: str) -> torch.device:
    """`auto` takes CUDA, then Apple MPS, then the CPU; an explicit device must exist."""
    cuda = torch.cuda.is_available()
    mps = torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise GrocerError(f"device: {name!r} requested but torch sees no such device; use auto or cpu")
    if name not in ("cuda", "mps", "cpu"):
        raise GrocerError(f"device: unknown device {name!r} (known: auto, cuda, mps, cpu)")
    return torch.device(name)


def use_threads(threads: int) -> None:
    """torch's intra-op CPU threads for this process (the runtime setting `threads`; 0 keeps torch's default)."""
    if threads > 0:
        torch.set_num_threads(threads)


class Precision:
    """AMP on CUDA only: bfloat16 where supported, else float16 with a gradient scaler."""

    def __init__(self, device: torch.device, amp: bool, sam: bool):
        self.device_type = device.type
        self.dtype: torch.dtype | None = None
        self.scaler: torch.amp.GradScaler | None = None
        if amp and device.type == "cuda":
            self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            if self.dtype == torch.float16:
                if sam:
                    raise GrocerError("train.sam with train.amp needs a bfloat16 GPU; set train.amp: false")
                self.scaler = torch.amp.GradScaler("cuda")

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.dtype) if self.dtype is not None else nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()
