"""A shop photo: background, items with shadows, packaging, then the camera.

`sample_style` draws a group's look of the shop and the camera (a product code is
usually shot at one place with one device); `render_photo` draws one photo in that
style. Both are pure: an RNG in, values out.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from grocer.sample.canvas import RGB, Layer, noise
from grocer.sample.draw import FAMILIES, Look

BACKGROUNDS = ("wood", "crate", "shelf", "steel", "grass", "paper", "cloth")

_PALETTES: dict[str, tuple[RGB, ...]] = {
    "wood": ((0.55, 0.38, 0.22), (0.70, 0.52, 0.32), (0.42, 0.28, 0.18), (0.78, 0.65, 0.45)),
    "crate": ((0.65, 0.50, 0.32), (0.50, 0.36, 0.22), (0.75, 0.62, 0.42)),
    "shelf": ((0.85, 0.85, 0.83), (0.78, 0.80, 0.84), (0.90, 0.88, 0.84)),
    "steel": ((0.62, 0.64, 0.66), (0.70, 0.70, 0.70), (0.55, 0.57, 0.60)),
    "grass": ((0.18, 0.42, 0.14), (0.25, 0.50, 0.18)),
    "paper": ((0.72, 0.58, 0.40), (0.90, 0.90, 0.88), (0.80, 0.72, 0.60)),
}


@dataclass(frozen=True)
class Style:
    """A station: the shop surface, light and camera where a product group is usually shot."""

    background: str  # one of BACKGROUNDS
    palette: RGB  # the background's main colour
    light: tuple[float, float, float]  # unit vector towards the light (image x, y, towards viewer)
    exposure: float
    white_balance: RGB  # per-channel gains, mean 1
    contrast: float
    vignette: float
    gradient: float  # brightness falloff across the frame, away from the light
    blur: float  # Gaussian radius in output pixels
    noise: float  # sensor noise sigma, 0-255 scale
    quality: tuple[int, int]  # JPEG quality range
    zoom: float  # item size multiplier (camera distance)
    size: tuple[int, int]  # output (width, height)


def sample_style(rng: np.random.Generator, img_size: int) -> Style:
    background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    if background == "cloth":
        r, g, b = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.2, 0.5), rng.uniform(0.4, 0.8))
        palette = (r, g, b)
    else:
        options = _PALETTES[background]
        palette = options[int(rng.integers(len(options)))]
    palette = tuple(float(c) for c in np.clip(np.asarray(palette) * rng.normal(1, 0.05, 3), 0, 1))
    azimuth = rng.uniform(0, 2 * math.pi)
    elevation = rng.uniform(0.55, 0.9)
    flat = math.sqrt(1 - elevation**2)
    light = (flat * math.cos(azimuth), flat * math.sin(azimuth), elevation)
    gains = rng.normal(1, 0.04, 3)
    low = int(rng.integers(62, 90))
    long_side = round(img_size * rng.choice([1.0, 1.15, 1.33]))
    size = (long_side, img_size) if rng.random() < 0.5 else (img_size, long_side)
    return Style(
        background=background,
        palette=palette,
        light=light,
        exposure=float(rng.uniform(0.88, 1.1)),
        white_balance=tuple(float(g) for g in gains / gains.mean()),
        contrast=float(rng.uniform(0.9, 1.12)),
        vignette=float(rng.uniform(0, 0.35)),
        gradient=float(rng.uniform(0, 0.25)),
        blur=float(rng.choice([0.0, 0.25, 0.5, 0.75])),
        noise=float(rng.uniform(1, 5)),
        quality=(low, low + 8),
        zoom=float(rng.uniform(0.88, 1.14)),
        size=size,
    )


# --- backgrounds -----------------------------------------------------------------------------


def _wood(rng: np.random.Generator, shape: tuple[int, int], palette: np.ndarray) -> np.ndarray:
    h, w = shape
    grain = noise(rng, shape, (h / 3, 2)) + 0.5 * noise(rng, shape, (h / 1.5, w / 10))
    plank = rng.uniform(0.25, 0.5) * h
    rows = np.arange(h, dtype=np.float32)[:, None]
    seam = np.exp(-((rows % plank) / 1.5) ** 2)
    tone = 1 + 0.08 * rng.standard_normal(int(h / plank) + 2)[(rows // plank).astype(int)]
    shade = (0.92 + 0.07 * grain) * tone - 0.45 * seam
    return palette * shade[..., None]


def background(rng: np.random.Generator, style: Style, shape: tuple[int, int]) -> np.ndarray:
    """The empty scene, (h, w, 3) float32."""
    h, w = shape
    palette = np.asarray(style.palette, np.float32)
    kind = style.background
    if kind in ("wood", "crate"):
        vertical = rng.random() < 0.4
        work = (w, h) if vertical else (h, w)
        img = _wood(rng, work, palette)
        if kind == "crate":  # slats with dark gaps between them
            period = rng.uniform(0.3, 0.5) * work[0]
            rows = np.arange(work[0], dtype=np.float32)[:, None] + rng.uniform(0, period)
            gap = np.clip(((rows % period) / period - 0.72) * 12, 0, 1)
            img = img * (1 - gap[..., None]) + palette * 0.18 * gap[..., None]
        img = np.broadcast_to(img, (*work, 3))
        img = img.transpose(1, 0, 2) if vertical else img
    elif kind == "shelf":
        rows = np.linspace(0, 1, h, dtype=np.float32)[:, None]
        img = palette * (0.78 + 0.22 * rows + 0.02 * noise(rng, shape, (3, 3)))[..., None]
        if rng.random() < 0.6:
            top = int(h * rng.uniform(0.8, 0.9))
            rail = np.asarray(rng.choice([(0.95, 0.95, 0.95), (0.1, 0.1, 0.12), (0.15, 0.3, 0.65), (0.85, 0.15, 0.12)]),
                              np.float32)
            img[top:] = rail * rng.uniform(0.85, 1.0)
            tag_x = int(rng.uniform(0.05, 0.6) * w)
            tag = Image.new("L", (w, h), 0)
            ImageDraw.Draw(tag).rectangle((tag_x, top + 2, tag_x + w // 4, h - 2), fill=255)
            tag_mask = np.asarray(tag, np.float32)[..., None] / 255
            img = img * (1 - tag_mask) + np.asarray((0.97, 0.9, 0.3), np.float32) * tag_mask
    elif kind == "steel":
        brushed = noise(rng, shape, (h / 1.2, 2))
        sheen = np.linspace(-1, 1, w, dtype=np.float32)[None, :] * rng.uniform(-0.12, 0.12)
        img = palette * (1 + 0.04 * brushed + sheen)[..., None]
    elif kind == "grass":
        img = palette * (1 + 0.35 * noise(rng, shape, (h / 1.6, w / 1.6)) + 0.1 * noise(rng, shape, (4, 4)))[..., None]
    elif kind == "paper":
        img = palette * (1 + 0.03 * noise(rng, shape, (h / 2, w / 2)) + 0.07 * noise(rng, shape, (5, 5)))[..., None]
    else:  # cloth: soft folds and a weave
        weave = np.outer(np.cos(np.arange(h, dtype=np.float32) * 1.6), np.cos(np.arange(w, dtype=np.float32) * 1.6))
        img = palette * (1 + 0.12 * noise(rng, shape, (3, 3)) + 0.03 * weave)[..., None]
    return np.clip(img, 0, 1).astype(np.float32)


# --- items -----------------------------------------------------------------------------------


def _paste(canvas: np.ndarray, layer: Layer, cx: float, cy: float, light: tuple[float, float, float]) -> None:
    """Composite an item centred at (cx, cy) with a soft contact shadow, clipped to the canvas."""
    ph, pw = layer.alpha.shape
    x0, y0 = int(round(cx)) - pw // 2, int(round(cy)) - ph // 2
    h, w = canvas.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + pw, w), min(y0 + ph, h)
    if cx0 >= cx1 or cy0 >= cy1:
        return
    inner = (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0))
    region = canvas[cy0:cy1, cx0:cx1]
    # the shadow falls away from the light: the coverage shifted, at quarter size (upscaling softens it)
    small = Image.fromarray((layer.alpha * 255).astype(np.uint8)).reduce(4)
    shift = (-light[0] * 0.08 * small.width, -light[1] * 0.08 * small.width)
    small = small.transform(small.size, Image.Transform.AFFINE, (1, 0, -shift[0], 0, 1, -shift[1]))
    shadow = np.asarray(small.resize((pw, ph), Image.Resampling.BICUBIC), np.float32) / 255
    region *= (1 - 0.45 * shadow[inner])[..., None]
    region[:] = layer.rgb[inner] + region * (1 - layer.alpha[inner][..., None])  # premultiplied over


def _positions(rng: np.random.Generator, n: int, canvas: tuple[int, int], px: float, look: Look,
               angle: float, long: bool) -> list[tuple[float, float]]:
    h, w = canvas
    if n == 1:
        return [(w / 2 + rng.normal(0, 0.07) * w, h / 2 + rng.normal(0, 0.07) * h)]
    if long:  # side by side across their common axis
        spacing = 2.2 * px / look.aspect
        perp = (-math.sin(angle), math.cos(angle))
        return [(w / 2 + perp[0] * (i - (n - 1) / 2) * spacing + rng.normal(0, 0.06) * w,
                 h / 2 + perp[1] * (i - (n - 1) / 2) * spacing + rng.normal(0, 0.06) * h) for i in range(n)]
    spread = min(0.3, 0.12 + 0.04 * n)
    return [(w * rng.uniform(0.5 - spread, 0.5 + spread), h * rng.uniform(0.5 - spread, 0.5 + spread))
            for _ in range(n)]


def _packaging(rng: np.random.Generator, canvas: np.ndarray, packed: str) -> np.ndarray:
    h, w = canvas.shape[:2]
    if packed == "bag":  # film: a whitish veil with long crease highlights
        creases = [(1 - np.abs(noise(rng, (h, w), cells))) ** 8 for cells in ((2, 6), (6, 2))]
        ridges = np.maximum(*creases)
        veil = np.clip(0.1 + 0.22 * ridges + 0.04 * noise(rng, (h, w), (9, 9)), 0, 0.45)[..., None]
        return canvas * (1 - veil) + np.asarray((0.93, 0.95, 0.96), np.float32) * veil
    if packed == "net":
        mask = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(mask)
        spacing = min(h, w) * rng.uniform(0.12, 0.17)
        for direction in (1, -1):
            tilt = math.tan(math.radians(45 + rng.uniform(-10, 10)))
            for k in np.arange(-h - w, h + w, spacing):
                draw.line([(k, 0), (k + direction * h / tilt, h)], fill=190, width=1)
        colour = np.asarray(rng.choice([(0.85, 0.2, 0.1), (0.95, 0.55, 0.1), (0.9, 0.85, 0.3), (0.95, 0.95, 0.95)]),
                            np.float32)
        a = np.asarray(mask, np.float32)[..., None] / 255
        return canvas * (1 - a) + colour * a
    return canvas


# --- camera ----------------------------------------------------------------------------------


def _camera(rng: np.random.Generator, style: Style, rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    ys, xs = np.meshgrid(np.linspace(-1, 1, h, dtype=np.float32), np.linspace(-1, 1, w, dtype=np.float32),
                         indexing="ij")
    lx, ly, _ = style.light
    falloff = 1 + style.gradient * (xs * lx + ys * ly)
    vignette = 1 - style.vignette * (xs**2 + ys**2) / 2
    # auto exposure and auto white balance wander a little from shot to shot
    gain = style.exposure * rng.normal(1, 0.05) * np.asarray(style.white_balance, np.float32) * rng.normal(1, 0.02, 3)
    img = rgb * (falloff * vignette)[..., None] * gain.astype(np.float32)
    img = (img - 0.5) * style.contrast + 0.5
    pil = Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8))
    radius = style.blur * rng.uniform(0.7, 1.3)
    if radius > 0.05:
        pil = pil.filter(ImageFilter.GaussianBlur(radius))
    grain = rng.standard_normal((h, w, 1), dtype=np.float32) + 0.5 * rng.standard_normal((h, w, 3), dtype=np.float32)
    out = np.asarray(pil, np.float32) + style.noise * grain
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def render_photo(rng: np.random.Generator, label: str, look: Look, style: Style, packed: str) -> np.ndarray:
    """One photo of `label` items in a group's look and style, (height, width, 3) uint8."""
    family = FAMILIES[label]
    width, height = style.size
    shape = (height, width)
    canvas = background(rng, style, shape)
    n = int(rng.integers(look.count[0], look.count[1] + 1))
    px = look.size * min(shape) * style.zoom * rng.uniform(0.92, 1.08)
    angle = rng.uniform(0, 2 * math.pi)
    spots = sorted(_positions(rng, n, shape, px, look, angle, family.long), key=lambda p: p[1])
    for cx, cy in spots:
        item_angle = angle + rng.normal(0, 0.2) if family.long else rng.uniform(0, 2 * math.pi)
        layer = family.draw(rng, px * rng.uniform(0.9, 1.1), item_angle, style.light, look)
        _paste(canvas, layer, cx, cy, style.light)
    return _camera(rng, style, _packaging(rng, canvas, packed))
