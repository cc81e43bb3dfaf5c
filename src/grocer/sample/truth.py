"""Scoring the cleaning stage against the sample's injected defects (data/sample_truth).


A copy-type defect is caught when the cleaner removes one image of the pair, not
necessarily the one the generator called the copy: for an exact duplicate the
cleaner keeps one member by its own deterministic rule, and for the same image under
two labels it drops both. Wrong labels are left out of the rule-based recall: no
pixel rule can see them; the model-ranked review finds them.
"""

from __future__ import annotations

import pandas as pd

RULE_DEFECTS = ("too_small", "blank", "unreadable", "exact_duplicate", "cross_label_duplicate")


def clean_recall(truth: pd.DataFrame, decisions: pd.DataFrame) -> dict[str, float]:
    """Recall per injected defect and the share of clean images dropped.

    Args:
        truth: train_truth.csv (image_id, true_label, defect, duplicate_of; "" for none).
        decisions: clean's decisions.csv (image_id, decision, reasons).

    Returns:
        recall_<defect> for each rule defect, recall_rule_defects over all of them,
        clean_dropped_share (clean images dropped, not counting the originals of injected
        copies) and clean_quarantined_share.
    """
    decision = decisions.set_index("image_id")["decision"]
    removed = decision != "keep"
    caught = truth["image_id"].map(removed)
    is_copy = truth["defect"].isin(["exact_duplicate", "cross_label_duplicate"])
    caught[is_copy] = caught[is_copy] | truth.loc[is_copy, "duplicate_of"].map(removed).fillna(False)

    result: dict[str, float] = {}
    for defect in RULE_DEFECTS:
        rows = truth["defect"] == defect
        if rows.any():
            result[f"recall_{defect}"] = float(caught[rows].mean())
    rule_rows = truth["defect"].isin(RULE_DEFECTS)
    result["recall_rule_defects"] = float(caught[rule_rows].mean())

    originals = set(truth.loc[is_copy, "duplicate_of"])
    clean = truth[(truth["defect"] == "") & ~truth["image_id"].isin(originals)]
    result["clean_dropped_share"] = float((clean["image_id"].map(decision) == "drop").mean())
    result["clean_quarantined_share"] = float((clean["image_id"].map(decision) == "quarantine").mean())
    return result
