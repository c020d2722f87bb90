"""Bright-source mask: white-stack detections that no catalog source explains.

A bright object missing from the catalog would otherwise be fitted as flux of
its neighbours, so its pixels are masked in every band. The stored product is
the mask alone (uint8, 1 byte per working-frame pixel); the final bad-pixel
definition of a band, non-finite | saturated | bright, is applied when a patch
is cut: ``FrameSet.cutout(box, extra_mask=bright_mask[box.slices] > 0)``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import sep
from astropy.io import fits

from phot7dt.config import section
from phot7dt.config.bright_mask import BrightMaskParams

logger = logging.getLogger(__name__)

#: err given to sep where the white-stack sigma is undefined (no good band).
UNDEFINED_SIGMA = 1e30
#: Largest sep pixel stack tried when a frame holds very large objects.
MAX_PIXSTACK = 50_000_000
DETECTION_COLUMNS = ("x", "y", "a", "b", "theta", "flux", "peak", "npix", "flag")


def detect_white_sources(
    white: np.ndarray, sigma: np.ndarray, params: BrightMaskParams
) -> pd.DataFrame:
    """sep extraction on the white stack, no background subtraction (tract7dt).

    Parameters
    ----------
    white, sigma : (ny, nx) float ndarray
        White stack and its 1-sigma noise (common-scale counts); non-finite
        pixels are masked, undefined sigma becomes ``UNDEFINED_SIGMA``.
    params : BrightMaskParams
        Threshold (in sigma), minimum area, deblending and cleaning settings.

    Returns
    -------
    DataFrame
        One row per detection: ``x``, ``y`` (working-frame pixels), ``a``, ``b``
        (second-moment semi-axes, pixels), ``theta`` (radians, counter-clockwise
        from +x), ``flux``, ``peak``, ``npix``, ``flag``.
    """
    # sep needs native byte order and C order; copies keep the inputs untouched.
    data = np.array(white, dtype=np.float32, order="C", copy=True)
    bad = ~np.isfinite(data)
    data[bad] = 0.0
    err = np.array(sigma, dtype=np.float32, order="C", copy=True)
    err[~np.isfinite(err) | (err <= 0)] = UNDEFINED_SIGMA
    objects = _extract(data, err, bad, params)
    return pd.DataFrame({c: objects[c].astype(float) for c in DETECTION_COLUMNS})


def _extract(data: np.ndarray, err: np.ndarray, bad: np.ndarray, params: BrightMaskParams):
    """``sep.extract``, growing sep's pixel stack when large objects overflow it."""
    while True:
        try:
            return sep.extract(
                data,
                thresh=params.thresh_sigma,
                err=err,
                mask=bad,
                minarea=params.minarea,
                deblend_nthresh=params.deblend_nthresh,
                deblend_cont=params.deblend_cont,
                clean=params.clean,
                clean_param=params.clean_param,
            )
        except Exception as exc:
            stack = sep.get_extract_pixstack()
            if "pixel buffer full" not in str(exc) or stack >= MAX_PIXSTACK:
                raise
            logger.info(
                "sep pixel stack %d too small for this frame; retrying with %d", stack, 10 * stack
            )
            sep.set_extract_pixstack(min(10 * stack, MAX_PIXSTACK))


def listed_detections(
    detections: pd.DataFrame, x: np.ndarray, y: np.ndarray, radius: float
) -> np.ndarray:
    """Whether each detection has a catalog position within ``radius`` pixels.

    ``x``, ``y`` are the active catalog sources' working-frame positions
    (non-finite ones ignored).
    """
    from scipy.spatial import cKDTree

    ok = np.isfinite(x) & np.isfinite(y)
    if len(detections) == 0 or not ok.any():
        return np.zeros(len(detections), dtype=bool)
    distance, _ = cKDTree(np.column_stack([x[ok], y[ok]])).query(
        detections[["x", "y"]].to_numpy(), k=1, distance_upper_bound=radius
    )
    return np.asarray(distance <= radius)


def ellipse_mask(
    shape: tuple[int, int], detections: pd.DataFrame, params: BrightMaskParams
) -> np.ndarray:
    """Boolean mask of the scaled, floored and dilated ellipses of ``detections``.

    Semi-axes are ``max(a * ellipse_scale, min_radius_pix)`` and the same for
    ``b``; the union is dilated with a ``(2 dilate_pix + 1)`` square.

    Returns
    -------
    (ny, nx) bool ndarray
    """
    from scipy.ndimage import binary_dilation

    mask = np.zeros(shape, dtype=bool)
    if len(detections) == 0:
        return mask
    a = np.maximum(detections["a"].to_numpy() * params.ellipse_scale, params.min_radius_pix)
    b = np.maximum(detections["b"].to_numpy() * params.ellipse_scale, params.min_radius_pix)
    sep.mask_ellipse(
        mask,
        detections["x"].to_numpy(),
        detections["y"].to_numpy(),
        a,
        b,
        detections["theta"].to_numpy(),
    )
    if params.dilate_pix > 0:
        side = 2 * params.dilate_pix + 1
        mask = binary_dilation(mask, structure=np.ones((side, side), dtype=bool))
    return mask


