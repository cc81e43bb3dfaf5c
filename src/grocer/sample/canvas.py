"""Drawing primitives shared by the item painters and the scene: numpy fields + Pillow masks.

Colours are float32 RGB in [0, 1], drawn at the output resolution: shapes get an
analytic one-pixel soft edge instead of supersampling, which would cost 4x the time.

An item is drawn in its own square patch (a `Frame`) whose pixels carry the item's
local coordinates (u, v): unit length = the item's radius, v along the item's axis.
A painter shapes a `Surface` (coverage + surface normal) from u, v, shades it with a
Lambert + Blinn-Phong model and returns a `Layer` (RGB + alpha) that the scene pastes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[float, float, float]


def noise(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[float, float]) -> np.ndarray:
    """Smooth value noise of unit-ish amplitude: a (cells_y, cells_x) grid of normals, bicubic-upsampled."""
    h, w = shape
    cy, cx = max(1, round(cells[0])), max(1, round(cells[1]))
    grid = rng.standard_normal((cy + 2, cx + 2)).astype(np.float32)
    # the box skips the outer ring of the grid, where bicubic would clamp and flatten
    img = Image.fromarray(grid).resize((w, h), Image.Resampling.BICUBIC, box=(1, 1, cx + 1, cy + 1))
    return np.asarray(img)


def jitter(rng: np.random.Generator, color: Sequence[float], amount: float) -> np.ndarray:
    """The colour with a small independent gain on each channel (item-to-item variation)."""
    return np.clip(np.asarray(color, np.float32) * rng.normal(1.0, amount, 3), 0, 1).astype(np.float32)


@dataclass(frozen=True)
class Frame:
    """A patch around one item; `u`, `v` are each pixel's item-local coordinates."""

    u: np.ndarray
    v: np.ndarray
    px: float  # pixels per local unit
    angle: float  # rotation of the item in the image (radians)
    centre: tuple[int, int]  # pixel (x, y) of local (0, 0)
    light: np.ndarray  # unit vector towards the light, in local coordinates (z towards the viewer)

    @property
    def shape(self) -> tuple[int, int]:
        return self.u.shape

    def to_px(self, points: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
        """Local (u, v) points -> patch pixel (x, y) points, for ImageDraw."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        c, s = math.cos(self.angle), math.sin(self.angle)
        x = (pts[:, 0] * c - pts[:, 1] * s) * self.px + self.centre[0]
        y = (pts[:, 0] * s + pts[:, 1] * c) * self.px + self.centre[1]
        return list(zip(x.tolist(), y.tolist()))


def make_frame(px: float, angle: float, extent: tuple[float, float], light: Sequence[float]) -> Frame:
    """The smallest patch that holds the local box |u| <= extent[0], |v| <= extent[1], rotated."""
    c, s = math.cos(angle), math.sin(angle)
    half_x = math.ceil((abs(extent[0] * c) + abs(extent[1] * s)) * px) + 2
    half_y = math.ceil((abs(extent[0] * s) + abs(extent[1] * c)) * px) + 2
    x, y = np.meshgrid(np.arange(2 * half_x, dtype=np.float32) - half_x + 0.5,
                       np.arange(2 * half_y, dtype=np.float32) - half_y + 0.5)
    u = (x * c + y * s) / px
    v = (-x * s + y * c) / px
    lx, ly, lz = light
    local_light = np.array([lx * c + ly * s, -lx * s + ly * c, lz], dtype=np.float32)
    return Frame(u=u, v=v, px=px, angle=angle, centre=(half_x, half_y),
                 light=local_light / np.linalg.norm(local_light))


@dataclass
class Layer:
    """An item's pixels: colour and coverage, the size of its frame."""

    rgb: np.ndarray  # (h, w, 3) float32, premultiplied by alpha
    alpha: np.ndarray  # (h, w) float32

    @classmethod
    def empty(cls, frame: Frame) -> Layer:
        h, w = frame.shape
        return cls(np.zeros((h, w, 3), np.float32), np.zeros((h, w), np.float32))

    def over(self, rgb: np.ndarray, alpha: np.ndarray) -> None:
        """Composite `rgb` (per-pixel or one colour) with coverage `alpha` on top of this layer."""
        rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
        if rows.size == 0:
            return
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))  # work on the covered box only
        a = alpha[box]
        src = rgb[box] if np.ndim(rgb) == 3 else np.asarray(rgb, np.float32)
        self.rgb[box] += (src - self.rgb[box]) * a[..., None]
        self.alpha[box] += a * (1 - self.alpha[box])

    def paint(self, mask: np.ndarray, color: np.ndarray | Sequence[float]) -> None:
        """Paint a flat colour through `mask` on top of the layer."""
        self.over(np.asarray(color, np.float32), mask)


