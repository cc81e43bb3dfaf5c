"""Augmentation profiles (albumentations) for uint8 RGB images from the image cache.

`aug.profile` picks which families of ops the training pipeline holds:

* ``full``: geometry + colour (ColorJitter / HueSaturationValue /
  RandomBrightnessContrast) + degradations (blur, luminance noise, JPEG) + CoarseDropout;
* ``no_color``: the same minus every colour op (for data where colour is the label:
  a red apple must stay red);
* ``none``: the evaluation pipeline, no randomness (the strength keys below are unused).

The strength of each family is a param, so an A/B can tune it: `aug.crop_scale` (the
smallest area share a RandomResizedCrop keeps; 1 keeps the whole image), `aug.flips`
(the 8 square symmetries, the horizontal mirror, or none), `aug.degrade_prob` and
`aug.dropout_prob` (per-image chances). A fine-tuning recipe for pretrained models at
224 px wants strong settings; small models trained from scratch for a few epochs learn
faster with light ones (measured in the README).

Pipelines take and return HWC uint8 arrays; conversion to float and normalisation
with the model's mean/std happen once per batch on the device
(grocer.training.data.Preprocess), cheaper than per image, with a uint8 host-to-device copy.
The 8 square symmetries match the geo8 test-time views (grocer.training.tta).

Evaluation (validation, inference, the `none` profile) resizes and centre-crops as the
model's weights were evaluated: timm's crop_pct and interpolation for the architecture
(an EvalView, from grocer.training.models.eval_view), e.g. 0.875 bicubic for
convnext_small.fb_in22k_ft_in1k, 1.0 bicubic (no crop) for deit3.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import albumentations as A
import cv2
import numpy as np

from grocer.errors import GrocerError
from grocer.params import AugParams

PROFILES = ("full", "no_color", "none")

# Every colour op a profile may contain; `no_color` contains none of them.
COLOR_TRANSFORMS = (A.ColorJitter, A.HueSaturationValue, A.RandomBrightnessContrast)

# timm's interpolation names -> OpenCV's (albumentations resizes with OpenCV)
INTERPOLATIONS = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC, "nearest": cv2.INTER_NEAREST,
                  "lanczos": cv2.INTER_LANCZOS4, "box": cv2.INTER_AREA}


@dataclass(frozen=True)
class EvalView:
    """How a model's weights expect evaluation images: timm's crop_pct and interpolation."""

    crop_pct: float  # share of the resized image's shorter side kept by the centre crop
    interpolation: str  # a key of INTERPOLATIONS

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise GrocerError(f"interpolation {self.interpolation!r} is not supported "
                              f"(known: {', '.join(INTERPOLATIONS)})")
        if not 0 < self.crop_pct <= 1:
            raise GrocerError(f"crop_pct {self.crop_pct} must be in (0, 1]")


def _geometry(aug: AugParams, img_size: int) -> list[A.BasicTransform]:
    crop = A.RandomResizedCrop(size=(img_size, img_size), scale=(aug.crop_scale, 1.0), ratio=(3 / 4, 4 / 3))
    flips = {"square": [A.SquareSymmetry(p=1.0)], "horizontal": [A.HorizontalFlip(p=0.5)], "none": []}
    return [crop, *flips[aug.flips]]


def _colour() -> list[A.BasicTransform]:
    return [
        A.OneOf(
            [
                A.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.04),
                A.HueSaturationValue(hue_shift_limit=8, sat_shift_limit=25, val_shift_limit=20),
                A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.25),
            ],
            p=0.8,
        )
    ]


def _degradations(aug: AugParams) -> list[A.BasicTransform]:
    # Luminance-only noise (per_channel=False): grey stays grey, so these are colour-neutral.
    return [
        A.OneOf(
            [
                A.GaussianBlur(blur_limit=(3, 5)),
                A.MotionBlur(blur_limit=(3, 5)),
                A.GaussNoise(std_range=(0.02, 0.08), per_channel=False),
                A.ImageCompression(quality_range=(40, 90)),
            ],
            p=aug.degrade_prob,
        ),
        A.CoarseDropout(num_holes_range=(1, 3), hole_height_range=(0.1, 0.25), hole_width_range=(0.1, 0.25), fill=0,
                        p=aug.dropout_prob),
    ]


def build_train_transforms(aug: AugParams, img_size: int, view: EvalView) -> A.Compose:
    """The training pipeline of `aug` (see the module docstring), output img_size square;
    `view` is the evaluation pipeline's, which profile `none` is."""
    if aug.profile == "full":
        return A.Compose([*_geometry(aug, img_size), *_colour(), *_degradations(aug)])
    if aug.profile == "no_color":
        return A.Compose([*_geometry(aug, img_size), *_degradations(aug)])
    if aug.profile == "none":
        return build_eval_transforms(img_size, view)
    raise GrocerError(f"aug.profile: unknown profile {aug.profile!r} (known: {', '.join(PROFILES)})")


def build_eval_transforms(img_size: int, view: EvalView) -> A.Compose:
    """Resize (shorter side to img_size / view.crop_pct, with view.interpolation) and
    centre-crop to img_size, as timm's eval transform does."""
    return A.Compose([
        A.SmallestMaxSize(max_size=round(img_size / view.crop_pct), interpolation=INTERPOLATIONS[view.interpolation]),
        A.CenterCrop(height=img_size, width=img_size),
    ])


def reseed(transform: A.Compose, seed: int) -> None:
    """Restart the pipeline's random stream; one generator shared by all its ops.

    (Compose.set_random_seed would give every op its own generator with the same seed,
    which makes ops with equal probabilities fire together.)
    """
    transform.set_random_state(np.random.default_rng(seed), random.Random(seed))
