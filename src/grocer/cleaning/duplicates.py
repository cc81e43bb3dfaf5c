"""Duplicate groups in tiers: identical file bytes, identical decoded pixels, and
perceptual-hash neighbours within a Hamming radius, merged into connected components.

Tools like imagededup or fastdup stop at pairs; here pairs become groups, each group
gets one deterministic keeper, and a group that spans two labels is flagged as such,
since the same photo under two labels is a labelling error, not a harmless copy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from grocer.images import hamming


def group_roots(n: int, pairs: list[tuple[int, int]]) -> np.ndarray:
    """Each of n positions' group root: the smallest position `pairs` connect it to
    (a deterministic name for the group, whatever order the pairs came in)."""
    edges = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    graph = coo_matrix((np.ones(len(edges), dtype=np.int8), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    _, first = np.unique(component, return_index=True)  # first position of each component
    return first[component]


def exact_pairs(keys: pd.Series) -> list[tuple[int, int]]:
    """Pairs (first, other) of positions sharing a non-empty key."""
    pairs = []
    valid = keys[keys != ""]
    for positions in valid.groupby(valid).indices.values():
        pairs.extend((int(positions[0]), int(p)) for p in positions[1:])
    return pairs


def near_pairs(hashes: np.ndarray, radius: int, block: int = 512) -> list[tuple[int, int]]:
    """Pairs i < j whose 64-bit perceptual hashes differ in at most `radius` bits."""
    pairs = []
    for start in range(0, len(hashes), block):
        chunk = hashes[start:start + block]
        dist = hamming(chunk[:, None], hashes[None, :])
        rows, cols = np.nonzero(dist <= radius)
        keep = cols > rows + start
        pairs.extend(zip((rows[keep] + start).tolist(), cols[keep].tolist()))
    return pairs


def duplicate_groups(frame: pd.DataFrame, radius: int) -> pd.DataFrame:
    """Group readable images by duplicate tiers.

    Args:
        frame: readable train rows with image_id, label, file_sha256, pixel_sha256, phash, width, height.
        radius: Hamming radius of the perceptual-hash tier.

    Returns:
        One row per input row (same order): dup_group (group root position, -1 when alone),
        exact (bool: an exact byte/pixel copy of another member), keeper (bool: the member kept),
        cross_label (bool: the group holds more than one label).
    """
    n = len(frame)
    exact = exact_pairs(frame["file_sha256"].reset_index(drop=True)) + exact_pairs(
        frame["pixel_sha256"].reset_index(drop=True)
    )
    groups = group_roots(n, exact + near_pairs(frame["phash"].to_numpy(np.int64), radius))
    exact_roots = group_roots(n, exact)
    sizes = pd.Series(groups).value_counts()
    exact_sizes = pd.Series(exact_roots).value_counts()

    labels = frame["label"].to_numpy()
    area = (frame["width"] * frame["height"]).to_numpy()
    ids = frame["image_id"].to_numpy()
    result = pd.DataFrame({
        "dup_group": np.where(sizes.reindex(groups).to_numpy() > 1, groups, -1),
        "exact": exact_sizes.reindex(exact_roots).to_numpy() > 1,
        "keeper": True,
        "cross_label": False,
    })
    for root in sizes[sizes > 1].index:
        members = np.flatnonzero(groups == root)
        result.loc[members, "cross_label"] = len(set(labels[members])) > 1
        # keeper: the largest image, ties broken by id, so reruns and reorderings agree
        order = sorted(members, key=lambda m: (-area[m], ids[m]))
        result.loc[order[1:], "keeper"] = False
    return result
