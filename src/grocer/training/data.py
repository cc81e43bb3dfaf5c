"""From the uint8 image cache to model inputs, and model outputs back to arrays.

A `Split` is some rows of a cache array with their labels; `CachedImages` runs each
row through an albumentations pipeline (still uint8 HWC: cheap to collate and to
copy to a GPU); `Preprocess` turns a uint8 batch into the normalised float tensor
the model expects, once per batch on the device; `predict` runs a model over a
split, with test-time views (grocer.training.tta).
"""

from __future__ import annotations

from dataclasses import dataclass

import albumentations as A
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from grocer.training.augment import reseed
from grocer.training.device import Precision
from grocer.training.tta import tta_logits


@dataclass(frozen=True)
class Split:
    """Some rows of a uint8 (N, S, S, 3) image array (a memory-mapped cache), with labels."""

    images: np.ndarray
    rows: np.ndarray  # (n,) int64 positions in `images`
    labels: np.ndarray  # (n,) int64 class indices (0/1 for a binary expert)

    def __post_init__(self) -> None:
        if len(self.rows) != len(self.labels):
            raise ValueError(f"split: {len(self.rows)} rows but {len(self.labels)} labels")


class CachedImages(Dataset):
    """(image, label) pairs: a cache row through an albumentations pipeline, still uint8 HWC.

    An item is a position in the split, or (seed, position): the pipeline's random draws
    then come from that seed alone, so an augmented sample depends on (seed, position)
    and not on which DataLoader worker made it or what it made before.
    """

    def __init__(self, split: Split, transform: A.Compose):
        self.split = split
        self.transform = transform

    def __len__(self) -> int:
        return len(self.split.rows)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        if isinstance(item, tuple):
            seed, item = item
            reseed(self.transform, seed)
        image = self.transform(image=self.split.images[self.split.rows[item]])["image"]
        return torch.from_numpy(np.ascontiguousarray(image)), int(self.split.labels[item])


@dataclass(frozen=True)
class Preprocess:
    """uint8 NHWC batch -> normalised float NCHW on the device, in the model's memory format."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    channels_last: bool
    device: torch.device

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        # (x / 255 - mean) / std as x * scale - shift, in place: one pass after the conversion
        std = torch.tensor(self.std, device=self.device)
        scale, shift = 1.0 / (255.0 * std), torch.tensor(self.mean, device=self.device) / std
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:  # NHWC memory is channels_last: normalise there, permute as a view
            return images.float().mul_(scale).sub_(shift).permute(0, 3, 1, 2)
        x = images.permute(0, 3, 1, 2).contiguous().float()  # transpose the uint8 bytes, not floats
        return x.mul_(scale.view(1, -1, 1, 1)).sub_(shift.view(1, -1, 1, 1))

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        """`x` in the model's memory format (after a view such as a TTA flip changed its strides)."""
        return x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)


@torch.no_grad()
def predict(
    model: nn.Module, split: Split, transform: A.Compose, prep: Preprocess, batch_size: int, tta_mode: str,
    precision: Precision,
) -> np.ndarray:
    """Logits (n, outputs) float32 for the split's rows, averaged over the TTA views of `tta_mode`."""
    if len(split.rows) == 0:
        raise ValueError("predict: the split has no rows")
    model.eval()
    loader = DataLoader(CachedImages(split, transform), batch_size=batch_size, shuffle=False)
    out = []
    for images, _ in loader:
        with precision.autocast():
            logits = tta_logits(lambda x: model(prep.layout(x)), prep(images), tta_mode)
        out.append(logits.float().cpu().numpy())
    return np.concatenate(out)
