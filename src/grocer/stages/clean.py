"""Stage `clean`: rule-based drop and quarantine decisions, each with its reasons.

drop (the image cannot or must not be trained on): unreadable, too_small, blank,
low_detail, duplicate (an exact or near copy of a kept image of the same label),
cross_label_duplicate (the same pixels under two labels: every copy goes).
quarantine (doubtful, a human should look): near_duplicate_cross_label (a perceptual
near-copy under another label), outlier (colour/contrast/shape far from its class).

Both variants are written: `strict` removes drops and keeps quarantined rows,
`aggressive` removes both. `review` applies the human decisions to the variant
named by `clean.variant`, so switching variants never re-runs this stage.
Files are never moved or deleted: decisions are tables.
"""

from __future__ import annotations

import pandas as pd

from grocer import atomic, paths
from grocer.cleaning import rules
from grocer.cleaning.duplicates import duplicate_groups
from grocer.dataset import split_rows
from grocer.errors import GrocerError
from grocer.params import CleanParams, Params

DROP_REASONS = ("unreadable", "too_small", "blank", "low_detail", "duplicate", "cross_label_duplicate")
QUARANTINE_REASONS = ("near_duplicate_cross_label", "outlier")
TABLE_COLUMNS = ["image_id", "label", "group"]


def reason_flags(train: pd.DataFrame, clean: CleanParams) -> pd.DataFrame:
    """One boolean column per reason, one row per train image (same index)."""
    flags = pd.DataFrame(False, index=train.index, columns=[*DROP_REASONS, *QUARANTINE_REASONS])
    flags["unreadable"] = ~train["readable"]
    readable = train[train["readable"]]
    flags.loc[readable.index, "too_small"] = rules.too_small(readable, clean.min_side)
    flags.loc[readable.index, "blank"] = rules.blank(readable, clean.blank_std)
    # detail and outlier statistics come from images that are otherwise sound,
    # so a handful of blank frames cannot shift a class's median
    sound = readable[~flags.loc[readable.index, ["too_small", "blank"]].any(axis=1)]
    flags.loc[sound.index, "low_detail"] = rules.low_detail(sound, clean.detail_z)
    flags.loc[sound.index, "outlier"] = rules.outliers(sound, clean.outlier_z)

    dups = duplicate_groups(readable, clean.phash_radius).set_index(readable.index)
    in_group = dups["dup_group"] >= 0
    flags.loc[readable.index, "cross_label_duplicate"] = in_group & dups["exact"] & dups["cross_label"]
    flags.loc[readable.index, "duplicate"] = in_group & ~dups["keeper"] & ~dups["cross_label"]
    flags.loc[readable.index, "near_duplicate_cross_label"] = in_group & ~dups["exact"] & dups["cross_label"]
    return flags


def decide(train: pd.DataFrame, flags: pd.DataFrame) -> pd.DataFrame:
    reasons = flags.apply(lambda row: ";".join(flags.columns[row.to_numpy()]), axis=1)
    drop = flags[list(DROP_REASONS)].any(axis=1)
    quarantine = flags[list(QUARANTINE_REASONS)].any(axis=1) & ~drop
    decision = pd.Series("keep", index=train.index).mask(quarantine, "quarantine").mask(drop, "drop")
    return train[TABLE_COLUMNS].assign(decision=decision, reasons=reasons)


def clean_metrics(decisions: pd.DataFrame, flags: pd.DataFrame) -> dict:
    counts = decisions["decision"].value_counts()
    n = len(decisions)
    return {
        "n_train": n,
        "n_keep": int(counts.get("keep", 0)),
        "n_drop": int(counts.get("drop", 0)),
        "n_quarantine": int(counts.get("quarantine", 0)),
        "n_strict": int(n - counts.get("drop", 0)),
        "n_aggressive": int(counts.get("keep", 0)),
        **{f"reason_{reason}": int(flags[reason].sum()) for reason in flags.columns},
    }


def run(params: Params) -> None:
    manifest = pd.read_parquet(paths.MANIFEST)
    train = split_rows(manifest, "train").reset_index(drop=True)
    flags = reason_flags(train, params.clean)
    decisions = decide(train, flags)

    strict = decisions[decisions["decision"] != "drop"]
    aggressive = decisions[decisions["decision"] == "keep"]
    missing = sorted(set(train["label"]) - set(aggressive["label"]))
    if missing:
        raise GrocerError(f"clean: no image of class(es) {missing} survives the aggressive variant; check the clean.* thresholds")

    with atomic.together() as staged:
        out = staged.dir(paths.CLEAN_DIR)
        decisions.to_csv(out / paths.CLEAN_DECISIONS.name, index=False)
        strict[TABLE_COLUMNS].to_csv(out / paths.clean_variant("strict").name, index=False)
        aggressive[TABLE_COLUMNS].to_csv(out / paths.clean_variant("aggressive").name, index=False)
        decisions[decisions["decision"] == "quarantine"][[*TABLE_COLUMNS, "reasons"]].to_csv(
            out / paths.QUARANTINE.name, index=False
        )
        staged.write_json(paths.metrics_file("clean"), clean_metrics(decisions, flags))
