"""Checkpoints: the weights of a trained item and loading it back (resume state: grocer.training.resume).

An item directory (train: models/<model>/fold<k>/, pair: models/pairs/<a-b>/f<k>/) holds
`best.pt` (best-by-val-loss weights), `swa.pt` (when SWA ran), `final.json` (which
of the two is the final model and why) and `config.json` (the resolved params the
item was trained with: zoo entry, image size, classes, normalisation, recipe).
`load_final` rebuilds the architecture from config.json and loads the chosen weights,
so inference needs nothing but the item directory.

Weights are plain state dicts read back with `weights_only=True` (no pickled code).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from grocer import atomic
from grocer.errors import GrocerError
from grocer.params import ZooModel
from grocer.training.augment import EvalView
from grocer.training.data import Preprocess
from grocer.training.models import create_model

if TYPE_CHECKING:  # for the annotations only
    from grocer.training.loop import FitResult

BEST = "best.pt"
SWA = "swa.pt"
FINAL = "final.json"
CONFIG = "config.json"
WEIGHTS = {"best": BEST, "swa": SWA}


def _save(path: Path, obj: object) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic.write_bytes(path, buffer.getvalue())


def save_weights(path: Path, state_dict: dict[str, torch.Tensor]) -> None:
    _save(path, {k: v.detach().cpu() for k, v in state_dict.items()})


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    if not Path(path).is_file():
        raise GrocerError(f"{path}: missing weights (has its train stage run?)")
    return torch.load(path, map_location="cpu", weights_only=True)


def final_record(result: FitResult) -> dict:
    """final.json: which weights are the final model, and the validation losses that decided it."""
    record = {
        "chosen": result.chosen,
        "file": WEIGHTS[result.chosen],
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "swa_val_loss": result.swa_val_loss,
    }
    if result.swa_val_loss is None:
        record["reason"] = "SWA off: best-by-val-loss weights"
    else:
        relation = "<" if result.chosen == "swa" else ">="
        record["reason"] = (f"SWA val_loss {result.swa_val_loss:.5f} {relation} best val_loss "
                            f"{result.best_val_loss:.5f} (epoch {result.best_epoch})")
    return record


def write_item(directory: Path, result: FitResult, config: dict) -> None:
    """best.pt, swa.pt (when SWA ran), final.json and config.json into `directory`."""
    save_weights(directory / BEST, result.best_state)
    if result.swa_state is not None:
        save_weights(directory / SWA, result.swa_state)
    atomic.write_json(directory / FINAL, final_record(result))
    atomic.write_json(directory / CONFIG, config)


@dataclass(frozen=True)
class Trained:
    """A trained item, ready for inference."""

    model: nn.Module  # in eval mode, on the device
    config: dict  # config.json
    prep: Preprocess  # batch preprocessing the model was trained with

    @property
    def img_size(self) -> int:
        return int(self.config["img_size"])

    @property
    def classes(self) -> list[str]:
        return list(self.config["classes"])

    @property
    def view(self) -> EvalView:
        """The evaluation crop and interpolation the item was validated with."""
        return EvalView(float(self.config["crop_pct"]), str(self.config["interpolation"]))


def load_final(item_dir: Path, device: torch.device) -> Trained:
    """Rebuild an item's architecture from config.json and load the weights final.json chose."""
    item_dir = Path(item_dir)
    for name in (CONFIG, FINAL):
        if not (item_dir / name).is_file():
            raise GrocerError(f"{item_dir / name}: missing (has the item's train stage run?)")
    config = json.loads((item_dir / CONFIG).read_text())
    final = json.loads((item_dir / FINAL).read_text())
    # the architecture only: the trained weights replace any pretrained ones
    entry = ZooModel.model_validate({**config["zoo"], "pretrained": False, "pretrained_file": None})
    model = create_model(entry, num_classes=int(config["outputs"]), img_size=int(config["img_size"]))
    model.load_state_dict(load_weights(item_dir / WEIGHTS[final["chosen"]]))
    model.to(device).eval()
    prep = Preprocess(tuple(config["mean"]), tuple(config["std"]), bool(config["zoo"]["channels_last"]), device)
    return Trained(model=model, config=config, prep=prep)
