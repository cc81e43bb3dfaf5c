"""Mixup and CutMix on a batch, with soft targets.

* mixup: Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018
  (arXiv:1710.09412): x = lam * x_i + (1 - lam) * x_j, same for the targets.
* CutMix: Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers
  with Localizable Features", ICCV 2019 (arXiv:1905.04899): a box of x_j pasted into
  x_i, targets mixed by the box's area share.

Targets are float tensors of any trailing shape (one-hot rows for a multi-class
model, one probability per image for a binary expert), so the same code serves
both. All randomness comes from the `rng` argument (a numpy Generator: it samples
Beta with a given generator, torch does not): a run is reproducible and a resumed
run draws the same boxes as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class MixConfig:
    mixup_alpha: float  # Beta(alpha, alpha) for mixup's lam; 0 disables mixup
    cutmix_alpha: float  # Beta(alpha, alpha) for CutMix's area; 0 disables CutMix
    prob: float  # chance that a batch is mixed at all

    @property
    def enabled(self) -> bool:
        return self.prob > 0 and (self.mixup_alpha > 0 or self.cutmix_alpha > 0)


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A box (top, bottom, left, right) covering about 1 - lam of the image, clipped to it."""
    cut = (1.0 - lam) ** 0.5
    box_h, box_w = int(height * cut), int(width * cut)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    top, bottom = max(cy - box_h // 2, 0), min(cy + box_h // 2, height)
    left, right = max(cx - box_w // 2, 0), min(cx + box_w // 2, width)
    return top, bottom, left, right


def mix_batch(
    images: torch.Tensor, targets: torch.Tensor, config: MixConfig, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix a batch with a shuffled copy of itself, or return it unchanged.

    Args:
        images: (N, C, H, W) float batch.
        targets: (N, ...) float targets (one-hot rows or probabilities).
        config: alphas and probability; with both alphas > 0, mixup or CutMix is
            chosen with equal odds per batch.
        rng: the only source of randomness.

    Returns:
        The (possibly) mixed images and targets; inputs are not modified.
    """
    if not config.enabled or len(images) < 2 or rng.random() >= config.prob:
        return images, targets
    use_cutmix = config.cutmix_alpha > 0 and (config.mixup_alpha == 0 or rng.random() < 0.5)
    perm = torch.from_numpy(rng.permutation(len(images))).to(images.device)
    if use_cutmix:
        lam = float(rng.beta(config.cutmix_alpha, config.cutmix_alpha))
        top, bottom, left, right = cutmix_box(images.shape[2], images.shape[3], lam, rng)
        mixed = images.clone()
        mixed[:, :, top:bottom, left:right] = images[perm][:, :, top:bottom, left:right]
        # the box may be clipped at the border: weight targets by the area really pasted
        lam = 1.0 - (bottom - top) * (right - left) / (images.shape[2] * images.shape[3])
    else:
        lam = float(rng.beta(config.mixup_alpha, config.mixup_alpha))
        mixed = images * lam + images[perm] * (1.0 - lam)
    return mixed, targets * lam + targets[perm] * (1.0 - lam)
