"""Per-image cleaning rules on the manifest's measurements (pure functions).

Thresholds are absolute where a physical limit exists (a side below `min_side`
pixels cannot be trained on) and per class where one global constant misfires:
a cabbage photo has far more texture than a lemon, so "low detail" means low for
its own class, in robust z units (median and MAD).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its sigma


def robust_z(values: pd.Series, by: pd.Series) -> pd.Series:
    """(x - median) / (1.4826 * MAD) within each group of `by`; 0 where MAD is 0."""
    grouped = values.groupby(by)
    median = grouped.transform("median")
    mad = (values - median).abs().groupby(by).transform("median") * MAD_TO_SIGMA
    z = (values - median) / mad.replace(0, np.nan)
    return z.fillna(0.0)


def too_small(frame: pd.DataFrame, min_side: int) -> pd.Series:
    return frame[["width", "height"]].min(axis=1) < min_side


def blank(frame: pd.DataFrame, blank_std: float) -> pd.Series:
    return frame["pixel_std"] < blank_std


def low_detail(frame: pd.DataFrame, detail_z: float) -> pd.Series:
    """Detail (Laplacian variance, log scale) far below its class's median."""
    z = robust_z(np.log1p(frame["detail"]), frame["label"])
    return z < -detail_z


OUTLIER_FEATURES = ("mean_r", "mean_g", "mean_b", "pixel_std", "log_aspect")


def outliers(frame: pd.DataFrame, outlier_z: float) -> pd.Series:
    """Any colour/contrast/shape feature beyond `outlier_z` robust z of its class."""
    features = frame.assign(log_aspect=np.log(frame["width"] / frame["height"]))
    flags = pd.Series(False, index=frame.index)
    for feature in OUTLIER_FEATURES:
        flags |= robust_z(features[feature], frame["label"]).abs() > outlier_z
    return flags
