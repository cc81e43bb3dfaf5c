"""Thumbnails for the grid view, cached on disk under the untracked scratch folder.

One JPEG per image file, `.scratch/review/thumbs/<sha256[:2]>/<sha256>-<side>.jpg`,
keyed by the file's sha256 in the manifest: an image changed after ingest gets a new
key (after a re-ingest) instead of a stale thumbnail, and copies share one file.
Built lazily on the first request, written to a temporary name of its own and
renamed, so two requests building the same thumbnail at once (two copies of one
photo on a page) both succeed, and a killed server never leaves a half-written one.
Not `grocer.atomic`: it clears other writers' temporary files of a target, which is
right for a stage's outputs (one writer) and wrong for a cache that many threads fill.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from PIL import Image

from grocer import paths

THUMBS_DIR = paths.SCRATCH_DIR / "review" / "thumbs"
SIDE = 192  # px, the longer side; tiles show at most ~180 px
QUALITY = 82


def thumb_path(root: Path, sha256: str, side: int = SIDE) -> Path:
    return root / THUMBS_DIR / sha256[:2] / f"{sha256}-{side}.jpg"


def thumbnail(source: Path, cached: Path, side: int = SIDE) -> Path:
    """The cached thumbnail of `source`, built first when it is missing.

    Raises OSError (or PIL's errors) when the source cannot be decoded.
    """
    if cached.is_file():
        return cached
    with Image.open(source) as img:
        img.draft("RGB", (side, side))  # JPEG: decode at a reduced scale, much faster
        img = img.convert("RGB")
        img.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    data = io.BytesIO()
    img.save(data, "JPEG", quality=QUALITY)
    cached.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{cached.name}.", suffix=".tmp", dir=cached.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data.getvalue())
        os.chmod(tmp, 0o644)
        os.replace(tmp, cached)  # the last of two concurrent writers wins; both wrote the same bytes
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return cached
