"""A small multi-band field of GalSim Moffat stars with a known PSF per band and cell.

The frame is split into 2 x 2 cells; each cell has its own Moffat FWHM (the
PSF varies across the field) and every star in a cell is drawn with it
(pixel-integrated, random sub-pixel centres), on a sloped sky with Gaussian
noise. Cell (1, 1) holds only two stars, so its ePSF must fall back. One star is
saturated.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import galsim
import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.wcs import WCS

from phot7dt.frames import Box, Frame, FrameSet

SHAPE = (400, 400)
NGRID = 2
ZP_AUTO, ZP_REF = 26.0, 25.0
SKYSIG, SATURATE = 5.0, 60000.0
#: Per band: Moffat beta and FWHM (pixels) of each cell (row, col).
BAND_PSF = {
    "m500": (3.5, {(0, 0): 3.0, (0, 1): 3.2, (1, 0): 2.8, (1, 1): 3.1}),
    "m650": (3.0, {(0, 0): 4.1, (0, 1): 4.4, (1, 0): 3.9, (1, 1): 4.2}),
}
FEW_STAR_CELL = (1, 1)
SATURATED_STAR = (60.0, 60.0)


@dataclasses.dataclass(frozen=True)
class PsfField:
    """A rendered field: its FrameSet, catalogs and truth."""

    frames: FrameSet
    flagged_catalog: pd.DataFrame
    gaiaxp: pd.DataFrame
    stars: pd.DataFrame  # x, y, flux_adu, cell (row, col)


def field_wcs() -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [SHAPE[1] / 2, SHAPE[0] / 2]
    scale = 0.505 / 3600
    wcs.wcs.cd = [[-scale, 0.0], [0.0, scale]]
    return wcs


def star_positions(rng: np.random.Generator) -> pd.DataFrame:
    """Jittered 4 x 4 grid of stars per cell (2 in the few-star cell), plus a saturated one."""
    rows = []
    half = SHAPE[0] // NGRID
    for (r, c) in BAND_PSF["m500"][1]:
        n = 2 if (r, c) == FEW_STAR_CELL else 4
        for i in range(n * n if n == 4 else n):
            gx, gy = (i % 4, i // 4) if n == 4 else (1 + i, 1)
            x = c * half + 32 + gx * 45 + rng.uniform(-4, 4)
            y = r * half + 32 + gy * 45 + rng.uniform(-4, 4)
            rows.append((x, y, 10 ** rng.uniform(4.6, 5.4), (r, c)))
    rows.append((*SATURATED_STAR, 3e6, (0, 0)))
    return pd.DataFrame(rows, columns=["x", "y", "flux_adu", "cell"])


def render_band(stars: pd.DataFrame, beta: float, fwhm_by_cell: dict, rng) -> np.ndarray:
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    image = galsim.ImageF(SHAPE[1], SHAPE[0], scale=1.0)
    for s in stars.itertuples():
        psf = galsim.Moffat(beta=beta, fwhm=fwhm_by_cell[s.cell], flux=s.flux_adu)
        # GalSim pixel (1, 1) is numpy [0, 0]: true centre (x, y) 0-based.
        stamp = psf.drawImage(nx=61, ny=61, scale=1.0,
                              center=galsim.PositionD(s.x + 1, s.y + 1))
        bounds = stamp.bounds & image.bounds
        image[bounds] += stamp[bounds]
    sky = 200.0 + 0.05 * xx - 0.03 * yy
    data = image.array + sky + rng.normal(0, SKYSIG, SHAPE)
    return np.minimum(data, SATURATE).astype(np.float32)


def write_band(folder: Path, band: str, data: np.ndarray, fwhm_header: float | None) -> Frame:
    header = field_wcs().to_header()
    header.update(FILTER=band, ZP_AUTO=ZP_AUTO, SKYSIG=SKYSIG, EGAIN=1.0, SATURATE=SATURATE)
    path = folder / f"{band}.fits"
    fits.PrimaryHDU(data, header=header).writeto(path)
    return Frame(band=band, path=str(path), hdu=0, zp_auto=ZP_AUTO, skysig=SKYSIG, egain=1.0,
                 saturate=SATURATE, saturation_level=SATURATE / 1.3,
                 fwhm_pix=float("nan") if fwhm_header is None else fwhm_header,
                 scale=10 ** (-0.4 * (ZP_AUTO - ZP_REF)))


def make_psf_field(folder: Path, seed: int = 7) -> PsfField:
    rng = np.random.default_rng(seed)
    stars = star_positions(rng)
    frames = []
    for band, (beta, fwhm_by_cell) in BAND_PSF.items():
        data = render_band(stars, beta, fwhm_by_cell, rng)
        header_fwhm = 3.5 if band == "m500" else None
        frames.append(write_band(folder, band, data, header_fwhm))
    frame_set = FrameSet(tuple(frames), Box(0, 0, SHAPE[1], SHAPE[0]), SHAPE, ZP_REF,
                         field_wcs().to_header().tostring())
    catalog = pd.DataFrame({"ID": [str(i) for i in range(len(stars))],
                            "x_pix_white": stars["x"], "y_pix_white": stars["y"],
                            "excluded_any": False})
    ra, dec = field_wcs().all_pix2world(stars["x"], stars["y"], 0)
    mag = ZP_REF - 2.5 * np.log10(stars["flux_adu"] * 10 ** (-0.4 * (ZP_AUTO - ZP_REF)))
    gaia = pd.DataFrame({"ra": ra, "dec": dec, "source_id": [f"g{i}" for i in range(len(ra))],
                         "phot_g_mean_mag": mag, "mag_m500": mag, "mag_m650": mag})
    return PsfField(frame_set, catalog, gaia, stars)


#: ``epsf`` overrides for the 400 x 400 field (small cutouts, serial run).
EPSF_TEST_PARAMS = {
    "epsf_ngrid": NGRID, "cutout_size": 41, "final_psf_size": 35, "edge_pad": 2,
    "min_sep": 15.0, "background_boxsize": 48, "star_local_bkg_annulus_rin_pix": 15.0,
    "star_local_bkg_annulus_rout_pix": 19.0, "parallel_bands": False,
    "save_star_local_background_diagnostics": True,
}
