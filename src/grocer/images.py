"""Decoding and per-image measurements: hashes, perceptual hash, detail, colour.

`inspect_image` never raises for a bad file: an unreadable image is a row with
`readable=False` and the decoder's message, so one corrupt file cannot stop a stage.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile
from scipy.fft import dctn

# A truncated JPEG must fail loudly here, not decode half-grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False

PHASH_BITS = 64
DECODE_ERRORS = (OSError, ValueError, Image.DecompressionBombError, SyntaxError)  # what a bad file raises


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def decode_rgb(path: Path) -> np.ndarray:
    """The image as an HxWx3 uint8 array. Raises OSError/ValueError for a bad file."""
    with Image.open(path) as img:
        img.load()
        return np.asarray(img.convert("RGB"))


def perceptual_hash(rgb: np.ndarray) -> int:
    """64-bit DCT perceptual hash (pHash): low-frequency 8x8 DCT block vs its median.

    Returned as a signed int64 so it stores in parquet; compare with `hamming`.
    """
    gray = Image.fromarray(rgb).convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    coeffs = dctn(np.asarray(gray, dtype=np.float64), norm="ortho")[:8, :8]
    # the DC term is left out of the median: it only measures overall brightness
    bits = (coeffs > np.median(coeffs.ravel()[1:])).ravel()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return int(np.array(value, dtype=np.uint64).view(np.int64))


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance between int64 hashes (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)))


def detail(rgb: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image at a fixed scale: low for blur or blank."""
    gray = Image.fromarray(rgb).convert("L").resize((64, 64), Image.Resampling.BILINEAR)
    g = np.asarray(gray, dtype=np.float64)
    lap = -4 * g[1:-1, 1:-1] + g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]
    return float(lap.var())


def inspect_image(path: Path) -> dict:
    """Every measurement of one file; a file that cannot be decoded gives readable=False."""
    row: dict = {
        "readable": False, "error": "", "file_sha256": "", "pixel_sha256": "",
        "width": 0, "height": 0, "mode": "", "phash": 0, "detail": np.nan, "pixel_std": np.nan,
        "mean_r": np.nan, "mean_g": np.nan, "mean_b": np.nan,
    }
    try:
        row["file_sha256"] = file_sha256(path)
        with Image.open(path) as img:
            row["mode"] = img.mode
            row["width"], row["height"] = img.size
            img.load()
            rgb = np.asarray(img.convert("RGB"))
    except DECODE_ERRORS as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    row["readable"] = True
    row["pixel_sha256"] = hashlib.sha256(rgb.tobytes() + str(rgb.shape).encode()).hexdigest()
    row["phash"] = perceptual_hash(rgb)
    row["detail"] = detail(rgb)
    row["pixel_std"] = float(rgb.std())
    means = rgb.reshape(-1, 3).mean(axis=0)
    row["mean_r"], row["mean_g"], row["mean_b"] = (float(m) for m in means)
    return row


def resize_center_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    """Shorter side to `size` (area filter), then the centred size x size square."""
    # Not PIL.ImageOps.fit: it resamples a sub-pixel source box, whose pixels differ from these by
    # up to 47 levels on odd sizes (101x77 -> 32), so every cache and result would change.
    img = Image.fromarray(rgb)
    w, h = img.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((new_w, new_h), Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)))
