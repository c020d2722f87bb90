"""A tiny, valid 7DT-like tile for tests.

``write_tiny_field(folder, ...)`` writes one FITS image per band (Gaussian stars and galaxies on
noise, tract7dt's header keys, a TAN WCS), the image list, the source catalog
CSV and a GaiaXP CSV, and returns a :class:`TinyField` with their paths and the
truth. Header keys can be overridden per band (``None`` deletes a key).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.wcs import WCS

PIXEL_SCALE_ARCSEC = 0.505
CENTRE_DEG = (150.0, 2.0)
DEFAULT_BANDS = ("m400", "m412", "m425")


@dataclasses.dataclass(frozen=True)
class TinyField:
    """Paths and truth of a field written by ``make_field``."""

    folder: Path
    image_list: Path
    catalog_csv: Path
    gaiaxp_csv: Path
    fits_paths: dict[str, Path]
    bands: tuple[str, ...]
    shape: tuple[int, int]
    sources: pd.DataFrame  # ID, TYPE, x, y (0-based original pixels), RA, DEC, flux (common scale)
    headers: dict[str, fits.Header]

    @property
    def wcs(self) -> WCS:
        """Celestial WCS of the original images."""
        return WCS(self.headers[self.bands[0]]).celestial


def tiny_wcs(shape: tuple[int, int]) -> WCS:
    """TAN WCS centred on ``CENTRE_DEG`` with 0.505 arcsec pixels, north up, east left."""
    ny, nx = shape
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = list(CENTRE_DEG)
    wcs.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
    scale = PIXEL_SCALE_ARCSEC / 3600.0
    wcs.wcs.cd = [[-scale, 0.0], [0.0, scale]]
    return wcs


def wcs_header(wcs: WCS) -> fits.Header:
    """The WCS as SWarp writes 7DT stacks: CD matrix, no PC/CDELT."""
    header = fits.Header()
    for i in (1, 2):
        header[f"CTYPE{i}"] = wcs.wcs.ctype[i - 1]
        header[f"CRVAL{i}"] = wcs.wcs.crval[i - 1]
        header[f"CRPIX{i}"] = wcs.wcs.crpix[i - 1]
        header[f"CUNIT{i}"] = "deg"
    for i in (1, 2):
        for j in (1, 2):
            header[f"CD{i}_{j}"] = wcs.wcs.cd[i - 1, j - 1]
    header["RADESYS"] = "ICRS"
    return header


def default_sources(shape: tuple[int, int]) -> pd.DataFrame:
    """Six sources: stars, galaxies, one near the edge, one bright (saturating) star."""
    ny, nx = shape
    rows = [
        ("001", "STAR", 0.30 * nx, 0.35 * ny, 2000.0),
        ("002", "EXP", 0.60 * nx, 0.55 * ny, 1500.0),
        ("003", "dev", 0.45 * nx, 0.70 * ny, 1200.0),
        ("004", "", 0.75 * nx, 0.30 * ny, 800.0),
        ("005", "STAR", 2.0, 2.0, 900.0),
        ("006", "STAR", 0.80 * nx, 0.80 * ny, 400000.0),
    ]
    return pd.DataFrame(rows, columns=["ID", "TYPE", "x", "y", "flux"])


def _render(
    shape, sources: pd.DataFrame, scale: float, skysig: float, fwhm: float, rng
) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = rng.normal(0.0, skysig, shape)
    sigma = fwhm / 2.3548
    for src in sources.itertuples():
        width = sigma if src.TYPE.upper() == "STAR" else 1.8 * sigma
        profile = np.exp(-((xx - src.x) ** 2 + (yy - src.y) ** 2) / (2 * width**2))
        image += (src.flux / scale) * profile / (2 * np.pi * width**2)
    return image.astype(np.float32)


def write_tiny_field(
    folder: Path,
    *,
    bands: tuple[str, ...] = DEFAULT_BANDS,
    shape: tuple[int, int] = (64, 80),
    sources: pd.DataFrame | None = None,
    header_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    with_fluxes: bool = True,
    seed: int = 7,
) -> TinyField:
    """Write a valid tiny field into ``folder`` (see the module docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    wcs = tiny_wcs(shape)
    sources = default_sources(shape) if sources is None else sources.copy()
    sources["RA"], sources["DEC"] = wcs.all_pix2world(sources["x"], sources["y"], 0)
    fits_paths, headers = {}, {}
    for i, band in enumerate(bands):
        header = wcs_header(wcs)
        header.update(
            FILTER=band,
            ZP_AUTO=25.0 + 0.1 * i,
            SKYSIG=2.0 + 0.5 * i,
            EGAIN=1.5,
            SATURATE=30000.0,
            PEEING=3.0 + 0.1 * i,
        )
        for key, value in (header_overrides or {}).get(band, {}).items():
            if value is None:
                header.remove(key, ignore_missing=True)
            else:
                header[key] = value
        scale = 10 ** (-0.4 * (25.0 + 0.1 * i - 25.0))
        data = _render(shape, sources, scale, 2.0 + 0.5 * i, 3.0 + 0.1 * i, rng)
        path = folder / f"{band}.fits"
        fits.PrimaryHDU(data=data, header=header).writeto(path, overwrite=True)
        fits_paths[band], headers[band] = path, header
    (folder / "image_list.txt").write_text(
        "# tiny field\n\n" + "\n".join(f"{b}.fits" for b in bands) + "\n"
    )
    catalog = sources[["ID", "RA", "DEC", "TYPE"]].copy()
    if with_fluxes:
        for band in bands:
            catalog[f"FLUX_{band}"] = sources["flux"].round(3)
    catalog.to_csv(folder / "catalog.csv", index=False, float_format="%.10f")
    gaia = pd.DataFrame(
        {
            "source_id": ["4000000000000000001"],
            "ra": sources["RA"][:1],
            "dec": sources["DEC"][:1],
            "phot_g_mean_mag": [16.0],
        }
    )
    for band in bands:
        gaia[f"mag_{band}"] = 16.0
    gaia.to_csv(folder / "gaiaxp_synphot.csv", index=False)
    return TinyField(
        folder=folder,
        image_list=folder / "image_list.txt",
        catalog_csv=folder / "catalog.csv",
        gaiaxp_csv=folder / "gaiaxp_synphot.csv",
        fits_paths=fits_paths,
        bands=tuple(bands),
        shape=shape,
        sources=sources,
        headers=headers,
    )
