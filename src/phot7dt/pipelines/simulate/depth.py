"""Depth maps of simulated coadds: relative exposure of dithered frames, vignetting, NaN borders.

The relative weight ``w`` (proportional to exposure and to inverse variance) sets the noise:
``sigma = SKYSIG sqrt(median(w) / w)``, the median taken over the positive weights, so the
header's ``SKYSIG`` is the noise at the median depth (and ``EGAIN`` the effective gain there:
source noise scales the same way). The map is re-derived from the band's
own generator (:func:`phot7dt.pipelines.simulate.defects.defect_rng`) whenever it is needed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from phot7dt.pipelines.simulate.artefacts import border_mask
from phot7dt.pipelines.simulate.defects import defect_rng

#: Frames per band, and the largest dither offset as a fraction of the image size.
FRAMES = (6, 12)
MAX_DITHER_FRACTION = 0.06
#: Vignetting: the corners receive 1 - (0.1 to 0.3) of the centre's exposure.
VIGNETTING = (0.1, 0.3)
_BLOCK_ROWS = 512


def _coverage(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Fraction of the band's frames covering each pixel, ``(ny, nx)`` float32 in [0, 1].

    Each frame is the image shifted by its dither offset; a few rectangles (clouds or
    trails masked in single frames) lose some frames.
    """
    ny, nx = shape
    n_frames = int(rng.integers(FRAMES[0], FRAMES[1] + 1))
    cover = np.zeros(shape, dtype=np.float32)
    mx, my = int(MAX_DITHER_FRACTION * nx), int(MAX_DITHER_FRACTION * ny)
    for _ in range(n_frames):
        dx, dy = int(rng.integers(-mx, mx + 1)), int(rng.integers(-my, my + 1))
        cover[max(dy, 0) : ny + min(dy, 0), max(dx, 0) : nx + min(dx, 0)] += 1.0
    for _ in range(int(rng.integers(1, 4))):
        w, h = (int(rng.uniform(0.1, 0.4) * nx), int(rng.uniform(0.1, 0.4) * ny))
        x0, y0 = int(rng.integers(0, nx - w + 1)), int(rng.integers(0, ny - h + 1))
        cover[y0 : y0 + h, x0 : x0 + w] -= float(rng.integers(1, n_frames // 2 + 1))
    np.maximum(cover, 0.0, out=cover)
    return cover / np.float32(n_frames)


def relative_weight(
    seed: int, band_index: int, band: pd.Series, shape: tuple[int, int], min_weight: float
) -> np.ndarray:
    """The band's relative weight map, ``(ny, nx)`` float32.

    Dither coverage times a smooth vignetting, scaled to a maximum of 1 and floored at
    ``min_weight``; 0 on the band's NaN border (``nan_left`` ... ``nan_top`` of its row).
    """
    rng = defect_rng(seed, "depth_map", band_index)
    weight = _coverage(rng, shape)
    strength = rng.uniform(*VIGNETTING)
    ny, nx = shape
    u2 = ((np.arange(nx) - (nx - 1) / 2.0) / (nx / 2.0)) ** 2
    v2 = ((np.arange(ny) - (ny - 1) / 2.0) / (ny / 2.0)) ** 2
    for start in range(0, ny, _BLOCK_ROWS):
        rows = slice(start, min(start + _BLOCK_ROWS, ny))
        weight[rows] *= (1.0 - 0.5 * strength * (u2[None, :] + v2[rows, None])).astype(np.float32)
    weight /= weight.max()
    np.maximum(weight, np.float32(min_weight), out=weight)
    weight[border_mask(band, shape)] = 0.0
    return weight


def depth_factor(weight: np.ndarray) -> np.ndarray:
    """``w / median(w > 0)`` (1 where ``w`` is 0): the exposure relative to the median depth."""
    positive = weight > 0
    median = np.float32(np.median(weight[positive]))
    return np.where(positive, weight / median, np.float32(1.0)).astype(np.float32)