@dataclass
class Surface:
    """A shape's coverage and (unnormalised) normal, plus coordinates for textures."""

    alpha: np.ndarray
    nx: np.ndarray
    ny: np.ndarray
    nz: np.ndarray
    s: np.ndarray  # radial coordinate (round) or across-axis coordinate in [-1, 1] (tube)
    t: np.ndarray  # angle around the centre (round) or along-axis coordinate in [-1, 1] (tube)


def round_surface(
    u: np.ndarray, v: np.ndarray, px: float, a: float = 1.0, b: float = 1.0,
    radius: Callable[[np.ndarray], np.ndarray | float] = lambda theta: 1.0,
) -> Surface:
    """A rounded body: an ellipse (semi-axes a, b) whose radius is modulated by `radius(theta)`."""
    x, y = u / a, v / b
    theta = np.arctan2(y, x)
    rho = np.hypot(x, y) / radius(theta)
    edge_px = min(a, b) * px  # about how many pixels one unit of rho spans at the rim
    alpha = np.clip((1 - rho) * edge_px + 0.5, 0, 1)
    inside = np.clip(rho, 0, 0.999)
    nz = np.sqrt(1 - inside**2)
    scale = np.where(rho > 1e-6, inside / np.maximum(rho, 1e-6), 0)
    return Surface(alpha=alpha, nx=x * scale / a, ny=y * scale / b, nz=nz, s=rho, t=theta)


def tube_surface(
    u: np.ndarray, v: np.ndarray, px: float, length: float,
    width: Callable[[np.ndarray], np.ndarray], bend: float = 0.0,
) -> Surface:
    """An elongated body along the u axis, t in [-1, 1] from end to end, half-width `width(t)`.

    `bend` >= 0 curves the axis into a circular arc bulging towards -v (a banana).
    """
    if bend < 1e-3:
        along, across = u, -v
        dir_x, dir_y = np.zeros_like(u), -np.ones_like(u)
    else:
        r_c = 1.0 / bend
        dx, dy = u, v - r_c
        d = np.maximum(np.hypot(dx, dy), 1e-6)
        along, across = np.arctan2(dx, -dy) * r_c, d - r_c
        dir_x, dir_y = dx / d, dy / d
    t = along / length
    # the width profile is tabulated once and interpolated: far cheaper than evaluating it per pixel
    grid = np.linspace(-1, 1, 401)
    table = np.maximum(width(grid), 1e-4)
    w = np.interp(t, grid, table).astype(np.float32)
    slope = np.interp(t, grid, np.gradient(table, grid) / length).astype(np.float32)
    s = across / w
    valid = np.abs(t) <= 1
    alpha = np.where(valid, np.clip((1 - np.abs(s)) * w * px + 0.5, 0, 1), 0).astype(np.float32)
    s_in = np.clip(s, -0.999, 0.999)
    nz = np.sqrt(1 - s_in**2)
    n_along = -slope * nz  # the width's slope tilts the normal along the axis: round tapered ends
    nx = s_in * dir_x + n_along * -dir_y
    ny = s_in * dir_y + n_along * dir_x
    return Surface(alpha=alpha, nx=nx, ny=ny, nz=nz, s=s, t=t)


