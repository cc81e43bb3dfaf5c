"""Procedural fruit and vegetables: one painter per family, each a pure function.

`paint(label, rng, px, angle, light, look) -> Layer` draws one item (or one bunch)
centred in its own patch: `px` is the item's radius (round items) or half-length
(long items) in canvas pixels, `angle` its rotation, `light` the unit vector towards
the light in image coordinates, `look` the variety (colours, shape, texture).

The confusable pairs are drawn by the same family with a different look, so that
they differ mainly where the real ones do: orange/mandarin by hue, size and
flatness; red_apple/tomato by hue, streaks and stem vs calyx; kiwi/potato by hue,
fuzz vs eyes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from grocer.sample.canvas import (
    RGB, Frame, Layer, bump_from, dots_mask, jitter, line_mask, make_frame, noise, polygon_mask,
    round_surface, shade, star_points, tube_surface,
)

FEATURES = ("", "navel", "leaf", "pointed", "vine", "cut", "cloves", "tops", "wrapped", "stripes")


@dataclass(frozen=True)
class Look:
    """How one variety (one product code) looks."""

    color: RGB  # main skin colour
    accent: RGB  # secondary colour: streaks, stripes, flesh, veins, roots
    size: float  # radius (round) or half-length (long items), as a fraction of the image's short side
    count: tuple[int, int]  # items (or bunches) per photo, inclusive range
    aspect: float = 1.0  # round: height/width of the body; long: length/width
    texture: float = 1.0  # strength of the family's texture (dimples, fuzz, eyes, stripes, spots)
    gloss: float = 1.0  # multiplier of the family's specular highlight
    feature: str = ""  # one of FEATURES, read by the family that knows it

    def __post_init__(self) -> None:
        if self.feature not in FEATURES:
            raise ValueError(f"unknown look feature {self.feature!r}; known: {FEATURES}")


Painter = Callable[[np.random.Generator, float, float, tuple[float, float, float], Look], Layer]


def _leaf(frame: Frame, base: tuple[float, float], direction: float, length: float, width: float) -> np.ndarray:
    """A pointed leaf (lens shape) from `base` towards `direction`, as a mask."""
    c, s = math.cos(direction), math.sin(direction)
    pts = []
    for k in range(9):
        x = length * k / 8
        y = width * math.sin(math.pi * k / 8)
        pts.append((base[0] + x * c - y * s, base[1] + x * s + y * c))
    for k in range(7, 0, -1):
        x = length * k / 8
        y = -width * math.sin(math.pi * k / 8)
        pts.append((base[0] + x * c - y * s, base[1] + x * s + y * c))
    return polygon_mask(frame, pts)


def _fine(rng: np.random.Generator, frame: Frame, period_px: float) -> np.ndarray:
    """Noise with features about `period_px` pixels wide."""
    h, w = frame.shape
    return noise(rng, frame.shape, (h / period_px, w / period_px))


def _coarse(rng: np.random.Generator, frame: Frame, cells: float = 3) -> np.ndarray:
    return noise(rng, frame.shape, (cells, cells))


# --- round families ------------------------------------------------------------------------


def draw_citrus(rng, px, angle, light, look: Look) -> Layer:
    """Orange, mandarin, lemon: dimpled peel, soft highlight; navel, leaf or pointed ends."""
    frame = make_frame(px, angle, (1.6, 1.6) if look.feature == "leaf" else (1.25, 1.25), light)
    aspect = look.aspect * rng.uniform(0.96, 1.04)
    phase = rng.uniform(0, 2 * math.pi)
    if look.feature == "pointed":  # lemon: a nub at each end of the long axis
        def radius(th):
            return 1 + 0.16 * np.abs(np.cos(th)) ** 24 + 0.02 * np.cos(2 * th + phase)
    else:
        def radius(th):
            return 1 + 0.025 * np.cos(2 * th + phase)
    surface = round_surface(frame.u, frame.v, px, 1.0, aspect, radius)
    dimples = _fine(rng, frame, 1.6)
    mottle = _coarse(rng, frame)
    color = jitter(rng, look.color, 0.025) * (1 + 0.05 * mottle)[..., None]
    rgb = shade(surface, color, frame.light, ambient=0.4, spec=0.28 * look.gloss, shine=14,
                bump=bump_from(dimples, 0.16 * look.texture))
    rgb *= (1 - 0.05 * look.texture * np.clip(dimples, 0, None))[..., None]  # pores
    layer = Layer.empty(frame)
    layer.over(rgb, surface.alpha)
    if look.feature == "pointed":
        end = 1.14 if rng.random() < 0.5 else -1.14
        layer.paint(dots_mask(frame, np.array([[end, 0.0]]), np.array([0.05])) * surface.alpha,
                    np.asarray(look.accent) * 0.7)
    elif look.feature == "navel" and rng.random() < 0.7:
        spot = rng.uniform(-0.5, 0.5, 2) * [1, aspect]
        mask = dots_mask(frame, spot[None], np.array([0.11]))
        layer.paint(mask * 0.85, np.asarray(look.color) * 0.55)
    elif rng.random() < 0.6:  # stem scar, a small dark green dot
        spot = rng.uniform(-0.55, 0.55, 2) * [1, aspect]
        layer.paint(dots_mask(frame, spot[None], np.array([0.06])), (0.33, 0.36, 0.12))
    if look.feature == "leaf":
        top = (0.0, -aspect * 0.95)
        layer.paint(line_mask(frame, [[top, (0.05, -aspect * 1.12)]], 0.05), (0.35, 0.3, 0.12))
        direction = -math.pi / 2 + rng.choice([-1, 1]) * rng.uniform(0.5, 1.1)
        leaf = _leaf(frame, (0.03, -aspect * 1.08), direction, 0.55, 0.2)
        leaf_rgb = jitter(rng, look.accent, 0.05) * (0.85 + 0.15 * frame.v.clip(-1, 1)[..., None] ** 2)
        layer.over(leaf_rgb.astype(np.float32), leaf)
    return layer


def draw_apple(rng, px, angle, light, look: Look) -> Layer:
    """Red apple: red over yellow-green streaks, lenticels, stem in a dimple."""
    frame = make_frame(px, angle, (1.3, 1.3), light)
    aspect = look.aspect * rng.uniform(0.95, 1.05)
    view = rng.choice(["top", "side", "bottom"], p=[0.3, 0.5, 0.2])  # from below: no stem to see
    top_view = view != "side"
    if top_view:
        def radius(th):
            return 1 + 0.03 * np.cos(5 * th)
    else:
        def radius(th):
            # a dimple at the stem (top) and slightly wider shoulders
            return 1 - 0.08 * np.exp(-((th + math.pi / 2) / 0.3) ** 2) + 0.04 * np.sin(-th) * (np.sin(-th) > 0)
    surface = round_surface(frame.u, frame.v, px, 1.0, aspect, radius)
    lon = np.arctan2(surface.nx, surface.nz + 1e-6)
    lat = surface.ny
    wobble = _coarse(rng, frame, 4)
    # streaks run from stem to base (they radiate from the stem when seen from above)
    around = np.arctan2(frame.v, frame.u) if top_view else lon
    streaks = sum(np.cos(k * around + 2.0 * wobble + rng.uniform(0, 6.3)) for k in rng.integers(14, 30, 3)) / 3
    blush = _coarse(rng, frame, 2.5) + 0.7 * lat  # the shaded side and the base stay yellower
    mix = np.clip(look.texture * (0.2 + 0.3 * blush + 0.18 * streaks), 0, 0.85)[..., None]
    red = jitter(rng, look.color, 0.03)
    color = red * (1 - mix) + np.asarray(look.accent, np.float32) * mix
    rgb = shade(surface, color, frame.light, ambient=0.36, spec=0.42 * look.gloss, shine=22)
    layer = Layer.empty(frame)
    layer.over(rgb, surface.alpha)
    n = int(rng.integers(15, 35))  # lenticels, faint
    pts = rng.uniform(-0.8, 0.8, (n, 2)) * [1, aspect]
    layer.paint(dots_mask(frame, pts, np.full(n, 0.018)) * surface.alpha * 0.2, (0.95, 0.85, 0.55))
    stem_brown = (0.36, 0.24, 0.12)
    if view == "top":
        cavity = np.exp(-(frame.u**2 + frame.v**2) / 0.04)
        layer.rgb *= (1 - 0.45 * cavity)[..., None]
        layer.paint(line_mask(frame, [[(0, 0), tuple(rng.uniform(-0.15, 0.15, 2))]], 0.06), stem_brown)
    elif view == "bottom":  # the dry calyx end: a small dark pit
        layer.rgb *= (1 - 0.35 * np.exp(-(frame.u**2 + frame.v**2) / 0.01))[..., None]
    else:
        top = -aspect * 0.9
        cavity = np.exp(-(frame.u**2 / 0.05 + (frame.v - top) ** 2 / 0.01))
        layer.rgb *= (1 - 0.4 * cavity)[..., None]
        tip = (rng.uniform(-0.12, 0.12), top - rng.uniform(0.18, 0.3))
        layer.paint(line_mask(frame, [[(0, top + 0.05), tip]], 0.055), stem_brown)
    return layer


def draw_tomato(rng, px, angle, light, look: Look) -> Layer:
    """Tomato: uniform glossy red, green star calyx; on the vine, roma, beefsteak, cherry."""
    frame = make_frame(px, angle, (1.7, 1.7) if look.feature == "vine" else (1.3, 1.35 * max(1.0, look.aspect)), light)
    aspect = look.aspect * rng.uniform(0.95, 1.05)
    lobes = 0.025 + 0.015 * (look.texture > 1)
    k = int(rng.integers(6, 9))
    phase = rng.uniform(0, 6.3)

    def radius(th):
        return 1 + lobes * np.cos(k * th + phase)

    surface = round_surface(frame.u, frame.v, px, 1.0, aspect, radius)
    color = jitter(rng, look.color, 0.025) * (1 + 0.03 * _coarse(rng, frame))[..., None]
    rgb = shade(surface, color, frame.light, ambient=0.34, spec=0.7 * look.gloss, shine=45)
    layer = Layer.empty(frame)
    layer.over(rgb, surface.alpha)
    green = jitter(rng, look.accent, 0.06)
    # seen from below (never on the vine) no calyx shows, only a pale blossom scar
    view = rng.choice(["top", "side"] if look.feature == "vine" else ["top", "side", "bottom"])
    if view == "bottom":
        layer.paint(dots_mask(frame, np.zeros((1, 2)), np.array([0.05])) * 0.6, (0.85, 0.55, 0.35))
        return layer
    centre = (0.0, 0.0) if view == "top" else (0.0, -aspect * 0.9)
    squash = 1.0 if view == "top" else 0.35
    star = star_points(int(rng.integers(5, 7)), rng.uniform(0.3, 0.42), 0.07, rng.uniform(0, 6.3), centre, squash)
    layer.paint(polygon_mask(frame, star), green)
    layer.paint(dots_mask(frame, np.array([centre]), np.array([0.06])), green * 0.8)
    if look.feature == "vine":
        direction = -math.pi / 2 + rng.uniform(-0.6, 0.6)
        end = (centre[0] + 0.7 * math.cos(direction), centre[1] + 0.7 * math.sin(direction))
        layer.paint(line_mask(frame, [[centre, end]], 0.07), green * 0.85)
    return layer


def draw_kiwi(rng, px, angle, light, look: Look) -> Layer:
    """Kiwi: matte olive-brown ovoid with fine fuzz; the `cut` look shows green flesh."""
    frame = make_frame(px, angle, (1.15, 1.15 * look.aspect + 0.1), light)
    aspect = look.aspect * rng.uniform(0.95, 1.05)
    if look.feature == "cut" and rng.random() < 0.5:
        return _cut_kiwi(rng, frame, look)
    phase = rng.uniform(0, 6.3)
    surface = round_surface(frame.u, frame.v, px, 1.0, aspect, lambda th: 1 + 0.025 * np.cos(3 * th + phase))
    fuzz = _fine(rng, frame, 1.1)
    color = jitter(rng, look.color, 0.03) * (1 + 0.06 * _coarse(rng, frame, 4))[..., None]
    color = color * (1 + 0.16 * look.texture * fuzz)[..., None]
    rgb = shade(surface, color, frame.light, ambient=0.45, diffuse=0.65, spec=0.05 * look.gloss, shine=6,
                bump=bump_from(fuzz, 0.3 * look.texture))
    # fuzz frays the outline a little
    alpha = np.clip((1 - surface.s + 0.05 * look.texture * fuzz) * px * aspect + 0.5, 0, 1)
    layer = Layer.empty(frame)
    layer.over(rgb, alpha.astype(np.float32))
    end = 0.97 if rng.random() < 0.5 else -0.97
    layer.paint(dots_mask(frame, np.array([[end, 0.0]]), np.array([0.06])) * 0.8, np.asarray(look.color) * 0.5)
    return layer


def _cut_kiwi(rng, frame: Frame, look: Look) -> Layer:
    """Half a kiwi face-up: brown rim, green flesh, pale core, a ring of black seeds."""
    surface = round_surface(frame.u, frame.v, frame.px, 1.0, look.aspect)
    rho = surface.s
    flesh = np.asarray(look.accent, np.float32)
    core = np.asarray((0.9, 0.88, 0.7), np.float32)
    rays = 0.5 + 0.5 * np.cos(40 * surface.t)
    color = np.where((rho < 0.28)[..., None], core, flesh * (0.9 + 0.15 * rays * (rho > 0.3))[..., None])
    color = np.where((rho > 0.9)[..., None], np.asarray(look.color, np.float32), color)
    flat = round_surface(frame.u, frame.v, frame.px, 4.0, 4.0 * look.aspect)  # nearly flat: even light
    rgb = shade(flat, color, frame.light, ambient=0.5, diffuse=0.55, spec=0.15, shine=8)
    layer = Layer.empty(frame)
    layer.over(rgb, surface.alpha)
    n = int(rng.integers(22, 34))
    ang = np.sort(rng.uniform(0, 2 * math.pi, n))
    r = rng.uniform(0.36, 0.5, n)
    seeds = np.stack([r * np.cos(ang), r * np.sin(ang) * look.aspect], axis=1)
    layer.paint(dots_mask(frame, seeds, np.full(n, 0.03)) * surface.alpha, (0.06, 0.05, 0.03))
    return layer


def draw_potato(rng, px, angle, light, look: Look) -> Layer:
    """Potato: lumpy matte tuber, blotchy skin, dark eyes with pale rims, dirt."""
    frame = make_frame(px, angle, (1.3, 1.3 * look.aspect * 1.2), light)
    aspect = look.aspect * rng.uniform(0.9, 1.1)
    amps = rng.uniform(0.02, 0.07, 3)
    phases = rng.uniform(0, 6.3, 3)

    def radius(th):
        return 1 + sum(a * np.cos((k + 2) * th + p) for k, (a, p) in enumerate(zip(amps, phases)))

    surface = round_surface(frame.u, frame.v, px, 1.0, aspect, radius)
    blotch = _coarse(rng, frame, 5)
    skin = _fine(rng, frame, 1.5)
    color = jitter(rng, look.color, 0.04) * (1 + 0.09 * blotch + 0.05 * look.texture * skin)[..., None]
    dirt = np.clip((_coarse(rng, frame, 4) - 0.6) * 1.5, 0, 0.5)[..., None]
    color = color * (1 - dirt) + np.asarray((0.35, 0.27, 0.18), np.float32) * dirt
    rgb = shade(surface, color, frame.light, ambient=0.42, diffuse=0.68, spec=0.06 * look.gloss, shine=6,
                bump=bump_from(_coarse(rng, frame, 6), 1.5))
    layer = Layer.empty(frame)
    layer.over(rgb, surface.alpha)
    n = int(rng.integers(4, 10))
    ang, r = rng.uniform(0, 6.3, n), np.sqrt(rng.uniform(0.02, 0.7, n))
    eyes = np.stack([r * np.cos(ang), r * np.sin(ang) * aspect], axis=1)
    sizes = rng.uniform(0.035, 0.065, n)
    layer.paint(dots_mask(frame, eyes, sizes * 1.7) * surface.alpha * 0.45, np.asarray(look.color) * 1.15)
    layer.paint(dots_mask(frame, eyes, sizes) * surface.alpha * 0.9, np.asarray(look.accent))
    return layer


def draw_bulb(rng, px, angle, light, look: Look) -> Layer:
    """Onion and garlic: pointed neck, papery longitude stripes, root tuft; garlic shows cloves."""
    cloves = look.feature == "cloves"
    frame = make_frame(px, angle, (1.15, 1.6 * look.aspect), light)
    aspect = look.aspect * rng.uniform(0.95, 1.05)
    neck, power = (0.55, 12) if cloves else (0.4, 10)
    flat = 0.14 if cloves else 0.06

    def radius(th):
        up, down = np.clip(-np.sin(th), 0, None), np.clip(np.sin(th), 0, None)
        return 1 + neck * up**power - flat * down**4

    surface = round_surface(frame.u, frame.v, px, 1.0, aspect, radius)
    lon = np.arctan2(surface.nx, surface.nz + 1e-6)
    wobble = 0.35 * _coarse(rng, frame, 3)
    color = jitter(rng, look.color, 0.03)
    if cloves:
        n = int(rng.integers(6, 9))
        bulge = np.abs(np.cos(n * (lon + wobble) / 2)) ** 0.5
        streak = np.clip(0.5 + 0.5 * np.cos(2 * n * lon + 3 * wobble), 0, 1) * np.clip(surface.ny + 0.3, 0, 1)
        mix = (0.8 * look.texture * streak)[..., None]
        color = color * (1 - mix) + np.asarray(look.accent, np.float32) * mix
        color = color * (0.78 + 0.22 * bulge)[..., None]
    else:
        n = int(rng.integers(9, 15))
        stripes = np.cos(n * (lon + wobble))
        lines = np.exp(-(1 - stripes) * 10)
        color = color * (1 - 0.22 * look.texture * lines)[..., None]
        flakes = np.clip((_coarse(rng, frame, 4) - 0.5) * 2, 0, 0.6)[..., None]
        color = color * (1 - flakes) + np.asarray(look.accent, np.float32) * flakes
    rgb = shade(surface, color, frame.light, ambient=0.4, spec=0.2 * look.gloss, shine=10)
    layer = Layer.empty(frame)
    layer.over(rgb, surface.alpha)
    # dry neck tip
    tip = np.clip((-frame.v / aspect - 1.0) * 3, 0, 1) * surface.alpha
    layer.paint(tip * 0.8, np.asarray(look.color) * 0.6)
    bottom = aspect * (0.96 - flat)
    n_roots = int(rng.integers(5, 12))
    roots = [[(x, bottom), (x + rng.uniform(-0.12, 0.12), bottom + rng.uniform(0.08, 0.2))]
             for x in rng.uniform(-0.22, 0.22, n_roots)]
    layer.paint(line_mask(frame, roots, 0.025) * 0.9, (0.72, 0.64, 0.5))
    return layer


def draw_cabbage(rng, px, angle, light, look: Look) -> Layer:
    """Cabbage: big leafy head, pale midribs and veins, darker outer leaves; savoy is crinkled."""
    frame = make_frame(px, angle, (1.15, 1.15), light)
    amps, phases = rng.uniform(0.015, 0.04, 2), rng.uniform(0, 6.3, 2)
    surface = round_surface(
        frame.u, frame.v, px, 1.0, look.aspect,
        lambda th: 1 + amps[0] * np.cos(5 * th + phases[0]) + amps[1] * np.cos(7 * th + phases[1]),
    )
    base = jitter(rng, look.color, 0.04)
    outer = np.clip((surface.s - 0.55) * 2.2, 0, 1)[..., None]
    color = base * (1.08 - 0.3 * outer) * (1 + 0.06 * _coarse(rng, frame, 5))[..., None]
    crinkle = _fine(rng, frame, 2.0)
    rgb = shade(surface, color, frame.light, ambient=0.4, spec=0.12 * look.gloss, shine=10,
                bump=bump_from(crinkle, 1.4 * look.texture))
    layer = Layer.empty(frame)
    layer.over(rgb, surface.alpha)
    vein_color = np.asarray(look.accent, np.float32)
    # leaf edges: arcs around off-centre points, a shadow line under each
    edges = []
    for _ in range(int(rng.integers(3, 6))):
        c = rng.uniform(-0.5, 0.5, 2)
        r = rng.uniform(0.4, 0.8)
        a0 = rng.uniform(0, 6.3)
        arc = [(c[0] + r * math.cos(a0 + s), c[1] + r * math.sin(a0 + s)) for s in np.linspace(0, 2.2, 14)]
        edges.append(arc)
    layer.rgb *= (1 - 0.3 * line_mask(frame, edges, 0.05) * surface.alpha)[..., None]
    veins = []
    root = np.array([rng.uniform(-0.2, 0.2), rng.uniform(0.2, 0.6)])
    for a in np.linspace(-2.6, -0.5, int(rng.integers(4, 7))) + rng.uniform(-0.15, 0.15):
        bend = rng.uniform(-0.25, 0.25)
        steps = np.linspace(0, 1.3, 8)
        veins.append([tuple(root + s * np.array([math.cos(a + bend * s), math.sin(a + bend * s)])) for s in steps])
    mask = line_mask(frame, veins, 0.06) * surface.alpha
    layer.rgb = layer.rgb * (1 - 0.6 * mask[..., None]) + vein_color * shade(
        surface, np.ones(3, np.float32), frame.light, spec=0.0) * (0.6 * mask[..., None])
    return layer


def draw_pepper(rng, px, angle, light, look: Look) -> Layer:
    """Bell pepper: blocky, lobed, creased, very glossy, thick green stem."""
    frame = make_frame(px, angle, (1.35, 1.45 * look.aspect), light)
    aspect = look.aspect * rng.uniform(0.95, 1.05)
    lobes = int(rng.integers(3, 5))
    phase = rng.uniform(0, 6.3)

    def radius(th):
        down = np.clip(np.sin(th), 0, None)
        return 1 + 0.07 * np.cos(4 * th) ** 2 + 0.06 * down * np.cos(2 * lobes * th + phase)

    surface = round_surface(frame.u, frame.v, px, 1.0, aspect, radius)
    lon = np.arctan2(surface.nx, surface.nz + 1e-6)
    crease = np.exp(-((np.cos(lobes * lon + phase) - 1) ** 2) * 3)
    color = jitter(rng, look.color, 0.03) * (1 - 0.3 * crease)[..., None]
    shoulder = np.exp(-(frame.u**2 / 0.12 + (frame.v + aspect * 0.8) ** 2 / 0.03))
    color = color * (1 - 0.35 * shoulder)[..., None]
    rgb = shade(surface, color, frame.light, ambient=0.32, spec=0.75 * look.gloss, shine=40)
    rgb = np.clip(rgb + 0.12 * look.gloss * shade(surface, np.zeros(3, np.float32), frame.light, ambient=0,
                                                  diffuse=0, spec=1.0, shine=6), 0, 1)
    layer = Layer.empty(frame)
    layer.over(rgb, surface.alpha)
    stem_green = jitter(rng, look.accent, 0.05)
    top = -aspect * 0.82
    layer.paint(dots_mask(frame, np.array([[0.0, top]]), np.array([0.24]), aspect=0.35), stem_green * 0.9)
    lean = rng.uniform(-0.12, 0.12)
    stem = [(-0.09, top), (0.09, top), (0.07 + lean, top - 0.3), (-0.06 + lean, top - 0.32)]
    layer.paint(polygon_mask(frame, stem), stem_green)
    return layer


# --- long families ---------------------------------------------------------------------------


def draw_carrot(rng, px, angle, light, look: Look) -> Layer:
    """Carrot: tapered orange root with dark growth rings; green tops in bunched looks."""
    tops = look.feature == "tops"
    frame = make_frame(px, angle, (1.9, 0.75) if tops else (1.15, 0.5), light)
    half_width = 1.0 / look.aspect * rng.uniform(0.85, 1.15)

    def width(t):
        s = (t + 1) / 2
        return half_width * (1 - s) ** 0.75 * np.sqrt(np.clip(s / 0.04, 0, 1)) + 0.004

    surface = tube_surface(frame.u, frame.v, px, 1.0, width, bend=rng.uniform(0, 0.35))
    color = jitter(rng, look.color, 0.04) * (1 + 0.06 * _coarse(rng, frame, 5))[..., None]
    n = int(rng.integers(6, 14))
    rings = np.zeros(frame.shape, np.float32)
    for t_k, reach in zip(rng.uniform(-0.85, 0.9, n), rng.uniform(0.3, 0.9, n)):
        rings += np.exp(-((surface.t - t_k) / 0.012) ** 2) * (np.abs(surface.s - rng.uniform(-0.3, 0.3)) < reach)
    color = color * (1 - 0.35 * look.texture * np.clip(rings, 0, 1))[..., None]
    rgb = shade(surface, color, frame.light, ambient=0.38, spec=0.15 * look.gloss, shine=10)
    layer = Layer.empty(frame)
    layer.over(rgb, surface.alpha)
    green = jitter(rng, look.accent, 0.06)
    if tops:
        stems = []
        for a in math.pi + rng.uniform(-0.45, 0.45, int(rng.integers(4, 8))):
            length = rng.uniform(0.5, 0.85)
            end = (-1 + length * math.cos(a), length * math.sin(a))
            stems.append([(-0.98, 0.0), end])
            for s in np.linspace(0.35, 0.9, 3):  # leaflets
                base = (-0.98 + s * length * math.cos(a), s * length * math.sin(a))
                for side in (-1, 1):
                    b = a + side * 0.8
                    stems.append([base, (base[0] + 0.14 * math.cos(b), base[1] + 0.14 * math.sin(b))])
        layer.paint(line_mask(frame, stems, 0.028), green)
    else:
        layer.paint(dots_mask(frame, np.array([[-0.97, 0.0]]), np.array([0.05])), green * 0.7)
    return layer


def draw_cucumber(rng, px, angle, light, look: Look) -> Layer:
    """Cucumber: dark green cigar, pale lengthwise stripes, warts; `wrapped` adds shrink film."""
    frame = make_frame(px, angle, (1.12, 0.45), light)
    half_width = 1.0 / look.aspect * rng.uniform(0.9, 1.1)

    def width(t):
        return half_width * np.clip(1 - np.abs(t) ** 4, 0, 1) ** 0.25 + 0.004

    surface = tube_surface(frame.u, frame.v, px, 1.0, width, bend=rng.uniform(0, 0.25))
    wobble = _coarse(rng, frame, 4)
    stripes = np.clip(0.5 + 0.5 * np.cos(5 * math.pi * surface.s + 1.5 * wobble), 0, 1)
    mix = (0.45 * look.texture * stripes)[..., None]
    color = jitter(rng, look.color, 0.04) * (1 - mix) + np.asarray(look.accent, np.float32) * mix
    end = np.clip((surface.t - 0.9) * 8, 0, 1)[..., None]  # the pale blossom end
    color = color * (1 - 0.5 * end) + np.asarray((0.75, 0.72, 0.35), np.float32) * 0.5 * end
    rgb = shade(surface, color, frame.light, ambient=0.36, spec=0.35 * look.gloss, shine=20)
    layer = Layer.empty(frame)
    layer.over(rgb, surface.alpha)
    n = int(40 * look.texture)
    if n:
        warts = np.stack([rng.uniform(-0.85, 0.85, n), rng.uniform(-0.8, 0.8, n) * half_width], axis=1)
        layer.paint(dots_mask(frame, warts, np.full(n, 0.012)) * surface.alpha * 0.6, (0.7, 0.8, 0.5))
    if look.feature == "wrapped":
        film = np.clip(0.5 + 0.6 * _fine(rng, frame, 3.0), 0, 1) * surface.alpha
        layer.rgb = layer.rgb * (1 - 0.22 * film[..., None]) + 0.22 * film[..., None]
        wrinkles = [[(x, -half_width * 1.05), (x + rng.uniform(-0.1, 0.1), half_width * 1.05)]
                    for x in rng.uniform(-0.8, 0.8, int(rng.integers(3, 7)))]
        layer.paint(line_mask(frame, wrinkles, 0.02) * surface.alpha * 0.25, (0.95, 0.97, 0.97))
    return layer


def draw_eggplant(rng, px, angle, light, look: Look) -> Layer:
    """Eggplant: glossy dark purple pear shape, green star calyx and stem; graffiti is striped."""
    frame = make_frame(px, angle, (1.35, 0.75), light)
    half_width = 1.0 / look.aspect * rng.uniform(0.9, 1.1)

    def width(t):
        return half_width * np.sqrt(np.clip(1 - t**2, 0, 1)) * (0.62 + 0.38 * (t + 1) / 2) + 0.004

    surface = tube_surface(frame.u, frame.v, px, 1.0, width, bend=rng.uniform(0, 0.3))
    color = jitter(rng, look.color, 0.04)
    if look.feature == "stripes":
        wobble = _coarse(rng, frame, 3)
        stripes = np.clip((np.cos(6 * np.arcsin(np.clip(surface.s, -1, 1)) + 2 * wobble) - 0.2) * 2, 0, 1)
        color = color * (1 - stripes[..., None]) + np.asarray(look.accent, np.float32) * stripes[..., None]
    rgb = shade(surface, color, frame.light, ambient=0.3, spec=0.65 * look.gloss, shine=40)
    layer = Layer.empty(frame)
    layer.over(rgb, surface.alpha)
    green = jitter(rng, (0.3, 0.42, 0.16), 0.06)
    calyx = star_points(5, half_width * 0.75, half_width * 0.3, rng.uniform(0, 6.3), (-0.88, 0.0), 0.9)
    layer.paint(polygon_mask(frame, calyx), green)
    stem = [(-0.95, -0.06), (-0.95, 0.06), (-1.3, 0.045), (-1.3, -0.045)]
    layer.paint(polygon_mask(frame, stem), green * 0.85)
    return layer


def draw_banana(rng, px, angle, light, look: Look) -> Layer:
    """A bunch of bananas: curved ridged fingers joined at the crown, brown tips, ripe spots."""
    frame = make_frame(px, angle, (1.6, 1.6), light)
    n = int(rng.integers(1, 6))
    half_width = 1.0 / look.aspect * rng.uniform(0.9, 1.1)
    bend = rng.uniform(0.45, 0.85)

    def width(t):
        body = half_width * np.clip(1 - np.abs(t) ** 2.5, 0, 1) ** 0.45
        stalk = 0.35 * half_width * (t < -0.72)
        return np.maximum(body, stalk) + 0.004

    layer = Layer.empty(frame)
    crown = np.array([-0.9, 0.25])
    for i in range(n):
        beta = (i - (n - 1) / 2) * 0.16 + rng.uniform(-0.04, 0.04)
        c, s = math.cos(beta), math.sin(beta)
        du, dv = frame.u - crown[0], frame.v - crown[1] + i * 0.08
        u = c * du + s * dv - 1.0  # the finger's own frame: crown at its t = -1 end
        v = -s * du + c * dv
        surface = tube_surface(u, v, px, 1.0, width, bend=bend * rng.uniform(0.9, 1.1))
        surface.nx, surface.ny = c * surface.nx - s * surface.ny, s * surface.nx + c * surface.ny
        ridges = np.exp(-((np.abs(surface.s) - 0.45) / 0.07) ** 2)
        color = jitter(rng, look.color, 0.03) * (1 - 0.12 * ridges)[..., None]
        stalk = np.clip((-0.7 - surface.t) * 10, 0, 1)[..., None]
        color = color * (1 - stalk) + np.asarray((0.42, 0.4, 0.16), np.float32) * stalk
        tip = np.clip((surface.t - 0.94) * 20, 0, 1)[..., None]
        color = color * (1 - tip) + np.asarray((0.2, 0.14, 0.06), np.float32) * tip
        rgb = shade(surface, color, frame.light, ambient=0.4, spec=0.22 * look.gloss, shine=12)
        spots = int(look.texture * rng.integers(0, 25))
        if spots:
            pts = rng.uniform(-1, 1, (spots, 2))
            pts_frame = np.stack([
                crown[0] + c * (pts[:, 0] * 0.8 + 1.0) - s * pts[:, 1] * half_width * 0.6,
                crown[1] - i * 0.08 + s * (pts[:, 0] * 0.8 + 1.0) + c * pts[:, 1] * half_width * 0.6,
            ], axis=1)
            mask = dots_mask(frame, pts_frame, rng.uniform(0.01, 0.025, spots)) * surface.alpha
            rgb = rgb * (1 - 0.7 * mask[..., None]) + np.asarray(look.accent, np.float32) * 0.7 * mask[..., None]
        layer.over(rgb, surface.alpha)
    return layer


@dataclass(frozen=True)
class Family:
    draw: Painter
    long: bool  # long items in one photo lie roughly parallel, round ones any way


FAMILIES: dict[str, Family] = {
    "orange": Family(draw_citrus, long=False),
    "mandarin": Family(draw_citrus, long=False),
    "lemon": Family(draw_citrus, long=False),
    "red_apple": Family(draw_apple, long=False),
    "tomato": Family(draw_tomato, long=False),
    "kiwi": Family(draw_kiwi, long=False),
    "potato": Family(draw_potato, long=False),
    "onion": Family(draw_bulb, long=False),
    "garlic": Family(draw_bulb, long=False),
    "cabbage": Family(draw_cabbage, long=False),
    "bell_pepper": Family(draw_pepper, long=False),
    "carrot": Family(draw_carrot, long=True),
    "cucumber": Family(draw_cucumber, long=True),
    "eggplant": Family(draw_eggplant, long=True),
    "banana": Family(draw_banana, long=True),
}
