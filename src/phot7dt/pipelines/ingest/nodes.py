"""Ingest nodes: validated catalog, prepared frames, white stack and source flags.

Positions after ingest are 0-based working-frame pixels (the crop box of the
original images), pixel centres at integers; fluxes are on the common scale
``zp_ref``.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from astropy.io import fits

from phot7dt import catalog_columns as cols
from phot7dt.config import section
from phot7dt.config.ingest import (
    ChecksParams,
    CropParams,
    ImageScalingParams,
    PerformanceParams,
    SourceSaturationCutParams,
)
from phot7dt.coordinates import checked_sky_coordinates
from phot7dt.frames import Box, FrameSet, RawImage
from phot7dt.pipelines.ingest.headers import celestial_wcs, frame_from_image, wcs_differences
from phot7dt.pipelines.ingest.white_stack import white_chunk, white_header
from phot7dt.progress import progress
from phot7dt.source_flags import flag_catalog

logger = logging.getLogger(__name__)

#: Rows of the working frame accumulated at once by the white stack.
WHITE_STACK_CHUNK_ROWS = 512


def load_input_catalog(input_catalog_raw: pd.DataFrame, input_catalog: str) -> pd.DataFrame:
    """Validate the user's source catalog (every column read as text).

    Parameters
    ----------
    input_catalog_raw : DataFrame
        The CSV as text. ``RA``/``DEC`` (deg) are found case-insensitively (a
        warning when not upper case); ``ID`` is kept as the exact string
        (generated from the row number when the column is absent); ``TYPE`` is
        upper-cased (blank stays blank); ``FLUX_*``, ``ELL``, ``THETA``, ``Re``,
        ``SERSIC_n`` and the ``*_ERR`` prior widths are parsed as numbers.
    input_catalog : str
        Path of the CSV, named in error messages.

    Returns
    -------
    DataFrame
        One row per input row, in input order, plus ``row_index``. Rows with
        missing (blank, NaN, inf) coordinates are kept (``flag_sources`` flags
        them); ``RA`` outside [0, 360) deg is wrapped modulo 360 (a warning).

    Raises
    ------
    ValueError
        Empty catalog, no RA/DEC column, blank or duplicate IDs, a non-numeric
        value in a numeric column, a finite ``DEC`` outside [-90, 90] deg.
    """
    where = f"input catalog {input_catalog}"
    if len(input_catalog_raw) == 0:
        raise ValueError(f"{where}: no rows (empty catalog)")
    catalog = input_catalog_raw.reset_index(drop=True).copy()
    renames = {}
    for name in ("RA", "DEC", "ID", "TYPE"):
        found = cols.find_column(catalog, name, where)
        if found is None and name in ("RA", "DEC"):
            raise ValueError(
                f"{where}: must have RA/DEC columns (case-insensitive); "
                f"columns are {list(catalog.columns)}"
            )
        if found is not None and found != name:
            renames[found] = name
    catalog = catalog.rename(columns=renames)
    if "ID" not in catalog.columns:
        logger.warning("%s has no ID column; using the row number (0-based) as ID", where)
        catalog.insert(0, "ID", [str(i) for i in range(len(catalog))])
    catalog["ID"] = cols.parse_ids(catalog["ID"], where)
    if "TYPE" not in catalog.columns:
        catalog["TYPE"] = ""
    catalog["TYPE"] = catalog["TYPE"].fillna("").astype("str").str.strip().str.upper()
    for name in catalog.columns:
        if cols.is_numeric_column(name):
            catalog[name] = cols.parse_numeric(catalog[name], name, catalog["ID"], where)
    catalog["RA"], catalog["DEC"] = checked_sky_coordinates(
        catalog["RA"], catalog["DEC"], catalog["ID"], where
    )
    catalog["row_index"] = np.arange(len(catalog), dtype=np.int64)
    logger.info("%s: %d sources, columns %s", where, len(catalog), list(catalog.columns))
    return catalog


def prepare_frames(
    raw_frames: list[RawImage],
    image_scaling: dict[str, Any],
    crop: dict[str, Any],
    source_saturation_cut: dict[str, Any],
) -> FrameSet:
    """Calibration values of every band, the working-frame crop box and its WCS.

    Only headers are read. Per band: ``scale = 10**(-0.4 (ZP_AUTO - zp_ref))``,
    ``saturation_level = SATURATE / saturation_divisor`` ADU (inf without
    ``SATURATE``), ``fwhm_pix`` from ``PEEING`` or ``SEEING`` (NaN without either);
    a band with a weight image gets ``image_scaling.weight_type`` and, for
    ``relative``, its median weight ``w_ref`` (one chunked pass of the weight
    image, shared with the image list's check).
    The crop box is ``[margin, W - margin) x [margin, H - margin)`` of the first
    image (the whole image when ``crop.enabled`` is false).

    Raises
    ------
    ValueError
        A header error of tract7dt's list, a FILTER used by two images, or a
        margin that leaves no pixel.
    """
    scaling = section(ImageScalingParams, image_scaling, "image_scaling")
    crop_params = section(CropParams, crop, "crop")
    saturation = section(SourceSaturationCutParams, source_saturation_cut, "source_saturation_cut")
    if not raw_frames:
        raise ValueError("image list: names no image")
    frames = [
        frame_from_image(
            image,
            zp_ref=scaling.zp_ref,
            saturation_divisor=saturation.saturation_divisor,
            weight_type=scaling.weight_type,
        )
        for image in raw_frames
    ]
    by_band: dict[str, list[str]] = {}
    for frame in frames:
        by_band.setdefault(frame.band, []).append(frame.path)
    repeated = {band: paths for band, paths in by_band.items() if len(paths) > 1}
    if repeated:
        raise ValueError(f"image list: FILTER must differ between images; repeated: {repeated}")
    first = raw_frames[0]
    box = _crop_box(first.shape, crop_params, first.path)
    working_wcs = celestial_wcs(first.header, first.path).slice(box.slices)
    logger.info(
        "%d bands %s; working frame %s of %s; weight images (%s) for %s",
        len(frames),
        [f.band for f in frames],
        box,
        first.shape,
        scaling.weight_type,
        [f.band for f in frames if f.weight_path is not None] or "no band",
    )
    return FrameSet(
        frames=tuple(frames),
        crop=box,
        full_shape=first.shape,
        zp_ref=scaling.zp_ref,
        wcs_header=working_wcs.to_header(relax=True).tostring(),
    )


def _crop_box(shape: tuple[int, int], crop: CropParams, path: str) -> Box:
    ny, nx = shape
    if not crop.enabled:
        return Box(0, 0, nx, ny)
    m = crop.margin
    if nx - 2 * m <= 0 or ny - 2 * m <= 0:
        raise ValueError(
            f"crop.margin = {m} leaves no pixel of the {nx}x{ny} images (first image {path}); "
            f"use a margin below {min(nx, ny) // 2}"
        )
    return Box(m, m, nx - m, ny - m)


def check_frames(
    prepared_frames: FrameSet,
    raw_frames: list[RawImage],
    input_catalog: pd.DataFrame,
    checks: dict[str, Any],
) -> FrameSet:
    """Check shapes, WCS agreement and the band set; return the frames unchanged.

    Raises
    ------
    ValueError
        An image whose shape or WCS differs from the first image's (when
        ``checks`` requires agreement), or ``FLUX_{band}`` columns whose band set
        differs from the images' FILTER set (catalog-only and image-only bands listed).
    """
    params = section(ChecksParams, checks, "checks")
    reference = raw_frames[0]
    ref_wcs = celestial_wcs(reference.header, reference.path)
    for image in raw_frames[1:]:
        if image.shape != reference.shape:
            message = (
                f"Image shape mismatch: {image.path} is {image.shape} (NAXIS2, NAXIS1), "
                f"the first image {reference.path} is {reference.shape}"
            )
            if params.require_same_shape:
                raise ValueError(message)
            logger.warning("%s (checks.require_same_shape is false)", message)
        problems = wcs_differences(
            ref_wcs, celestial_wcs(image.header, image.path), params.wcs_tolerance
        )
        if problems:
            message = (
                f"WCS mismatch with reference {reference.path}: {image.path}: {'; '.join(problems)}"
            )
            if params.require_wcs_alignment:
                raise ValueError(message)
            logger.warning("%s (checks.require_wcs_alignment is false)", message)
    _check_bands(set(prepared_frames.bands), cols.catalog_bands(input_catalog.columns))
    return prepared_frames


def _check_bands(image_bands: set[str], catalog_bands: set[str]) -> None:
    if not catalog_bands:
        logger.info("input catalog has no FLUX_* columns; band check skipped")
        return
    if catalog_bands != image_bands:
        raise ValueError(
            "Band mismatch between input catalog and image list: "
            f"catalog-only bands {sorted(catalog_bands - image_bands)} (FLUX_<band> columns), "
            f"image-only bands {sorted(image_bands - catalog_bands)} (FILTER values)"
        )


def build_white_stack(
    frames: FrameSet, performance: dict[str, Any]
) -> tuple[tuple[np.ndarray, fits.Header], tuple[np.ndarray, fits.Header]]:
    """Inverse-variance weighted coadd of all bands over the working frame.

    ``white = sum(w img) / sum(w)`` and ``sigma = sum(w)**-0.5`` with
    ``w = 1 / sky_sigma**2`` on finite pixels (0 elsewhere), or the per-pixel
    inverse variance of the band's weight image when it has one (0 where the
    weight image has no data), images on the common scale; NaN where no band
    has a usable pixel. Rows are streamed in chunks of
    ``WHITE_STACK_CHUNK_ROWS`` from the memory-mapped bands by
    ``performance.white_stack_workers`` threads; no full-frame float64 array exists.

    Returns
    -------
    white_stack, white_sigma : ((ny, nx) float32 ndarray, Header)
        Working-frame images with the working WCS in their headers.
    """
    params = section(PerformanceParams, performance, "performance")
    ny, nx = frames.shape
    white = np.empty((ny, nx), np.float32)
    sigma = np.empty((ny, nx), np.float32)
    chunks = [
        Box(0, y0, nx, min(y0 + WHITE_STACK_CHUNK_ROWS, ny))
        for y0 in range(0, ny, WHITE_STACK_CHUNK_ROWS)
    ]
    threads = params.white_stack_threads(len(chunks))
    logger.info(
        "white stack of %d bands, %dx%d px, %d chunks on %d threads",
        len(frames.frames),
        nx,
        ny,
        len(chunks),
        threads,
    )

    def accumulate(chunk: Box) -> None:
        white[chunk.slices], sigma[chunk.slices] = white_chunk(frames, chunk)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in progress(
            pool.map(accumulate, chunks), total=len(chunks), desc="white stack", unit="chunk"
        ):
            pass
    header = white_header(frames)
    return (white, header), (sigma, header.copy())


def flag_sources(
    input_catalog: pd.DataFrame, frames: FrameSet, source_saturation_cut: dict[str, Any]
) -> pd.DataFrame:
    """Working-frame positions and exclusion flags of every catalog source (none removed).

    Adds ``x_pix_white``, ``y_pix_white`` (working-frame pixels, NaN without valid
    coordinates), ``excluded_crop`` (no position inside the working frame),
    ``excluded_saturation`` (``mode: exclude`` only: a raw pixel at or above the
    band's saturation level within ``radius_pix`` of the rounded position, in any
    or all bands), ``excluded_any``, ``excluded_reason`` (comma-separated among
    ``invalid_coordinates``, ``outside_image``, ``crop``, ``saturation``; "" when
    active), ``saturated_bands`` (comma list of bands with a saturated pixel within
    ``saturation_core_pad_pix`` of the source's core) and ``n_sat_pix_{band}``
    (pixels of the saturated regions touching that core).
    """
    params = section(SourceSaturationCutParams, source_saturation_cut, "source_saturation_cut")
    return flag_catalog(input_catalog, frames, params)


def write_wcs_snapshot(frames: FrameSet) -> tuple[None, fits.Header]:
    """The working frame's WCS as a header-only FITS file (``wcs.fits``)."""
    return None, white_header(frames)
