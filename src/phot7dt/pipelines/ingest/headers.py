"""Per-band header rules: required keys, calibration values, WCS agreement."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np
from astropy.io import fits

from phot7dt.config.ingest import WCSTolerance
from phot7dt.frames import Frame, RawImage
from phot7dt.weights import summarize_weights

if TYPE_CHECKING:
    from astropy.wcs import WCS

logger = logging.getLogger(__name__)


def _number(header: fits.Header, key: str) -> float | None:
    """The header value of ``key`` as a float; None when absent, NaN when not a number."""
    if key not in header:
        return None
    value = header[key]
    if isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _positive(header: fits.Header, key: str, unit: str, path: str) -> float:
    value = _number(header, key)
    if value is None or not math.isfinite(value) or value <= 0:
        shown = "absent" if value is None else repr(header[key])
        raise ValueError(
            f"FITS file {path}: bad/missing {key}: "
            f"expected a positive finite number ({unit}), got {shown}"
        )
    return value


def band_name(header: fits.Header, path: str) -> str:
    """The ``FILTER`` value; missing or blank is an error naming the file."""
    if "FILTER" not in header:
        raise ValueError(f"FITS file {path}: missing header key FILTER (the band name)")
    band = str(header["FILTER"]).strip()
    if not band:
        raise ValueError(f"FITS file {path}: empty FILTER (expected the band name, e.g. 'm400')")
    return band


def celestial_wcs(header: fits.Header, path: str) -> WCS:
    """The image's celestial WCS; an error names the file when there is none."""
    from astropy.wcs import WCS
    try:
        wcs = WCS(header).celestial
    except Exception as exc:  # astropy raises several unrelated types for bad WCS keys
        reason = " ".join(str(exc).split())
        raise ValueError(f"FITS file {path}: WCS cannot be parsed ({reason})") from exc
    if wcs.naxis != 2 or not wcs.has_celestial:
        raise ValueError(
            f"FITS file {path}: no celestial WCS (CTYPE1/CTYPE2 RA---TAN/DEC--TAN ...)"
        )
    return wcs


def _saturation(header: fits.Header, path: str) -> float:
    value = _number(header, "SATURATE")
    if value is None or not math.isfinite(value) or value <= 0:
        reason = "missing" if value is None else f"invalid ({header['SATURATE']!r})"
        logger.warning(
            "SATURATE %s in %s; using inf (no saturated pixels in this band)", reason, path
        )
        return math.inf
    return value


def _fwhm_pix(header: fits.Header, wcs: WCS) -> float:
    """FWHM from ``PEEING`` (pixels), else ``SEEING`` (arcsec) over the pixel scale, else NaN."""
    from astropy.wcs.utils import proj_plane_pixel_scales
    peeing = _number(header, "PEEING")
    if peeing is not None and math.isfinite(peeing) and peeing > 0:
        return peeing
    seeing = _number(header, "SEEING")
    if seeing is not None and math.isfinite(seeing) and seeing > 0:
        arcsec_per_pix = float(np.mean(proj_plane_pixel_scales(wcs))) * 3600.0
        return seeing / arcsec_per_pix
    return math.nan


def _weight_ref(image: RawImage, weight_type: str) -> float | None:
    """``w_ref`` of a ``relative`` weight image (the scan is cached per process); None otherwise."""
    if image.weight_path is None or weight_type != "relative":
        return None
    summary = summarize_weights(image.weight_path)
    logger.info(
        "weight image %s: w_ref = %.6g (median of the positive finite weights of every %d-th row)",
        image.weight_path,
        summary.reference,
        summary.row_step,
    )
    return summary.reference


def frame_from_image(
    image: RawImage, *, zp_ref: float, saturation_divisor: float, weight_type: str = "relative"
) -> Frame:
    """Validate one image's header and compute its calibration values.

    With a weight image, ``weight_type`` says what its values mean
    (:mod:`phot7dt.weights`); for ``relative`` the median weight ``w_ref`` is
    computed here, from the weight image's memory map in row chunks.

    Raises
    ------
    ValueError
        Missing/empty ``FILTER``, missing or non-numeric ``ZP_AUTO``, missing or
        non-positive ``SKYSIG``/``EGAIN``, no celestial WCS; the message names the file.
    """
    header, path = image.header, image.path
    band = band_name(header, path)
    zp_auto = _number(header, "ZP_AUTO")
    if zp_auto is None:
        raise ValueError(f"FITS file {path}: missing ZP_AUTO (AB zero point, mag)")
    if not math.isfinite(zp_auto):
        raise ValueError(
            f"FITS file {path}: bad ZP_AUTO: "
            f"expected a finite number (mag), got {header['ZP_AUTO']!r}"
        )
    skysig = _positive(header, "SKYSIG", "ADU", path)
    egain = _positive(header, "EGAIN", "e-/ADU", path)
    saturate = _saturation(header, path)
    return Frame(
        band=band,
        path=path,
        hdu=image.hdu,
        zp_auto=zp_auto,
        skysig=skysig,
        egain=egain,
        saturate=saturate,
        saturation_level=saturate / saturation_divisor,
        fwhm_pix=_fwhm_pix(header, celestial_wcs(header, path)),
        scale=10.0 ** (-0.4 * (zp_auto - zp_ref)),
        weight_path=image.weight_path,
        weight_type=None if image.weight_path is None else weight_type,
        weight_ref=_weight_ref(image, weight_type),
    )


def _max_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, float) - np.asarray(b, float))))


def wcs_differences(reference: WCS, other: WCS, tolerance: WCSTolerance) -> list[str]:
    """What differs between two celestial WCSs beyond the tolerances (empty when aligned)."""
    ref, oth = reference.wcs, other.wcs
    problems = []
    if list(ref.ctype) != list(oth.ctype):
        problems.append(f"CTYPE {list(oth.ctype)} differs from {list(ref.ctype)}")
    matrix = "CD" if ref.has_cd() else "PC"
    for name, a, b, tol in (
        ("CRVAL", ref.crval, oth.crval, tolerance.crval),
        ("CRPIX", ref.crpix, oth.crpix, tolerance.crpix),
        (matrix, ref.get_pc(), oth.get_pc(), tolerance.cd),
        ("CDELT", ref.get_cdelt(), oth.get_cdelt(), tolerance.cdelt),
    ):
        diff = _max_difference(a, b)
        if not diff <= tol:
            problems.append(f"{name} differs by {diff:.3g} (tolerance {tol:g})")
    return problems
