"""Weight (or variance) images: the per-pixel noise of a band whose coadd has one.

Owned by :mod:`phot7dt.frames`. A line of the image list may name a second file
after the image, the band's weight image: a FITS image with the image's shape
(the primary HDU, or tile-compressed as images may be:
:func:`phot7dt.pixel_maps.image_hdu`). What its values mean is set by
``image_scaling.weight_type``:

``relative`` (default; SWarp ``MAP_WEIGHT``)
    Proportional to the inverse variance, no unit. The noise of a pixel is
    ``SKYSIG * sqrt(w_ref / w)`` ADU, with ``w_ref`` the median of the positive
    finite weights (:data:`REF_SAMPLE_ROWS`), so ``SKYSIG`` stays the noise at
    the median depth.
``inverse_variance``
    ``1 / sigma**2``, ADU^-2.
``variance``
    ``sigma**2``, ADU^2.
``rms``
    ``sigma``, ADU.

A pixel whose inverse variance comes out zero, infinite or NaN (weight 0 or
NaN; variance or rms 0, inf or NaN) has no data: it gets zero inverse variance.
Negative values are an input error. A weight image changes only the noise,
never the pixel values.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import typing
from typing import Literal

import numpy as np

from phot7dt.pixel_maps import Pixels, open_pixels, read_region

__all__ = [
    "REF_SAMPLE_ROWS",
    "WEIGHT_TYPES",
    "WeightSummary",
    "WeightType",
    "check_weight_settings",
    "summarize_weights",
    "to_invvar",
    "weight_problem",
]

WeightType = Literal["relative", "inverse_variance", "variance", "rms"]
WEIGHT_TYPES: tuple[str, ...] = typing.get_args(WeightType)

#: ``w_ref`` is the median over every k-th row, ``k = ceil(ny / REF_SAMPLE_ROWS)``:
#: all rows of an image of up to this many rows, about this many rows of a larger one.
REF_SAMPLE_ROWS = 1024
#: Rows read at once when a weight image is scanned.
SCAN_CHUNK_ROWS = 512


@dataclasses.dataclass(frozen=True)
class WeightSummary:
    """What ingest needs to know of a weight image, from one pass in row chunks.

    Attributes
    ----------
    n_pixels : int
        Pixels of the image.
    n_negative : int
        Pixels below zero (``-inf`` included).
    n_usable : int
        Positive finite pixels.
    minimum : float
        Smallest value, NaN ignored (``inf`` when every pixel is NaN).
    reference : float
        Median of the positive finite values of the sampled rows, in the file's
        unit (NaN when there is none): ``w_ref`` of the ``relative`` convention.
    row_step : int
        Every ``row_step``-th row was sampled for ``reference``.
    """

    n_pixels: int
    n_negative: int
    n_usable: int
    minimum: float
    reference: float
    row_step: int


def _scan(data: Pixels, step: int) -> tuple[int, int, float, np.ndarray]:
    """Negative and usable counts, minimum, and the usable values of every ``step``-th row."""
    n_negative = n_usable = 0
    minimum = math.inf
    samples = []
    for y0 in range(0, data.shape[0], SCAN_CHUNK_ROWS):
        chunk = np.asarray(read_region(data, slice(y0, y0 + SCAN_CHUNK_ROWS)), dtype=np.float32)
        with np.errstate(invalid="ignore"):
            usable = np.isfinite(chunk) & (chunk > 0)
            n_negative += int(np.count_nonzero(chunk < 0))
        n_usable += int(np.count_nonzero(usable))
        minimum = min(minimum, float(np.min(chunk, initial=np.inf, where=~np.isnan(chunk))))
        first = (-y0) % step
        samples.append(chunk[first::step][usable[first::step]])
    return n_negative, n_usable, minimum, np.concatenate(samples)


def summarize_weights(path: str, hdu: int | None = None) -> WeightSummary:
    """Scan a weight image once per process (cached on the file's identity and mtime).

    ``hdu`` None is the file's image HDU. The image is read in chunks of
    :data:`SCAN_CHUNK_ROWS` rows (:func:`~phot7dt.pixel_maps.read_region`); only
    the sampled positive values are kept (float32, at most about
    ``REF_SAMPLE_ROWS`` rows). When the sampled rows
    hold no positive finite value but others do, every row is sampled.
    """
    stat = os.stat(path)
    return _summarize(path, hdu, stat.st_ino, stat.st_mtime_ns)


@functools.lru_cache(maxsize=128)
def _summarize(path: str, hdu: int | None, inode: int, mtime_ns: int) -> WeightSummary:
    data = open_pixels(path, hdu)
    step = max(1, math.ceil(data.shape[0] / REF_SAMPLE_ROWS))
    n_negative, n_usable, minimum, sample = _scan(data, step)
    if sample.size == 0 and n_usable > 0:
        step = 1
        n_negative, n_usable, minimum, sample = _scan(data, step)
    reference = float(np.median(sample)) if sample.size else math.nan
    return WeightSummary(int(data.size), n_negative, n_usable, minimum, reference, step)


def weight_problem(summary: WeightSummary) -> str | None:
    """Why a weight image cannot be used (None when it can), for a one-line error."""
    if summary.n_negative:
        return (
            f"{summary.n_negative} negative value(s) (minimum {summary.minimum:g}); expected "
            "values >= 0 (weight, inverse variance, variance or rms; 0/inf/NaN = no data)"
        )
    if summary.n_usable == 0:
        return (
            f"no positive finite value in {summary.n_pixels} pixels (all 0, inf or NaN); "
            "expected a weight image with data"
        )
    return None


def check_weight_settings(where: str, weight_type: str | None, weight_ref: float | None) -> None:
    """Raise ValueError (prefixed ``where``) unless ``weight_type`` is known and, for
    ``relative``, ``weight_ref`` is a positive finite number."""
    if weight_type not in WEIGHT_TYPES:
        raise ValueError(
            f"{where}: weight_type {weight_type!r}, expected one of {list(WEIGHT_TYPES)}"
        )
    if weight_type == "relative" and not (weight_ref is not None and 0 < weight_ref < math.inf):
        raise ValueError(
            f"{where}: relative weights need a positive finite weight_ref, got {weight_ref}"
        )


def to_invvar(
    weights: np.ndarray,
    weight_type: str,
    *,
    skysig: float,
    scale: float,
    weight_ref: float | None = None,
) -> np.ndarray:
    """Inverse variance on the common scale from weight-image pixels.

    Parameters
    ----------
    weights : ndarray
        Pixels of the weight image, in the unit of ``weight_type``.
    weight_type : {"relative", "inverse_variance", "variance", "rms"}
        Meaning of the values (module docstring).
    skysig : float
        ``SKYSIG`` of the band, ADU (used by ``relative`` only).
    scale : float
        Raw ADU to common-scale counts; the noise scales with the image.
    weight_ref : float, optional
        ``w_ref`` of ``relative`` (required there), the weight at which the noise is ``SKYSIG``.

    Returns
    -------
    float32 ndarray
        ``1 / (scale * sigma)**2`` in common-scale counts^-2; 0 where there is no data.
    """
    check_weight_settings("to_invvar", weight_type, weight_ref)
    w = np.asarray(weights, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if weight_type == "relative":
            invvar = w / (weight_ref * (skysig * scale) ** 2)
        elif weight_type == "inverse_variance":
            invvar = w / scale**2
        elif weight_type == "variance":
            invvar = 1.0 / (w * scale**2)
        else:  # rms
            invvar = 1.0 / (w * scale) ** 2
        good = np.isfinite(invvar) & (invvar > 0)
    return np.where(good, invvar, 0.0).astype(np.float32)
