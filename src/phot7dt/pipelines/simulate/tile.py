"""Whole band images of the simulated tile, rendered one band at a time when they are written."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.wcs import WCS

from phot7dt.pipelines.simulate.params import FieldLayout, SimulateParams
from phot7dt.pipelines.simulate.render import (
    add_bad_pixels,
    add_noise,
    bleed_and_clip,
    render_model,
)
from phot7dt.pipelines.simulate.sky import adu_per_scaled_flux, band_header

logger = logging.getLogger(__name__)

#: Stream of the band random generators: ``default_rng([seed, BAND_STREAM, band_index])``.
BAND_STREAM = 3


def render_band(
    sources: pd.DataFrame,
    band: pd.Series,
    layout: FieldLayout,
    params: SimulateParams,
    rng: np.random.Generator,
) -> np.ndarray:
    """One band's raw image, ``(height, width)`` float32 ADU, background 0.

    Sources carry ``FLUX_<band>`` on the common scale; they are drawn in raw ADU
    (times ``10**(0.4 (ZP_AUTO - zp_ref))``). Then noise (when ``params.noise``),
    saturation with bleed trails at ``SATURATE``, and NaN pixels and column segments.
    """
    adu = sources[f"FLUX_{band['band']}"].to_numpy() * adu_per_scaled_flux(band, params.zp_ref)
    image, saturating = render_model(sources, adu, band, (layout.height, layout.width))
    if params.noise:
        image = add_noise(image, band, rng)
    bleed_and_clip(image, float(band["saturate"]), saturating)
    add_bad_pixels(image, params.nan_pixels, params.nan_columns, rng)
    return image


class LazyBandImages(Mapping[str, tuple[np.ndarray, fits.Header]]):
    """``{band: (pixels, header)}`` whose pixels are rendered when an item is read.

    :class:`~phot7dt.datasets.ImageListDataset` writes the bands one after the
    other, so only one rendered band is held in memory at a time. Every read
    renders afresh from the band's own seeded generator, so repeated reads agree.
    """

    def __init__(
        self,
        sources: pd.DataFrame,
        bands: pd.DataFrame,
        layout: FieldLayout,
        params: SimulateParams,
        wcs: WCS,
    ) -> None:
        self._sources = sources
        self._bands = bands.set_index("band", drop=False)
        self._layout = layout
        self._params = params
        self._wcs = wcs

    def __getitem__(self, band: str) -> tuple[np.ndarray, fits.Header]:
        row = self._bands.loc[band]
        index = int(self._bands.index.get_loc(band))
        rng = np.random.default_rng([self._params.seed, BAND_STREAM, index])
        logger.info("simulate: rendering band %s (%d sources)", band, len(self._sources))
        pixels = render_band(self._sources, row, self._layout, self._params, rng)
        return pixels, band_header(row, self._wcs, self._params.pixel_scale_arcsec)

    def __iter__(self) -> Iterator[str]:
        return iter(self._bands.index)

    def __len__(self) -> int:
        return len(self._bands)