def _active_positions(catalog: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    active = ~catalog["excluded_any"].fillna(False).astype(bool).to_numpy()
    x = catalog["x_pix_white"].to_numpy(dtype=float)[active]
    y = catalog["y_pix_white"].to_numpy(dtype=float)[active]
    return x, y


def _mask_header(white_header: fits.Header, params: BrightMaskParams, n_masked: int) -> fits.Header:
    from astropy.wcs import WCS

    header = WCS(white_header).celestial.to_header()
    header["BUNIT"] = ("", "1 = pixel of a bright source absent from the catalog")
    header["BMENABLE"] = (params.enabled, "bright_mask.enabled")
    header["BMTHRESH"] = (params.thresh_sigma, "bright_mask.thresh_sigma")
    header["BMSCALE"] = (params.ellipse_scale, "bright_mask.ellipse_scale")
    header["BMNPIX"] = (n_masked, "number of masked pixels")
    return header


def build_bright_mask(
    white_stack: tuple[np.ndarray, fits.Header],
    white_sigma: tuple[np.ndarray, fits.Header],
    augmented_catalog: pd.DataFrame,
    bright_mask: dict[str, Any],
) -> tuple[tuple[np.ndarray, fits.Header], pd.DataFrame]:
    """Mask white-stack detections that no active catalog source explains.

    Parameters
    ----------
    white_stack, white_sigma : (array, header)
        Working-frame white stack and sigma (float32, common scale).
    augmented_catalog : DataFrame
        Catalog with ``x_pix_white``, ``y_pix_white``, ``excluded_any``.
    bright_mask : dict
        Parameter section ``bright_mask``.

    Returns
    -------
    mask : ((ny, nx) uint8 ndarray, header)
        1 on masked pixels; the header carries the working-frame WCS.
    detections : DataFrame
        Every detection with ``listed`` (matched to the catalog) and ``masked``.
    """
    params = section(BrightMaskParams, bright_mask, "bright_mask")
    white, header = white_stack
    if not params.enabled:
        logger.info("bright_mask.enabled is false: the bright mask is all zero")
        mask = np.zeros(white.shape, dtype=np.uint8)
        empty = pd.DataFrame(columns=[*DETECTION_COLUMNS, "listed", "masked"])
        return (mask, _mask_header(header, params, 0)), empty
    detections = detect_white_sources(white, white_sigma[0], params)
    listed = listed_detections(
        detections, *_active_positions(augmented_catalog), params.match_radius_pix
    )
    detections["listed"] = listed
    detections["masked"] = ~listed
    mask = ellipse_mask(white.shape, detections[~listed], params)
    n_masked = int(mask.sum())
    logger.info(
        "Bright mask: %d white-stack detections (%.1f sigma), %d listed in the catalog, %d masked;"
        " %d pixels (%.2f%% of the frame)",
        len(detections),
        params.thresh_sigma,
        int(listed.sum()),
        int((~listed).sum()),
        n_masked,
        100.0 * n_masked / mask.size,
    )
    return (mask.view(np.uint8), _mask_header(header, params, n_masked)), detections


def flag_bright_mask_sources(
    augmented_catalog: pd.DataFrame, bright_mask: tuple[np.ndarray, fits.Header]
) -> pd.DataFrame:
    """Add ``affected_by_bright_mask``: the rounded position lies on a masked pixel.

    Rows without a finite position, or off the frame, are not affected.
    """
    mask = np.asarray(bright_mask[0])
    ny, nx = mask.shape
    # rounded as ingest rounds (half up), not numpy's round-half-to-even
    x = np.floor(augmented_catalog["x_pix_white"].to_numpy(dtype=float) + 0.5)
    y = np.floor(augmented_catalog["y_pix_white"].to_numpy(dtype=float) + 0.5)
    with np.errstate(invalid="ignore"):
        on = np.isfinite(x) & np.isfinite(y) & (x >= 0) & (x < nx) & (y >= 0) & (y < ny)
    affected = np.zeros(len(augmented_catalog), dtype=bool)
    affected[on] = mask[y[on].astype(int), x[on].astype(int)] > 0
    logger.info("%d catalog sources lie on the bright mask", int(affected.sum()))
    return augmented_catalog.assign(affected_by_bright_mask=affected)
