"""Every path the pipeline reads or writes, defined once.

dvc.yaml names the same paths; `tests/test_paths.py` checks that the two agree,
so a path changed here and not there (or the reverse) fails the suite.
All paths are relative to the project root, which is where DVC runs every stage.
"""

from __future__ import annotations

from pathlib import Path

PARAMS = Path("params.yaml")
LOCAL_SETTINGS = Path("grocer.local.yaml")  # machine-local runtime settings (grocer.runtime), git-ignored

SAMPLE_DIR = Path("data/sample")
SAMPLE_TRUTH_DIR = Path("data/sample_truth")
REVIEW_SESSIONS_DIR = Path("data/review/sessions")  # git-tracked journals of `grocer review`
SAMPLE_REVIEW_DIR = Path("data/sample_review")  # the sample's demo journal, applied only to the sample
SAMPLE_TEST_LABELS = SAMPLE_TRUTH_DIR / "test_labels.csv"  # image_id,label,group of the sample's test set
SAMPLE_TRAIN_TRUTH = SAMPLE_TRUTH_DIR / "train_truth.csv"  # image_id,true_label,defect,duplicate_of

INTERIM_DIR = Path("data/interim")
MANIFEST = INTERIM_DIR / "manifest.parquet"
CLASSES = INTERIM_DIR / "classes.json"
TEST_FINGERPRINT = INTERIM_DIR / "test_fingerprint.json"
CLEAN_DIR = INTERIM_DIR / "clean"
QUARANTINE = CLEAN_DIR / "quarantine.csv"
CLEAN_DECISIONS = CLEAN_DIR / "decisions.csv"

PREPARED_DIR = Path("data/prepared")
PREPARED_TRAIN = PREPARED_DIR / "train.csv"
REVIEW_ACTIONS = PREPARED_DIR / "actions.csv"
REVIEW_QUARANTINE = PREPARED_DIR / "quarantine.csv"
FOLDS = PREPARED_DIR / "folds.csv"
CACHE_DIR = PREPARED_DIR / "cache"

PREDICTIONS_DIR = Path("data/predictions")
SOURCES_DIR = Path("data/sources")  # blend.sources: predictions from other revisions or teammates
MODEL_PREDICTIONS_DIR = PREDICTIONS_DIR / "models"
BLEND_DIR = PREDICTIONS_DIR / "blend"
STACK_DIR = PREDICTIONS_DIR / "stack"
OVERRIDE_DIR = PREDICTIONS_DIR / "override"
ENSEMBLE_DIRS = {"blend": BLEND_DIR, "stack": STACK_DIR, "override": OVERRIDE_DIR}  # override.base, submit.source
BLEND_WEIGHTS = BLEND_DIR / "weights.json"
CHOSEN_PAIRS = PREDICTIONS_DIR / "chosen_pairs.json"  # `choose_pairs`: the pair behind each topN of pairs.list
SUBMISSION = Path("data/submission/submission.csv")

MODELS_DIR = Path("models")
METRICS_DIR = Path("metrics")
PLOTS_DIR = Path("plots")
FINAL_METRICS = METRICS_DIR / "final.json"  # written by `submit`: the evolution table
MODELS_METRICS = METRICS_DIR / "models.json"  # written by `blend`: OOF and fold accuracies, weight per model
RISK_METRICS = METRICS_DIR / "risk.json"  # written by `audit`: the headline risk figures of audit.json
RUNNING_METRICS = METRICS_DIR / "running.json"  # git-tracked, {} at rest: the running train/pair item's epoch
AUDIT_GROUPS = PLOTS_DIR / "audit_groups.csv"  # per-group OOF accuracy, worst first (`audit`)
AUDIT_CONFUSIONS = PLOTS_DIR / "audit_confusions.csv"  # the largest confusions, by name (`audit`)
CONFUSION_ROWS = PLOTS_DIR / "confusion.csv"  # actual,predicted per final OOF row (`report`)
PER_CLASS = PLOTS_DIR / "per_class.csv"  # precision/recall/F1 per class (`report`)
EVOLUTION = PLOTS_DIR / "evolution.csv"  # OOF acc/F1 from the single models to the override (`report`)
TRAIN_CURVES = PLOTS_DIR / "train_curves.csv"  # every train item's curves in one long table (`report`)
CONFUSION_PNG = PLOTS_DIR / "confusion.png"
EVOLUTION_PNG = PLOTS_DIR / "evolution.png"
SCRATCH_DIR = Path(".scratch")  # untracked resume state of interrupted training


def clean_variant(variant: str) -> Path:
    """The training table of one cleaning variant (`strict` or `aggressive`)."""
    return CLEAN_DIR / f"{variant}.csv"


def session_journal(session: str, directory: Path = REVIEW_SESSIONS_DIR) -> Path:
    """One review session's journal (the session is the file's stem); the sample's demo
    journal lives in SAMPLE_REVIEW_DIR."""
    return directory / f"{session}.jsonl"


def metrics_file(stage: str) -> Path:
    return METRICS_DIR / f"{stage}.json"


def train_item_dir(model: str, fold: int) -> Path:
    return MODELS_DIR / model / f"fold{fold}"


def train_curves_dir(model: str, fold: int) -> Path:
    """One train item's dvclive directory: per-epoch curves and its final scalars
    (grocer.training.live; `report` draws every item's curves in TRAIN_CURVES)."""
    return PLOTS_DIR / "train" / f"{model}-f{fold}"


def train_metrics(model: str, fold: int) -> Path:
    """One train item's final scalars: dvclive's summary in its directory."""
    return train_curves_dir(model, fold) / "metrics.json"


def train_scratch(model: str, fold: int) -> Path:
    return SCRATCH_DIR / "train" / f"{model}-f{fold}"


def model_predictions_dir(model: str) -> Path:
    """The infer@<model> item's output: one infer_dir per fold."""
    return MODEL_PREDICTIONS_DIR / model


def infer_dir(model: str, fold: int) -> Path:
    return model_predictions_dir(model) / f"f{fold}"


def infer_meta(model: str, fold: int) -> Path:
    """The infer item's meta.json (carries the test fingerprint)."""
    return infer_dir(model, fold) / "meta.json"


def prediction_table(directory: Path, split: str) -> Path:
    """`oof.parquet` or `test.parquet` inside an infer, pair, blend, stack or override directory."""
    return directory / f"{split}.parquet"


def pair_item_dir(pair: str, fold: int) -> Path:
    return MODELS_DIR / "pairs" / pair / f"f{fold}"


def pair_curves_dir(pair: str, fold: int) -> Path:
    """One pair item's dvclive directory, as train_curves_dir."""
    return PLOTS_DIR / "pairs" / f"{pair}-f{fold}"


def pair_metrics(pair: str, fold: int) -> Path:
    """One pair item's final scalars: dvclive's summary in its directory."""
    return pair_curves_dir(pair, fold) / "metrics.json"


def pair_scratch(pair: str, fold: int) -> Path:
    return SCRATCH_DIR / "pairs" / f"{pair}-f{fold}"
