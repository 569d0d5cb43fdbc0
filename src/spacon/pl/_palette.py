"""Categorical colours that stay apart: tab10, then colours chosen one at a time as far as
possible (CIELAB distance) from every colour already taken (Glasbey et al. 2007, "Colour
displays for categorical images").

Matplotlib's 20-colour maps come in groups of 2-4 shades of one hue (tab20b's first four are
indigos), so neighbouring domains numbered 10-13 looked alike; here each added colour is the
most distant one left.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

PALETTE_SIZE = 72  # distinct colours of palette() before it repeats
GRID_LEVELS = 18  # candidate colours: this many levels per sRGB channel
LIGHTNESS = (30.0, 85.0)  # candidates' CIELAB lightness: visible on white, not near black


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65 white) of sRGB colours in [0, 1], one per row."""
    rgb = np.asarray(rgb, dtype=np.float64)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ np.array([[0.4124, 0.3576, 0.1805],
                             [0.2126, 0.7152, 0.0722],
                             [0.0193, 0.1192, 0.9505]]).T
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.column_stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]),
                            200 * (f[:, 1] - f[:, 2])])


@lru_cache(maxsize=1)
def distinct_colours() -> tuple[tuple[float, float, float], ...]:
    """The palette's ``PALETTE_SIZE`` colours as RGB tuples, the same on every machine."""
    import matplotlib as mpl

    chosen = [tuple(float(v) for v in c) for c in mpl.colormaps["tab10"].colors]
    levels = np.linspace(0.0, 1.0, GRID_LEVELS)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    lab = srgb_to_lab(grid)
    keep = (lab[:, 0] >= LIGHTNESS[0]) & (lab[:, 0] <= LIGHTNESS[1])
    grid, lab = grid[keep], lab[keep]
    nearest = np.min(np.linalg.norm(lab[:, None] - srgb_to_lab(np.array(chosen))[None], axis=2),
                     axis=1)
    while len(chosen) < PALETTE_SIZE:
        i = int(np.argmax(nearest))  # the first of equals: the same order everywhere
        chosen.append(tuple(float(v) for v in grid[i]))
        nearest = np.minimum(nearest, np.linalg.norm(lab - lab[i], axis=1))
    return tuple(chosen)
