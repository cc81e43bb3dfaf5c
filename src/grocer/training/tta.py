"""Test-time augmentation: geometry-only views of a batch, never colour.

`tta.mode` selects a set of the 8 symmetries of the square (the dihedral group D4):

* ``none``: identity;
* ``flip``: identity, horizontal flip;
* ``geo4``: identity, horizontal flip, vertical flip, rotation by 180 degrees;
* ``geo8``: all 8 (4 rotations x with/without horizontal flip).

A view is a tensor op on (N, C, H, W) batches with an exact inverse (useful for
dense outputs and to test that a view loses nothing). For classification the
model's logits are averaged over the views; probabilities are the softmax (or
sigmoid) of that mean, so a prediction table's probs always match its logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from grocer.errors import GrocerError

Op = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class View:
    name: str
    rotations: int  # quarter turns (counter-clockwise), applied after the optional flip
    hflip: bool

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if self.hflip:
            x = torch.flip(x, dims=(-1,))
        return torch.rot90(x, self.rotations, dims=(-2, -1)) if self.rotations else x

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        if self.rotations:
            x = torch.rot90(x, -self.rotations, dims=(-2, -1))
        return torch.flip(x, dims=(-1,)) if self.hflip else x


IDENTITY = View("identity", 0, False)
HFLIP = View("hflip", 0, True)
VFLIP = View("vflip", 2, True)  # a vertical flip is a horizontal flip then a half turn
ROT180 = View("rot180", 2, False)

VIEWS: dict[str, tuple[View, ...]] = {
    "none": (IDENTITY,),
    "flip": (IDENTITY, HFLIP),
    "geo4": (IDENTITY, HFLIP, VFLIP, ROT180),
    "geo8": tuple(View(f"rot{90 * k}{'_hflip' if flip else ''}", k, flip) for flip in (False, True) for k in range(4)),
}


def views(mode: str) -> tuple[View, ...]:
    if mode not in VIEWS:
        raise GrocerError(f"tta.mode: unknown mode {mode!r} (known: {', '.join(VIEWS)})")
    return VIEWS[mode]


@torch.no_grad()
def tta_logits(forward: Op, images: torch.Tensor, mode: str) -> torch.Tensor:
    """Mean of `forward` over the views of `mode` (logits in, logits out)."""
    selected = views(mode)
    total = forward(selected[0].apply(images)).float()
    for view in selected[1:]:
        total += forward(view.apply(images)).float()
    return total / len(selected)
