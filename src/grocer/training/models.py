"""Model factory: a `zoo:` entry of params.yaml -> a timm model.

Weights come from timm's own mechanisms: `pretrained: true` downloads (or reads
timm's cache of) the tagged weights; `pretrained_file` points timm's loader at a
local checkpoint (`pretrained_cfg_overlay=dict(file=...)`), which also adapts the
classifier and, for ViTs, the position embeddings to our classes and image size.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import timm
import torch
from timm.data import resolve_model_data_config
from torch import nn

from grocer.errors import GrocerError
from grocer.params import ZooModel
from grocer.training.augment import EvalView


def check_arch(arch: str, where: str = "zoo") -> None:
    """Raise GrocerError naming close timm names when `arch` (optionally `arch.tag`) is unknown."""
    known = timm.list_pretrained() if "." in arch else timm.list_models()
    if arch not in known:
        close = difflib.get_close_matches(arch, known, n=5, cutoff=0.6)
        hint = f"close names: {', '.join(close)}" if close else "see timm.list_models()"
        raise GrocerError(f"{where}: unknown timm architecture {arch!r}; {hint}")


def takes_img_size(arch: str) -> bool:
    """Models built for one input size (ViTs: position embeddings) take `img_size` at creation."""
    cfg = timm.models.get_pretrained_cfg(arch)
    return bool(cfg is not None and cfg.fixed_input_size)


def create_model(entry: ZooModel, num_classes: int, img_size: int) -> nn.Module:
    """Build `entry.arch` with our classifier, regularisation and memory format.

    Args:
        entry: the zoo entry (validated params).
        num_classes: output units (1 for a binary expert).
        img_size: training resolution; passed to models with a fixed input size.

    Returns:
        The model on the CPU, in channels_last memory format if the entry asks for it.
    """
    check_arch(entry.arch)
    kwargs: dict[str, object] = {"num_classes": num_classes, "drop_rate": entry.drop_rate}
    if entry.drop_path_rate > 0:  # not every architecture takes it; only ask when used
        kwargs["drop_path_rate"] = entry.drop_path_rate
    if takes_img_size(entry.arch):
        kwargs["img_size"] = img_size
    if entry.pretrained_file is not None:
        if not Path(entry.pretrained_file).is_file():
            raise GrocerError(f"zoo: pretrained_file {entry.pretrained_file} for {entry.arch} does not exist")
        kwargs["pretrained_cfg_overlay"] = {"file": str(entry.pretrained_file)}
    try:
        model = timm.create_model(entry.arch, pretrained=entry.pretrained, **kwargs)
    except (TypeError, RuntimeError) as exc:
        raise GrocerError(f"zoo: timm cannot build {entry.arch} with {sorted(kwargs)}: {exc}") from None
    if entry.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def normalization(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean/std the architecture's weights expect (timm's resolve_model_data_config)."""
    cfg = resolve_model_data_config(model)
    return tuple(map(float, cfg["mean"])), tuple(map(float, cfg["std"]))


def eval_view(model: nn.Module) -> EvalView:
    """The evaluation crop and interpolation of the architecture's weights (resolve_model_data_config:
    the pretrained_cfg of `arch.tag`, known without loading the weights)."""
    cfg = resolve_model_data_config(model)
    return EvalView(crop_pct=float(cfg["crop_pct"]), interpolation=str(cfg["interpolation"]))
