"""What the training loop optimises: targets, loss and scores for one kind of head.

The loop (grocer.training.loop) is generic over these: a multi-class classifier
(softmax cross-entropy, class weights, label smoothing) and a binary pair expert
(sigmoid BCE with pos_weight) share every other piece (sampler, mixup/CutMix,
SAM, SWA, schedule, resume). Targets are float tensors so mixup can blend them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from grocer.training.metrics import accuracy, binary_f1, macro_f1, roc_auc


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """n / (present classes * count_c) (sklearn's "balanced"): rare classes weigh more and the
    mean weight over the samples is 1. A class absent from `labels` gets weight 1."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    present = np.count_nonzero(counts)
    return np.where(counts > 0, len(labels) / (present * np.maximum(counts, 1)), 1.0)


@dataclass(frozen=True)
class MultiClass:
    """Softmax classifier over `num_classes`; logits (N, C), labels are class indices."""

    num_classes: int
    class_weights: torch.Tensor | None  # (C,) float32, or None for plain CE
    label_smoothing: float

    def targets(self, labels: torch.Tensor) -> torch.Tensor:
        return F.one_hot(labels, self.num_classes).float()

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        weight = None if self.class_weights is None else self.class_weights.to(logits.device)
        return F.cross_entropy(logits.float(), targets, weight=weight, label_smoothing=self.label_smoothing)

    def eval_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Plain log-loss (no weights, no smoothing): comparable across params; summed over the batch."""
        return F.cross_entropy(logits.float(), labels, reduction="sum")

    def correct(self, logits: torch.Tensor, labels: torch.Tensor) -> int:
        return int((logits.argmax(1) == labels).sum())

    def scores(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        predicted = logits.argmax(1)
        return {
            "acc": accuracy(labels, predicted),
            "f1": macro_f1(labels, predicted),
            "errors": float(np.sum(predicted != labels)),
        }


@dataclass(frozen=True)
class Binary:
    """One-logit expert: P(label == 1) = sigmoid(logit); logits (N, 1), labels 0/1."""

    pos_weight: float  # weight of positive examples in the BCE (n_neg / n_pos balances them)
    label_smoothing: float

    def targets(self, labels: torch.Tensor) -> torch.Tensor:
        return labels.float().unsqueeze(1)  # float32 on every device (BCE wants floats)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        smoothed = targets * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        pos_weight = torch.tensor([self.pos_weight], dtype=torch.float32, device=logits.device)
        return F.binary_cross_entropy_with_logits(logits.float(), smoothed, pos_weight=pos_weight)

    def eval_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float()[:, 0], labels.float(), reduction="sum")

    def correct(self, logits: torch.Tensor, labels: torch.Tensor) -> int:
        return int(((logits[:, 0] > 0).long() == labels).sum())

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return torch.sigmoid(torch.from_numpy(logits).float()).numpy()

    def scores(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        predicted = (logits[:, 0] > 0).astype(np.int64)
        return {
            "acc": accuracy(labels, predicted),
            "auc": roc_auc(labels, logits[:, 0]),
            "f1": binary_f1(labels, predicted),
            "errors": float(np.sum(predicted != labels)),
        }
