"""Whole band images of the simulated tile, rendered one band at a time when they are written."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from phot7dt.config.simulate import FieldLayout, SimulateParams
from phot7dt.pipelines.simulate.artefacts import add_defects, apply_nan_border
from phot7dt.pipelines.simulate.depth import depth_factor, relative_weight
from phot7dt.pipelines.simulate.render import (
    add_bad_pixels,
    add_noise,
    bleed_and_clip,
    render_model,
)
from phot7dt.pipelines.simulate.sky import adu_per_scaled_flux, band_header

if TYPE_CHECKING:
    from astropy.wcs import WCS

logger = logging.getLogger(__name__)

#: Stream of the band random generators: ``default_rng([seed, BAND_STREAM, band_index])``.
BAND_STREAM = 3


def render_band(
    sources: pd.DataFrame,
    band: pd.Series,
    layout: FieldLayout,
    params: SimulateParams,
    rng: np.random.Generator,
    artefacts: pd.DataFrame | None = None,
    weight: np.ndarray | None = None,
) -> np.ndarray:
    """One band's raw image, ``(height, width)`` float32 ADU, background 0.

    Sources carry ``FLUX_<band>`` on the common scale; they are drawn in raw ADU
    (times ``10**(0.4 (ZP_AUTO - zp_ref))``). Then noise (when ``params.noise``; scaled by
    the relative ``weight`` map when given), saturation with bleed trails at ``SATURATE``,
    the residual sky of the band row and the ``artefacts`` (its rows of
    ``truth_defects.csv``), NaN pixels and column segments, and the NaN border.
    """
    adu = sources[f"FLUX_{band['band']}"].to_numpy() * adu_per_scaled_flux(band, params.zp_ref)
    image, saturating = render_model(sources, adu, band, (layout.height, layout.width))
    if params.noise:
        image = add_noise(image, band, rng, None if weight is None else depth_factor(weight))
    saturate = float(band["saturate"])
    bleed_and_clip(image, saturate, saturating)
    add_defects(image, band, artefacts, saturate)
    add_bad_pixels(image, params.nan_pixels, params.nan_columns, rng)
    apply_nan_border(image, band)
    return image


class LazyBandImages(Mapping[str, tuple]):
    """``{band: (pixels, header)}``, or ``(pixels, header, weight)`` with a depth map.

    Pixels are rendered when an item is read: :class:`~phot7dt.datasets.ImageListDataset`
    writes the bands one after the other, so only one rendered band is held in memory at a
    time. Every read renders afresh from the band's own seeded generators, so repeated reads
    agree. ``weight`` is the float32 relative-weight map (0 on the NaN border) of
    :func:`~phot7dt.pipelines.simulate.depth.relative_weight`.
    """

    def __init__(
        self,
        sources: pd.DataFrame,
        bands: pd.DataFrame,
        layout: FieldLayout,
        params: SimulateParams,
        wcs: WCS,
        artefacts: pd.DataFrame | None = None,
    ) -> None:
        self._sources = sources
        self._bands = bands.set_index("band", drop=False)
        self._layout = layout
        self._params = params
        self._wcs = wcs
        self._artefacts = artefacts

    def __getitem__(self, band: str) -> tuple:
        row = self._bands.loc[band]
        index = int(self._bands.index.get_loc(band))
        rng = np.random.default_rng([self._params.seed, BAND_STREAM, index])
        shape = (self._layout.height, self._layout.width)
        weight = None
        if self._params.defects.depth_map:
            weight = relative_weight(
                self._params.seed, index, row, shape, self._params.defects.depth_min_weight
            )
        mine = None
        if self._artefacts is not None:
            mine = self._artefacts[self._artefacts["band"].astype(str) == band]
        logger.info("simulate: rendering band %s (%d sources)", band, len(self._sources))
        pixels = render_band(self._sources, row, self._layout, self._params, rng, mine, weight)
        header = band_header(row, self._wcs, self._params.pixel_scale_arcsec)
        return (pixels, header) if weight is None else (pixels, header, weight)

    def __iter__(self) -> Iterator[str]:
        return iter(self._bands.index)

    def __len__(self) -> int:
        return len(self._bands)
