"""Coadd defects in the pixels: residual sky, artefacts, NaN borders, and the artefact mask.

Everything here is drawn from the truth tables of :mod:`phot7dt.pipelines.simulate.defects`
(the band row of ``truth_bands.csv`` and the band's rows of ``truth_defects.csv``), so the
same geometry gives the pixels and the mask. Images are ``(ny, nx)`` float32 ADU, pixel
``(x, y)`` (0-based, pixel centres) is element ``[y, x]``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from phot7dt.pipelines.simulate.defects import BORDER_COLUMNS, SKY_COLUMNS

#: Rows per block when a satellite trail is evaluated (bounded memory on full tiles).
_TRAIL_BLOCK_ROWS = 512
#: A trail's Gaussian profile is evaluated out to this many sigma.
_TRAIL_CUT_SIGMA = 6.0
_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def add_residual_sky(image: np.ndarray, band: pd.Series) -> None:
    """Add ``sky_offset + sky_grad_x (x - psf_xc) + sky_grad_y (y - psf_yc)`` ADU in place."""
    offset, gx, gy = (float(band.get(c, 0.0)) for c in SKY_COLUMNS)
    if not (offset or gx or gy):
        return
    ny, nx = image.shape
    x = offset + gx * (np.arange(nx) - float(band["psf_xc"]))
    y = gy * (np.arange(ny) - float(band["psf_yc"]))
    image += x.astype(np.float32)[None, :]
    image += y.astype(np.float32)[:, None]


def border_mask(band: pd.Series, shape: tuple[int, int]) -> np.ndarray:
    """``(ny, nx)`` bool: the band's NaN border (widths ``nan_left`` ... ``nan_top``, px)."""
    left, right, bottom, top = (int(band.get(c, 0)) for c in BORDER_COLUMNS)
    ny, nx = shape
    mask = np.zeros(shape, dtype=bool)
    mask[:, :left] = mask[:, nx - right :] = True
    mask[:bottom, :] = mask[ny - top :, :] = True  # a zero width gives an empty slice
    return mask


def track_pixels(row: pd.Series, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns (unique, inside the image) of a cosmic-ray track's pixels.

    The track from ``(x0, y0)`` to ``(x1, y1)`` is sampled every 0.25 px and each sample's
    nearest pixel is hit; a 2 px wide track also hits the pixels one px to its left.
    """
    x0, y0, x1, y1 = (float(row[c]) for c in ("x0", "y0", "x1", "y1"))
    length = float(np.hypot(x1 - x0, y1 - y0))
    t = np.linspace(0.0, 1.0, int(np.ceil(4.0 * length)) + 1)
    xs, ys = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
    if float(row["width_pix"]) >= 2.0:
        nx_, ny_ = (-(y1 - y0) / length, (x1 - x0) / length) if length > 0 else (0.0, 1.0)
        xs, ys = np.concatenate([xs, xs + nx_]), np.concatenate([ys, ys + ny_])
    pix = np.unique(np.column_stack([np.rint(ys), np.rint(xs)]).astype(int), axis=0)
    inside = (pix[:, 0] >= 0) & (pix[:, 0] < shape[0]) & (pix[:, 1] >= 0) & (pix[:, 1] < shape[1])
    return pix[inside, 0], pix[inside, 1]


def trail_blocks(row: pd.Series, shape: tuple[int, int]) -> Iterator[tuple[slice, np.ndarray]]:
    """``(rows, profile)`` blocks of a satellite trail: its Gaussian profile (ADU) at pixel centres.

    The profile across the line through ``(x0, y0)`` and ``(x1, y1)`` has FWHM ``width_pix``
    and peak ``amplitude_adu``; it is zero beyond 6 sigma.
    """
    x0, y0, x1, y1 = (float(row[c]) for c in ("x0", "y0", "x1", "y1"))
    length = float(np.hypot(x1 - x0, y1 - y0))
    normal = np.array([-(y1 - y0), x1 - x0]) / length
    sigma = float(row["width_pix"]) / _FWHM_PER_SIGMA
    amp = float(row["amplitude_adu"])
    ny, nx = shape
    x = np.arange(nx, dtype=float) - x0
    for start in range(0, ny, _TRAIL_BLOCK_ROWS):
        rows = slice(start, min(start + _TRAIL_BLOCK_ROWS, ny))
        y = np.arange(rows.start, rows.stop, dtype=float)[:, None] - y0
        dist = np.abs(normal[0] * x[None, :] + normal[1] * y)
        profile = np.where(
            dist < _TRAIL_CUT_SIGMA * sigma, amp * np.exp(-0.5 * (dist / sigma) ** 2), 0.0
        )
        yield rows, profile


def add_artefacts(image: np.ndarray, artefacts: pd.DataFrame) -> None:
    """Add the band's hot pixels, hot columns, cosmic rays and trails (ADU) in place."""
    for _, row in artefacts.iterrows():
        amp, kind = np.float32(row["amplitude_adu"]), row["kind"]
        if kind == "hot_pixel":
            image[int(row["y0"]), int(row["x0"])] += amp
        elif kind == "hot_column":
            image[int(row["y0"]) : int(row["y1"]) + 1, int(row["x0"])] += amp
        elif kind == "cosmic_ray":
            image[track_pixels(row, image.shape)] += amp
        elif kind == "satellite_trail":
            for rows, profile in trail_blocks(row, image.shape):
                image[rows] += profile.astype(np.float32)
        else:
            raise ValueError(f"simulate: unknown artefact kind {kind!r}")


def artefact_mask(artefacts: pd.DataFrame, shape: tuple[int, int], skysig: float) -> np.ndarray:
    """``(ny, nx)`` bool: pixels an artefact raises by more than ``0.5 skysig`` (ADU).

    ``artefacts`` are one band's rows of ``truth_defects.csv``; residual sky and NaN
    borders are not artefacts (see :func:`border_mask`).
    """
    mask = np.zeros(shape, dtype=bool)
    for _, row in artefacts[artefacts["amplitude_adu"] > 0.5 * skysig].iterrows():
        kind = row["kind"]
        if kind == "hot_pixel":
            mask[int(row["y0"]), int(row["x0"])] = True
        elif kind == "hot_column":
            mask[int(row["y0"]) : int(row["y1"]) + 1, int(row["x0"])] = True
        elif kind == "cosmic_ray":
            mask[track_pixels(row, shape)] = True
        elif kind == "satellite_trail":
            for rows, profile in trail_blocks(row, shape):
                mask[rows] |= profile > 0.5 * skysig
    return mask


def add_defects(
    image: np.ndarray, band: pd.Series, artefacts: pd.DataFrame | None, saturate: float
) -> None:
    """Residual sky and artefacts in place; pixels pushed above ``saturate`` are clipped to it.

    Does nothing (not even the clip) when the band has neither, so defect-free images are
    bitwise those of the plain renderer.
    """
    has_sky = any(float(band.get(c, 0.0)) for c in SKY_COLUMNS)
    has_artefacts = artefacts is not None and len(artefacts) > 0
    if not (has_sky or has_artefacts):
        return
    add_residual_sky(image, band)
    if has_artefacts:
        add_artefacts(image, artefacts)
    np.minimum(image, np.float32(saturate), out=image)


def apply_nan_border(image: np.ndarray, band: pd.Series) -> None:
    """Set the band's NaN border (:func:`border_mask`) to NaN in place."""
    if any(int(band.get(c, 0)) for c in BORDER_COLUMNS):
        image[border_mask(band, image.shape)] = np.nan
