"""Stage `report`: the files behind `dvc plots show`, and two PNGs for people who just open files.

Inputs: the submitted step's OOF predictions (`source` in metrics/final.json, rows of `run.folds`), metrics/final.json
(the chain's steps, written by `submit`), metrics/blend.json (every single model) and the
per-epoch curves of the train items (dvclive's files in plots/train/<model>-f<k>/).
Writes the plot files that dvc.yaml declares (with their templates, so `dvc plots show`
needs no flags; custom templates live in .dvc/plots/):
  plots/confusion.csv     actual,predicted (class names) per OOF row: the confusion template counts them
  plots/per_class.csv     class, precision, recall, f1, support
  plots/evolution.csv     step, kind, acc, f1: each single model ("0 <model>", kind model), then
                          best single -> blend -> bias -> stack -> override (kind chain; a
                          switched-off step is absent), numbered because the plot sorts by name
  plots/train_curves.csv  item, metric, step, value: the curves of every train item of
                          run.models x run.folds in one table (template train_curves: a panel
                          per metric, a line per item); dvc.yaml's only training-curve plot
and two images, declared as image plots: plots/confusion.png and plots/evolution.png (matplotlib).
The per-group plot is `audit`'s plots/audit_groups.csv.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_fscore_support

from grocer import atomic, paths
from grocer.dataset import load_classes, verify_test_set
from grocer.ensemble.metrics import confusion
from grocer.ensemble.inputs import load_oof_rows, read_stage_predictions
from grocer.errors import GrocerError
from grocer.params import Params
from grocer.stages.submit import STEP_NAMES, read_final
from grocer.training.live import read_curves

MODEL_PREFIX = "model_"  # metrics/blend.json: one section per single model
ANNOTATE_MAX_CLASSES = 30  # beyond this the counts in the confusion PNG's cells are unreadable


def per_class_frame(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> pd.DataFrame:
    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=np.arange(len(classes)), zero_division=0
    )
    return pd.DataFrame({"class": classes, "precision": precision, "recall": recall, "f1": f1, "support": support})


def evolution_frame(final: dict, blend: dict) -> pd.DataFrame:
    """Single models (step "0 <model>"), then the chain's steps present in final.json, in order."""
    rows = [
        {"step": f"0 {name.removeprefix(MODEL_PREFIX)}", "kind": "model", "acc": s["oof_acc"], "f1": s["oof_f1"]}
        for name, s in blend.items()
        if name.startswith(MODEL_PREFIX)
    ]
    steps = [name for name in STEP_NAMES if name in final]
    if not steps:
        raise GrocerError(f"{paths.FINAL_METRICS}: none of the steps {', '.join(STEP_NAMES)} (written by an older submit?)")
    rows += [
        {"step": f"{i} {name}", "kind": "chain", "acc": final[name]["oof_acc"], "f1": final[name]["oof_f1"]}
        for i, name in enumerate(steps, start=1)
    ]
    return pd.DataFrame(rows)


def training_curves(models: list[str], folds: list[int]) -> pd.DataFrame:
    """Every train item's curves (dvclive's files, grocer.training.live.read_curves) as one
    long table: item, metric, step, value.

    One table (not one plot per item and metric) so that `dvc plots show` draws one panel
    per metric with a line per item, whatever run.models and run.folds are.
    """
    frames = [read_curves(paths.train_curves_dir(model, fold), f"train@{model}-{fold}").assign(item=f"{model}-f{fold}")
              for model in models for fold in folds]
    return pd.concat(frames, ignore_index=True)[["item", "metric", "step", "value"]]


def _figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas: no pyplot, so no global state and never a window."""
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def confusion_png(matrix: np.ndarray, classes: list[str]) -> bytes:
    """Counts per (actual row, predicted column), coloured by the share of the actual class."""
    k = len(classes)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    side = max(4.0, 0.45 * k + 2.0)
    figure = _figure(side + 1.0, side)
    axes = figure.subplots()
    image = axes.imshow(share, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the actual class")
    axes.set_xticks(range(k), classes, rotation=60, ha="right")
    axes.set_yticks(range(k), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    axes.set_title(f"Final OOF confusion ({int(matrix.sum())} rows, acc {accuracy:.3f})")
    if k <= ANNOTATE_MAX_CLASSES:
        for i, j in zip(*np.nonzero(matrix)):
            axes.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                      color="white" if share[i, j] > 0.5 else "black")
    return _png(figure)


def evolution_png(evolution: pd.DataFrame) -> bytes:
    """Horizontal bars of OOF accuracy and macro-F1 per step, axis zoomed onto the values."""
    steps = evolution.iloc[::-1]  # first step on top
    positions = np.arange(len(steps))
    figure = _figure(7.5, 0.55 * len(steps) + 1.6)
    axes = figure.subplots()
    axes.barh(positions + 0.2, steps["acc"], height=0.4, label="accuracy", color="#4878a8")
    axes.barh(positions - 0.2, steps["f1"], height=0.4, label="macro-F1", color="#e49444")
    for position, acc, f1 in zip(positions, steps["acc"], steps["f1"]):
        axes.text(acc, position + 0.2, f" {acc:.4f}", va="center", fontsize=8)
        axes.text(f1, position - 0.2, f" {f1:.4f}", va="center", fontsize=8)
    axes.set_yticks(positions, steps["step"])
    values = np.concatenate([steps["acc"], steps["f1"]])
    span = max(values.max() - values.min(), 0.01)
    low = max(0.0, values.min() - 0.5 * span)
    axes.set_xlim(low, min(1.0, values.max() + 0.35 * span) + 0.25 * span)
    axes.set_xlabel("OOF score" + (" (axis zoomed)" if low > 0 else ""))
    axes.set_title("Stage-by-stage evolution (OOF)")
    axes.legend(loc="lower right", fontsize=8)
    return _png(figure)


def run(params: Params) -> None:
    verify_test_set(params.data)  # what is audited/reported is a submission for this test set
    classes = load_classes()
    rows = load_oof_rows(classes, params.run.folds)
    final = read_final()
    submitted = read_stage_predictions(paths.ENSEMBLE_DIRS[final["source"]], "oof", rows.ids, classes)
    pred = submitted.probs.argmax(axis=1)
    blend = json.loads(paths.metrics_file("blend").read_text())

    names = np.array(classes)
    evolution = evolution_frame(final, blend)
    with atomic.together() as staged:
        staged.write_frame(paths.CONFUSION_ROWS, pd.DataFrame({"actual": names[rows.y], "predicted": names[pred]}))
        staged.write_frame(paths.PER_CLASS, per_class_frame(rows.y, pred, classes))
        staged.write_frame(paths.EVOLUTION, evolution)
        staged.write_frame(paths.TRAIN_CURVES, training_curves(params.run.models, params.run.folds))
        staged.write_bytes(paths.CONFUSION_PNG, confusion_png(confusion(rows.y, pred, len(classes)), classes))
        staged.write_bytes(paths.EVOLUTION_PNG, evolution_png(evolution))
