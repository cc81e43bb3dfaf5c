"""Stage `review` (`grocer apply-review`): apply the swipe journals to the chosen clean variant.

Reads every `data/review/sessions/*.jsonl` (and the sample's demo journal when
`data.dir` is the sample), replays them into one final decision per image
(`grocer.review.replay`), checks each against the manifest and the class list, and
applies it to `data/interim/clean/<clean.variant>.csv`:

- relabel: the row takes the new label;
- trash: the row moves to `data/prepared/quarantine.csv` (reason `review_trash`);
- suspicious: recorded only;
- keep: a human keep overrides an automatic quarantine: in the aggressive variant a
  quarantined image that a human kept (or relabelled: also a human verdict that it
  belongs in training) comes back. A dropped image (unreadable, too small, a copy...)
  never comes back (status `dropped`), except a cross-label duplicate: clean drops
  every copy because it cannot tell which label is right, and a human keep or relabel
  of one copy (the review page's duplicates view) is that answer.

An image whose file changed since it was reviewed (its sha256 in the manifest is not
the journal's), or whose label changed since, is a conflict: a warning on stderr
naming image and session, status `conflict` in actions.csv, not applied.
Statuses: applied (changed train.csv), restored (brought back from quarantine),
recorded (nothing to change), conflict, dropped.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from grocer import atomic, paths
from grocer.dataset import load_classes, read_csv, split_rows
from grocer.errors import GrocerError
from grocer.params import Params
from grocer.review.journal import DECISIONS, Event, read_journal
from grocer.review.replay import Decision, resolve
from grocer.stages.clean import DROP_REASONS

STATUSES = ("applied", "restored", "recorded", "conflict", "dropped")
TABLE_COLUMNS = ["image_id", "label", "group"]
ACTION_COLUMNS = ["image_id", "action", "new_label", "session", "time", "status"]
QUARANTINE_COLUMNS = [*TABLE_COLUMNS, "reasons"]
TRASH_REASON = "review_trash"
HUMAN_RESOLVES = "cross_label_duplicate"  # the one drop reason a human keep or relabel overrides


def journal_files(data_dir: str) -> list[Path]:
    """The journals to apply: every session, plus the demo journal when the data is the sample."""
    files = sorted(paths.REVIEW_SESSIONS_DIR.glob("*.jsonl"))
    if Path(data_dir) == paths.SAMPLE_DIR:
        files += sorted(paths.SAMPLE_REVIEW_DIR.glob("*.jsonl"))
    return files


def read_table(path: Path) -> pd.DataFrame:
    """A clean-stage table (image_id,label,group[,...]) as strings; a missing group is ''."""
    if not path.is_file():
        raise GrocerError(f"{path}: missing; run `dvc repro clean` first")
    table = read_csv(path, ["image_id", "label"])
    if "group" not in table.columns:
        raise GrocerError(f"{path}: missing column 'group'")
    return table


def human_resolves(reasons: str) -> bool:
    """Whether a human verdict answers every reason clean had to drop the image."""
    return {r for r in reasons.split(";") if r in DROP_REASONS} == {HUMAN_RESOLVES}


def check_decision(decision: Decision, train: pd.DataFrame, classes: list[str]) -> None:
    """An unknown image or class means the journal belongs to other data: an error at its line."""
    event = decision.event
    if event.image_id not in train.index:
        raise GrocerError(f"{decision.where}: image {event.image_id!r} is not a train image of {paths.MANIFEST}")
    for label in (event.label, event.new_label):
        if label is not None and label not in classes:
            raise GrocerError(f"{decision.where}: class {label!r} is not in the class list ({paths.CLASSES})")


def conflict(event: Event, row: pd.Series) -> str | None:
    """Why a decision no longer applies to the image as it is now, or None."""
    if row["file_sha256"] != event.sha256:
        return f"its file changed since it was reviewed (sha256 {event.sha256[:12]} then, {row['file_sha256'][:12]} now)"
    if row["label"] != event.label:
        return f"its label changed since it was reviewed ({event.label!r} then, {row['label']!r} now)"
    return None


def apply_decisions(
    variant: pd.DataFrame,
    clean_decisions: pd.DataFrame,
    train: pd.DataFrame,
    classes: list[str],
    decisions: list[Decision],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """Apply final decisions to a clean variant.

    Args:
        variant: the variant's table (image_id, label, group).
        clean_decisions: clean's decisions.csv (image_id, label, group, decision, reasons).
        train: the manifest's train rows indexed by image_id (label, file_sha256, readable, path).
        classes: the class list.
        decisions: final decisions (`replay.resolve`).

    Returns:
        (train table, actions table, review quarantine table, warning lines)
    """
    table = variant[TABLE_COLUMNS].set_index("image_id", drop=False)
    by_clean = clean_decisions.set_index("image_id", drop=False)
    restored, trashed, actions, warnings = [], [], [], []
    for decision in decisions:
        check_decision(decision, train, classes)
        event = decision.event
        why = conflict(event, train.loc[event.image_id])
        if why is not None:
            status = "conflict"
            warnings.append(f"conflict: image {event.image_id!r} (session {event.session!r}, {decision.where}): {why}; not applied")
        elif event.image_id not in by_clean.index:
            raise GrocerError(f"{paths.CLEAN_DECISIONS}: no decision for train image {event.image_id!r}; re-run `dvc repro clean`")
        elif by_clean.at[event.image_id, "decision"] == "drop" and not (
            event.action in ("keep", "relabel") and human_resolves(by_clean.at[event.image_id, "reasons"])
        ):
            status = "dropped"
        elif event.image_id in table.index:
            status = "recorded"
            if event.action == "relabel":
                table.at[event.image_id, "label"] = event.new_label
                status = "applied"
            elif event.action == "trash":
                trashed.append({**table.loc[event.image_id].to_dict(), "reasons": TRASH_REASON})
                table = table.drop(index=event.image_id)
                status = "applied"
        elif event.action in ("keep", "relabel"):  # out of this variant by an automatic quarantine
            row = by_clean.loc[event.image_id, TABLE_COLUMNS].to_dict()
            if event.action == "relabel":
                row["label"] = event.new_label
            restored.append(row)
            status = "restored"
        else:
            status = "recorded"  # trash/suspicious of an image the variant already left out
        actions.append({
            "image_id": event.image_id, "action": event.action, "new_label": event.new_label or "",
            "session": event.session, "time": event.time, "status": status,
        })
    out = pd.concat([table, pd.DataFrame(restored, columns=TABLE_COLUMNS)], ignore_index=True)
    return (
        out,
        pd.DataFrame(actions, columns=ACTION_COLUMNS),
        pd.DataFrame(trashed, columns=QUARANTINE_COLUMNS),
        warnings,
    )


def validate(out: pd.DataFrame, train: pd.DataFrame, classes: list[str]) -> None:
    """The table folds and cache will trust: unique ids, known labels, readable files."""
    duplicated = out["image_id"][out["image_id"].duplicated()]
    if len(duplicated):
        raise GrocerError(f"{paths.PREPARED_TRAIN}: duplicate image id {duplicated.iloc[0]!r}")
    unknown = sorted(set(out["label"]) - set(classes))
    if unknown:
        raise GrocerError(f"{paths.PREPARED_TRAIN}: label(s) {unknown} not in the class list")
    missing = out["image_id"][~out["image_id"].isin(train.index)]
    if len(missing):
        raise GrocerError(f"{paths.PREPARED_TRAIN}: image {missing.iloc[0]!r} is not a train image of {paths.MANIFEST}")
    rows = train.loc[out["image_id"]]
    unreadable = rows.index[~rows["readable"].astype(bool)]
    if len(unreadable):
        raise GrocerError(f"{paths.PREPARED_TRAIN}: image {unreadable[0]!r} is unreadable ({paths.MANIFEST})")
    no_file = [p for p in rows["path"] if not Path(p).is_file()]
    if no_file:
        raise GrocerError(f"{paths.PREPARED_TRAIN}: image file {no_file[0]} does not exist")


def review_metrics(journals: list[tuple[Path, list[Event]]], rows_in: int, out: pd.DataFrame, actions: pd.DataFrame) -> dict:
    applied = actions[actions["status"].isin(["applied", "restored"])]
    metrics = {
        "sessions": sum(1 for _, events in journals if events),
        "events": sum(len(events) for _, events in journals),
        "decisions": int(len(actions)),
        "rows_in": int(rows_in),
        "rows_out": int(len(out)),
        "relabels": int((applied["action"] == "relabel").sum()),
        "trash": int(((applied["action"] == "trash")).sum()),
    }
    metrics.update({f"action_{a}": int((actions["action"] == a).sum()) for a in DECISIONS})
    metrics.update({f"status_{s}": int((actions["status"] == s).sum()) for s in STATUSES})
    return metrics


def run(params: Params) -> None:
    if not paths.MANIFEST.is_file():
        raise GrocerError(f"{paths.MANIFEST}: missing; run `dvc repro ingest` first")
    manifest = pd.read_parquet(paths.MANIFEST)
    train = split_rows(manifest, "train").set_index("image_id", drop=False)
    classes = load_classes()
    variant = read_table(paths.clean_variant(params.clean.variant))
    clean_decisions = read_table(paths.CLEAN_DECISIONS)

    journals = [(path, read_journal(path)) for path in journal_files(params.data.dir)]
    out, actions, trashed, warnings = apply_decisions(variant, clean_decisions, train, classes, resolve(journals))
    validate(out, train, classes)
    for line in warnings:
        print(f"grocer apply-review: warning: {line}", file=sys.stderr)

    with atomic.together() as staged:
        staged.write_frame(paths.PREPARED_TRAIN, out[TABLE_COLUMNS])
        staged.write_frame(paths.REVIEW_ACTIONS, actions)
        staged.write_frame(paths.REVIEW_QUARANTINE, trashed)
        staged.write_json(paths.metrics_file("review"), review_metrics(journals, len(variant), out, actions))
