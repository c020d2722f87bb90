"""Nodes of the simulate pipeline: a realistic 7DT-like tile with known truth.

Every node seeds its own generator from ``simulate.seed`` and a fixed stream
number, so each output is reproducible on its own and independent of node order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from astropy.io import fits

from phot7dt.config import section
from phot7dt.config.simulate import SimulateParams
from phot7dt.pipelines.simulate.catalogs import gaiaxp_table, input_catalog, truth_table
from phot7dt.pipelines.simulate.defects import draw_artefacts, draw_band_defects
from phot7dt.pipelines.simulate.field import draw_sources
from phot7dt.pipelines.simulate.render import saturated_sources
from phot7dt.pipelines.simulate.sky import (
    adu_per_scaled_flux,
    draw_band_table,
    draw_psf_shapes,
    make_wcs,
)
from phot7dt.pipelines.simulate.tile import LazyBandImages

logger = logging.getLogger(__name__)

#: Extra clearance (px) between the edge margin and the closest source centre.
EDGE_PAD_PIX = 8

_BANDS_STREAM, _SOURCES_STREAM, _CATALOG_STREAM, _GAIA_STREAM = 1, 2, 4, 5
#: Streams added later draw apart, so the older draws (and images) did not change.
_PSF_SHAPE_STREAM, _GAIA_STARS_STREAM = 6, 7


def _params(simulate: Mapping[str, Any] | SimulateParams) -> SimulateParams:
    return section(SimulateParams, simulate, "simulate")


def _rng(params: SimulateParams, stream: int) -> np.random.Generator:
    return np.random.default_rng([params.seed, stream])


def draw_sim_bands(simulate: Mapping[str, Any]) -> pd.DataFrame:
    """Per-band calibration and PSF of the simulated tile (``truth_bands.csv``).

    Parameters
    ----------
    simulate : dict
        The ``simulate`` parameter section.

    Returns
    -------
    pandas.DataFrame
        One row per band: ``band``, ``wavelength_nm``, ``zp_true``, ``zp_auto`` (mag),
        ``skysig``, ``saturate`` (ADU), ``egain`` (e-/ADU), ``fwhm_pix`` (px, field
        centre), ``moffat_beta``, the PSF field-variation coefficients (FWHM and shear, see
        :func:`~phot7dt.pipelines.simulate.sky.moffat_fwhm_at` and
        :func:`~phot7dt.pipelines.simulate.sky.psf_shear_at`), the residual sky
        ``sky_offset`` (ADU), ``sky_grad_x``, ``sky_grad_y`` (ADU/px) and the NaN border
        widths ``nan_left``, ``nan_right``, ``nan_bottom``, ``nan_top`` (px; see
        :func:`~phot7dt.pipelines.simulate.defects.draw_band_defects`).
    """
    params = _params(simulate)
    layout = params.layout()
    bands = draw_band_table(params, layout, _rng(params, _BANDS_STREAM))
    shapes = draw_psf_shapes(params, layout, len(bands), _rng(params, _PSF_SHAPE_STREAM))
    bands = pd.concat([bands, shapes.set_index(bands.index)], axis=1)
    bands = pd.concat([bands, draw_band_defects(params, layout, bands)], axis=1)
    logger.info(
        "simulate: %s preset, %dx%d px, bands %s",
        params.preset,
        layout.width,
        layout.height,
        ", ".join(layout.bands),
    )
    return bands


def draw_sim_sources(sim_truth_bands: pd.DataFrame, simulate: Mapping[str, Any]) -> pd.DataFrame:
    """Every simulated source with its true position, shape, magnitudes and fluxes.

    Returns
    -------
    pandas.DataFrame
        One row per source: ``ID``, ``in_catalog``, ``role``, ``TYPE``, ``RA``/``DEC``
        (deg), ``x_pix``/``y_pix`` (0-based px), shape (``re_pix`` px along the major
        axis, ``ell``, ``theta_deg`` CCW from +x, ``sersic_n``), ``mag_<band>`` (AB),
        ``FLUX_<band>`` (common scale), ``phot_g_mean_mag``, ``gaia_source_id``,
        ``blend_partner``.
    """
    params = _params(simulate)
    layout = params.layout()
    sources = draw_sources(
        layout,
        sim_truth_bands,
        make_wcs(params, layout),
        params,
        (_rng(params, _SOURCES_STREAM), _rng(params, _GAIA_STARS_STREAM)),
        params.edge_margin_pix + EDGE_PAD_PIX,
    )
    logger.info(
        "simulate: %d sources (%d in the catalog, %d with Gaia IDs)",
        len(sources),
        int(sources["in_catalog"].sum()),
        int((sources["gaia_source_id"] != "").sum()),
    )
    return sources


def draw_sim_defects(sim_truth_bands: pd.DataFrame, simulate: Mapping[str, Any]) -> pd.DataFrame:
    """``truth_defects.csv``: every hot pixel, hot column, cosmic ray and satellite trail.

    One row per artefact: ``band``, ``kind``, ``x0``, ``y0``, ``x1``, ``y1`` (0-based px),
    ``width_pix`` (px), ``amplitude_adu`` (ADU); no rows when ``simulate.defects`` adds none
    (see :func:`~phot7dt.pipelines.simulate.defects.draw_artefacts`).
    """
    params = _params(simulate)
    artefacts = draw_artefacts(params, params.layout(), sim_truth_bands)
    counts = {str(k): int(v) for k, v in artefacts["kind"].value_counts().items()}
    logger.info("simulate: %d artefacts %s", len(artefacts), counts)
    return artefacts


def simulate_field(
    sim_sources: pd.DataFrame,
    sim_truth_bands: pd.DataFrame,
    simulate: Mapping[str, Any],
    sim_truth_defects: pd.DataFrame | None = None,
) -> Mapping[str, tuple[np.ndarray, fits.Header] | tuple[np.ndarray, fits.Header, np.ndarray]]:
    """The tile's images, ``{band: (pixels (height, width) float32 ADU, header)}``.

    Rendered with GalSim when the image-list dataset writes each band (one band in
    memory at a time): Moffat PSF varying with band and position (FWHM and shear), sky
    and source noise, saturation with bleed trails, NaN pixels, and the defects of
    ``simulate.defects`` (residual sky, artefacts of ``sim_truth_defects``, drawn from the
    parameters when None, NaN borders). With ``defects.depth_map`` each item is
    ``(pixels, header, weight)``, ``weight`` the float32 relative-weight map (0 on the NaN
    border). Headers carry the TAN WCS (CD matrix) and ``FILTER``, ``ZP_AUTO``, ``SKYSIG``
    (noise at the median weight), ``EGAIN``, ``SATURATE``, ``PEEING`` (px), ``SEEING`` (arcsec).
    """
    params = _params(simulate)
    layout = params.layout()
    if sim_truth_defects is None:
        sim_truth_defects = draw_artefacts(params, layout, sim_truth_bands)
    return LazyBandImages(
        sim_sources, sim_truth_bands, layout, params, make_wcs(params, layout), sim_truth_defects
    )


def build_sim_truth(
    sim_sources: pd.DataFrame, sim_truth_bands: pd.DataFrame, simulate: Mapping[str, Any]
) -> pd.DataFrame:
    """``truth.csv``: every source's true values and the bands where its core saturates."""
    params = _params(simulate)
    saturated = {}
    for _, band in sim_truth_bands.iterrows():
        adu = sim_sources[f"FLUX_{band['band']}"].to_numpy() * adu_per_scaled_flux(
            band, params.zp_ref
        )
        saturated[band["band"]] = saturated_sources(sim_sources, adu, band)
    return truth_table(sim_sources, saturated)


def build_sim_catalog(sim_sources: pd.DataFrame, simulate: Mapping[str, Any]) -> pd.DataFrame:
    """``catalog.csv``: the listed sources with perturbed positions, fluxes and shapes."""
    params = _params(simulate)
    wcs = make_wcs(params, params.layout())
    return input_catalog(sim_sources, wcs, params, _rng(params, _CATALOG_STREAM))


def build_sim_gaiaxp(sim_sources: pd.DataFrame, simulate: Mapping[str, Any]) -> pd.DataFrame:
    """``gaiaxp_synphot.csv``: Gaia stars of the field with synthetic 7DT magnitudes."""
    params = _params(simulate)
    return gaiaxp_table(sim_sources, params, _rng(params, _GAIA_STREAM))
