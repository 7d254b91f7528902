"""Procedural surface patterns: object textures (a [0, 1] pattern mixing a colour with its shade) and backgrounds.

All functions draw from the given numpy Generator only, so a scene's pixels are a pure function of its seed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

COLOR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (40, 170, 50),
    "blue": (30, 70, 220),
    "yellow": (245, 220, 40),
    "orange": (245, 140, 20),
    "purple": (130, 40, 170),
    "pink": (245, 140, 190),
    "brown": (130, 80, 40),
    "black": (20, 20, 20),
    "white": (245, 245, 245),
    "gray": (128, 128, 128),
    "cyan": (30, 220, 230),
    "magenta": (220, 30, 200),
    "teal": (20, 128, 128),
    "navy": (20, 30, 110),
    "olive": (128, 128, 20),
    "maroon": (120, 20, 30),
    "gold": (212, 175, 55),
    "silver": (192, 192, 200),
    "beige": (225, 210, 170),
}


def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (x, y), each (size, size) float32."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return x, y


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a cells x cells random grid upsampled bilinearly to (size, size)."""
    coarse = Image.fromarray(rng.random((cells, cells), dtype=np.float32), mode="F")
    return np.asarray(coarse.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def _stripes(along: np.ndarray, period: float) -> np.ndarray:
    return np.asarray(np.sin(2 * np.pi * along / period) > 0, dtype=np.float32)


def _dots(x: np.ndarray, y: np.ndarray, period: float) -> np.ndarray:
    fx, fy = (x % period) - period / 2, (y % period) - period / 2
    return np.asarray(np.hypot(fx, fy) < period * 0.28, dtype=np.float32)


def _checks(x: np.ndarray, y: np.ndarray, period: float) -> np.ndarray:
    cell = max(int(period * 0.7), 3)
    return np.asarray(((x // cell) + (y // cell)) % 2, dtype=np.float32)


def _waves(along: np.ndarray, across: np.ndarray, period: float) -> np.ndarray:
    return np.asarray(np.sin(2 * np.pi * (along + 2.5 * np.sin(across / 4.0)) / period) > 0, dtype=np.float32)


def _ramp(along: np.ndarray) -> np.ndarray:
    return np.asarray((along - along.min()) / max(float(np.ptp(along)), 1e-6), dtype=np.float32)


def _hatches(x: np.ndarray, y: np.ndarray, period: float) -> np.ndarray:
    p = int(period)
    return np.asarray((((x + y) % p) < 1.5) | (((x - y) % p) < 1.5), dtype=np.float32)


def texture_pattern(texture: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size) float32 in [0, 1]: where 1, the object shows its shade instead of its colour."""
    x, y = grid(size)
    period = float(rng.uniform(5.0, 9.0))
    angle = float(rng.uniform(0.0, np.pi))
    along = x * np.cos(angle) + y * np.sin(angle)
    across = -x * np.sin(angle) + y * np.cos(angle)
    patterns: dict[str, Callable[[], np.ndarray]] = {
        "plain": lambda: np.zeros((size, size), np.float32),
        "striped": lambda: _stripes(along, period),
        "dotted": lambda: _dots(x, y, period),
        "checkered": lambda: _checks(x, y, period),
        "wavy": lambda: _waves(along, across, period),
        "gradient": lambda: _ramp(along),
        "noisy": lambda: rng.random((size, size), dtype=np.float32),
        "hatched": lambda: _hatches(x, y, period),
    }
    if texture not in patterns:
        raise ValueError(f"unknown texture {texture!r}")
    return patterns[texture]()


def shade_of(rgb: np.ndarray) -> np.ndarray:
    """The second colour of a textured object: darker for light colours, lighter for dark ones."""
    return rgb * 0.45 if rgb.mean() > 0.35 else rgb + (1.0 - rgb) * 0.45


def _tinted(base: tuple[int, int, int], rng: np.random.Generator, jitter: float = 0.06) -> np.ndarray:
    return np.clip(np.asarray(base, np.float32) / 255.0 + rng.uniform(-jitter, jitter, 3), 0.0, 1.0)


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.asarray(a[None, None] * (1.0 - t[..., None]) + b[None, None] * t[..., None])


# Each background kind: (dark colour, light colour, mixing field). The field gets the pixel grid, a fine per-pixel
# noise and a blotchy low-frequency noise (drawn for every kind, so the generator's stream never depends on it).
BackgroundField = Callable[[np.random.Generator, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
BACKGROUND_STYLES: dict[str, tuple[tuple[int, int, int], tuple[int, int, int], BackgroundField]] = {
    "grass": (
        (40, 110, 30),
        (110, 180, 60),
        lambda rng, n, x, y, fine, blotch: smooth_noise(rng, n, 24) * 0.5 + fine * 0.5,
    ),
    "sand": ((200, 170, 110), (235, 210, 160), lambda rng, n, x, y, fine, blotch: 0.6 * blotch + 0.4 * fine),
    "water": (
        (20, 60, 140),
        (70, 140, 210),
        lambda rng, n, x, y, fine, blotch: (
            0.7 * (0.5 + 0.5 * np.sin(y / 3.0 + 2.0 * np.sin(x / 9.0) + rng.uniform(0, 6.3))) + 0.3 * blotch
        ),
    ),
    "sky": ((90, 150, 230), (200, 225, 250), lambda rng, n, x, y, fine, blotch: 0.6 * y / n + 0.4 * blotch**2),
    "snow": ((225, 230, 240), (250, 250, 255), lambda rng, n, x, y, fine, blotch: (fine > 0.5).astype(np.float32)),
    "wood": (
        (110, 65, 30),
        (170, 115, 60),
        lambda rng, n, x, y, fine, blotch: 0.5 + 0.5 * np.sin((x + 6.0 * blotch * n / 20.0) / 2.5),
    ),
    "stone": (
        (90, 90, 95),
        (165, 160, 155),
        lambda rng, n, x, y, fine, blotch: 0.7 * smooth_noise(rng, n, 12) + 0.3 * fine,
    ),
    "brick": ((160, 60, 40), (210, 200, 190), lambda rng, n, x, y, fine, blotch: _mortar(x, y)),
    "carpet": ((120, 30, 60), (170, 60, 90), lambda rng, n, x, y, fine, blotch: fine),
    "metal": (
        (140, 145, 150),
        (200, 205, 210),
        lambda rng, n, x, y, fine, blotch: smooth_noise(rng, n, 3) * 0.6 + 0.4 * (0.5 + 0.5 * np.sin(x / 1.5)),
    ),
    "paper": ((235, 230, 215), (250, 248, 240), lambda rng, n, x, y, fine, blotch: blotch),
    "cloth": (
        (60, 80, 120),
        (100, 120, 160),
        lambda rng, n, x, y, fine, blotch: 0.8 * (((x % 4) < 2) ^ ((y % 4) < 2)) + 0.2 * fine,
    ),
}


def _mortar(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    row = (y // 8).astype(int)
    return np.asarray(((y % 8) < 1.5) | (((x + 8 * (row % 2)) % 16) < 1.5), dtype=np.float32)


def background(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) float32 in [0, 1] for one of the world's background kinds."""
    if kind not in BACKGROUND_STYLES:
        raise ValueError(f"unknown background {kind!r}")
    dark, light, mixing = BACKGROUND_STYLES[kind]
    x, y = grid(size)
    fine = rng.random((size, size), dtype=np.float32)
    blotch = smooth_noise(rng, size, 6)
    dark_rgb, light_rgb = _tinted(dark, rng), _tinted(light, rng)
    return _mix(dark_rgb, light_rgb, mixing(rng, size, x, y, fine, blotch).astype(np.float32))
