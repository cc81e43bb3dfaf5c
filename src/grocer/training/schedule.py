"""Learning-rate schedule: linear warm-up, cosine decay, then a flat SWA phase.

A pure function of the step, so a resumed run needs no scheduler state and the
curve can be tested without a model.
"""

from __future__ import annotations

import math


def lr_at(
    step: int,
    steps_per_epoch: int,
    epochs: int,
    base_lr: float,
    warmup_epochs: int,
    swa_start: int | None = None,
    swa_lr: float = 0.0,
    final_fraction: float = 0.01,
) -> float:
    """The learning rate of optimizer step `step` (0-based, counted over the whole run).

    Args:
        step: global step index.
        steps_per_epoch: optimizer steps in one epoch.
        epochs: length of the run.
        base_lr: peak learning rate, reached at the end of warm-up.
        warmup_epochs: linear ramp from base_lr / steps to base_lr over these epochs.
        swa_start: first SWA epoch; from there the rate is `swa_lr` (constant, as in
            Izmailov et al. 2018) and the cosine ends there instead of at `epochs`.
        swa_lr: the SWA phase's rate.
        final_fraction: the cosine decays to base_lr * final_fraction.
    """
    warmup = warmup_epochs * steps_per_epoch
    if step < warmup:
        return base_lr * (step + 1) / warmup
    decay_end = (swa_start if swa_start is not None else epochs) * steps_per_epoch
    if swa_start is not None and step >= decay_end:
        return swa_lr
    span = max(decay_end - warmup, 1)
    progress = min((step - warmup) / span, 1.0)
    floor = base_lr * final_fraction
    return floor + (base_lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
