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

from phot7dt.params import section
from phot7dt.pipelines.simulate.catalogs import gaiaxp_table, input_catalog, truth_table
from phot7dt.pipelines.simulate.field import draw_population, finish_sources
from phot7dt.pipelines.simulate.params import SimulateParams
from phot7dt.pipelines.simulate.render import saturated_sources
from phot7dt.pipelines.simulate.sky import adu_per_scaled_flux, draw_band_table, make_wcs
from phot7dt.pipelines.simulate.tile import LazyBandImages

logger = logging.getLogger(__name__)

#: Extra clearance (px) between the edge margin and the closest source centre.
EDGE_PAD_PIX = 8

_BANDS_STREAM, _SOURCES_STREAM, _CATALOG_STREAM, _GAIA_STREAM = 1, 2, 4, 5


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
        centre), ``moffat_beta`` and the PSF field-variation coefficients
        (see :func:`phot7dt.pipelines.simulate.sky.moffat_fwhm_at`).
    """
    params = _params(simulate)
    layout = params.layout()
    bands = draw_band_table(params, layout, _rng(params, _BANDS_STREAM))
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
    rng = _rng(params, _SOURCES_STREAM)
    frame = draw_population(layout, params.edge_margin_pix + EDGE_PAD_PIX, rng)
    sources = finish_sources(frame, sim_truth_bands, make_wcs(params, layout), params, rng)
    logger.info(
        "simulate: %d sources (%d in the catalog, %d with Gaia IDs)",
        len(sources),
        int(sources["in_catalog"].sum()),
        int((sources["gaia_source_id"] != "").sum()),
    )
    return sources


def simulate_field(
    sim_sources: pd.DataFrame, sim_truth_bands: pd.DataFrame, simulate: Mapping[str, Any]
) -> Mapping[str, tuple[np.ndarray, fits.Header]]:
    """The tile's images, ``{band: (pixels (height, width) float32 ADU, header)}``.

    Rendered with GalSim when the image-list dataset writes each band (one band in
    memory at a time): Moffat PSF varying with band and position, sky and source
    noise, saturation with bleed trails, NaN pixels. Headers carry the TAN WCS
    (CD matrix) and ``FILTER``, ``ZP_AUTO``, ``SKYSIG``, ``EGAIN``, ``SATURATE``,
    ``PEEING`` (px), ``SEEING`` (arcsec).
    """
    params = _params(simulate)
    layout = params.layout()
    return LazyBandImages(sim_sources, sim_truth_bands, layout, params, make_wcs(params, layout))


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
