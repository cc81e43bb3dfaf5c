"""Sharpness-Aware Minimization (SAM).

Foret, Kleiner, Mobahi, Neyshabur, "Sharpness-Aware Minimization for Efficiently
Improving Generalization", ICLR 2021 (arXiv:2010.01412).

Each step takes two gradients: at w, then at the worst-case neighbour
w + rho * g / ||g|| (the first-order solution of max_{||e|| <= rho} L(w + e));
the base optimizer then updates w with the gradient taken at the neighbour.
Usage, one training step:

    loss_fn(model(x)).backward()
    sam.perturb()                 # w -> w + e(w)
    optimizer.zero_grad()
    loss_fn(model(x)).backward()  # gradient at the neighbour
    sam.restore()                 # back to w; the grads stay
    optimizer.step()              # (clip the grads between restore and step if wanted)
"""

from __future__ import annotations

import torch


class SAM:
    """Perturb/restore the parameters of one optimizer (the base optimizer steps)."""

    def __init__(self, optimizer: torch.optim.Optimizer, rho: float):
        if rho <= 0:
            raise ValueError(f"SAM rho must be > 0, got {rho}")
        self.optimizer = optimizer
        self.rho = rho
        self._offsets: list[tuple[torch.nn.Parameter, torch.Tensor]] = []

    def _params_with_grad(self) -> list[torch.nn.Parameter]:
        return [p for group in self.optimizer.param_groups for p in group["params"] if p.grad is not None]

    @torch.no_grad()
    def perturb(self) -> None:
        """Move to w + rho * g / ||g|| using the current gradients."""
        params = self._params_with_grad()
        if not params:
            raise RuntimeError("SAM.perturb: no gradients; call backward() first")
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
        scale = self.rho / (norm + 1e-12)
        self._offsets = []
        for p in params:
            offset = p.grad * scale
            p.add_(offset)
            self._offsets.append((p, offset))

    @torch.no_grad()
    def restore(self) -> None:
        """Undo `perturb`; the gradients (now taken at the neighbour) are kept."""
        for p, offset in self._offsets:
            p.sub_(offset)
        self._offsets = []