def shade(
    surface: Surface, base: np.ndarray, light: np.ndarray, *,
    ambient: float = 0.38, diffuse: float = 0.72, spec: float = 0.3, shine: int = 20,
    bump: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Lambert + Blinn-Phong shading of `base` (RGB or per-pixel RGB) on a surface.

    `bump` adds (dx, dy) to the normal before normalising: dimples, ridges, fuzz.
    """
    nx, ny, nz = surface.nx, surface.ny, surface.nz
    if bump is not None:
        nx, ny = nx + bump[0], ny + bump[1]
    inv_norm = 1 / (np.sqrt(nx * nx + ny * ny + nz * nz) + 1e-6)
    lx, ly, lz = light
    ndl = np.clip((nx * lx + ny * ly + nz * lz) * inv_norm, 0, 1)
    half = np.array([lx, ly, lz + 1.0], np.float32)
    half /= np.linalg.norm(half)
    ndh = np.clip((nx * half[0] + ny * half[1] + nz * half[2]) * inv_norm, 0, 1)
    light_term = (ambient + diffuse * ndl)[..., None]
    highlight = (spec * _int_power(ndh, round(shine)))[..., None]
    return np.clip(np.asarray(base, np.float32) * light_term + highlight, 0, 1).astype(np.float32)


def _int_power(x: np.ndarray, n: int) -> np.ndarray:
    """x**n for a whole n >= 1 by repeated squaring: a few multiplies instead of a float pow."""
    result, square = None, x
    while n:
        if n & 1:
            result = square if result is None else result * square
        n >>= 1
        if n:
            square = square * square
    return result


def bump_from(field: np.ndarray, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """A bump map's normal offsets from a height field (its gradient)."""
    gy, gx = np.gradient(field)
    return -strength * gx, -strength * gy


def polygon_mask(frame: Frame, points: Sequence[Sequence[float]]) -> np.ndarray:
    img = Image.new("L", frame.shape[::-1], 0)
    ImageDraw.Draw(img).polygon(frame.to_px(points), fill=255)
    return np.asarray(img, np.float32) / 255


def line_mask(frame: Frame, lines: Sequence[Sequence[Sequence[float]]], width: float) -> np.ndarray:
    """Polylines in local coordinates, `width` local units wide."""
    img = Image.new("L", frame.shape[::-1], 0)
    draw = ImageDraw.Draw(img)
    w = max(1, round(width * frame.px))
    for line in lines:
        draw.line(frame.to_px(line), fill=255, width=w, joint="curve")
    return np.asarray(img, np.float32) / 255


def dots_mask(frame: Frame, centres: np.ndarray, radii: np.ndarray, aspect: float = 1.0) -> np.ndarray:
    """Small ellipses at local `centres` (n, 2) with local `radii` (n,); axis-aligned in the patch."""
    img = Image.new("L", frame.shape[::-1], 0)
    draw = ImageDraw.Draw(img)
    for (x, y), r in zip(frame.to_px(centres), np.asarray(radii) * frame.px):
        draw.ellipse((x - r, y - r * aspect, x + r, y + r * aspect), fill=255)
    return np.asarray(img, np.float32) / 255


def star_points(n: int, r_outer: float, r_inner: float, phase: float, centre: Sequence[float] = (0.0, 0.0),
                squash: float = 1.0) -> list[tuple[float, float]]:
    """A star polygon (calyx, sepals) in local coordinates; `squash` flattens it along v."""
    pts = []
    for k in range(2 * n):
        r = r_outer if k % 2 == 0 else r_inner
        a = phase + math.pi * k / n
        pts.append((centre[0] + r * math.cos(a), centre[1] + r * math.sin(a) * squash))
    return pts
