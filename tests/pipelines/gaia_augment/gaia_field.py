"""A small two-band field with a flagged catalog and a GaiaXP table of known stars.

Working frame: 200 x 160 px cut from 240 x 200 px images (crop margin 20),
TAN WCS at 0.505"/px. Every position below is in working-frame pixels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.wcs import WCS

from phot7dt.frames import Box, Frame, FrameSet

FULL_SHAPE = (200, 240)
CROP = Box(20, 20, 220, 180)
PIXSCALE_DEG = 0.505 / 3600.0
ZP_REF = 25.0
SATURATE = 60000.0
#: Working-frame centre of a block of saturated pixels (both bands).
SATURATED_AT = (150, 40)


def tan_wcs(crpix: tuple[float, float]) -> WCS:
    """TAN WCS at (150, 2) deg with 0.505"/px, north up, east left."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = list(crpix)
    wcs.wcs.cd = [[-PIXSCALE_DEG, 0.0], [0.0, PIXSCALE_DEG]]
    return wcs


WORK_WCS = tan_wcs((100.5, 80.5))


def sky(x: float, y: float) -> tuple[float, float]:
    """RA, DEC (deg) of a working-frame pixel position."""
    ra, dec = WORK_WCS.all_pix2world([x], [y], 0)
    return float(ra[0]), float(dec[0])


def write_band(path, band: str, zp_auto: float, seed: int) -> Frame:
    """Write a noise image with a saturated block; return its Frame."""
    rng = np.random.default_rng(seed)
    data = rng.normal(100.0, 5.0, FULL_SHAPE).astype(np.float32)
    x, y = SATURATED_AT
    data[y + CROP.y0 - 1 : y + CROP.y0 + 2, x + CROP.x0 - 1 : x + CROP.x0 + 2] = 1.2 * SATURATE
    header = tan_wcs((120.5, 100.5)).to_header()
    header.update(FILTER=band, ZP_AUTO=zp_auto, SKYSIG=5.0, EGAIN=1.0, SATURATE=SATURATE)
    fits.PrimaryHDU(data, header).writeto(path)
    return Frame(
        band=band, path=str(path), hdu=0, zp_auto=zp_auto, skysig=5.0, egain=1.0,
        saturate=SATURATE, saturation_level=SATURATE / 1.3, fwhm_pix=3.0,
        scale=10 ** (-0.4 * (zp_auto - ZP_REF)),
    )


def make_frames(tmp_path) -> FrameSet:
    bands = [write_band(tmp_path / "m400.fits", "m400", 26.0, 1),
             write_band(tmp_path / "m500.fits", "m500", 25.5, 2)]
    return FrameSet(tuple(bands), CROP, FULL_SHAPE, ZP_REF, WORK_WCS.to_header().tostring())


def catalog_row(id_, x, y, *, flux=(1000.0, 1200.0), excluded=""):
    ra, dec = sky(x, y) if np.isfinite(x) else (np.nan, np.nan)
    return {
        "ID": id_, "RA": ra, "DEC": dec, "TYPE": "EXP",
        "FLUX_m400": flux[0], "FLUX_m500": flux[1],
        "x_pix_white": x, "y_pix_white": y,
        "excluded_crop": "crop" in excluded, "excluded_saturation": "saturation" in excluded,
        "excluded_any": bool(excluded), "excluded_reason": excluded,
    }


def make_flagged_catalog() -> pd.DataFrame:
    rows = [
        catalog_row("s1", 50.0, 50.0),
        catalog_row("s2", 100.0, 80.0, flux=(np.nan, 0.0)),
        catalog_row("s3", 30.0, 120.0),
        catalog_row("s4_no_position", np.nan, np.nan, excluded="crop"),
        catalog_row("s5", 30.0, 30.0, excluded="saturation"),
    ]
    cat = pd.DataFrame(rows)
    cat["ID"] = cat["ID"].astype(str)
    cat["excluded_reason"] = cat["excluded_reason"].astype(str)
    cat["row_index"] = np.arange(len(cat))
    return cat


def gaia_row(sid, x, y, g, m400, m500, dx_arcsec=0.0):
    ra, dec = sky(x, y)
    return {"source_id": sid, "ra": ra + dx_arcsec / 3600.0 / np.cos(np.radians(dec)), "dec": dec,
            "phot_g_mean_mag": g, "mag_m400": m400, "mag_m500": m500}


#: Gaia stars: matched (g1, g2), to inject (g3 active, g4 near saturation, g7 without
#: mag_m500), too faint (g5), outside the frame (g6).
def make_gaiaxp() -> pd.DataFrame:
    rows = [
        gaia_row("1001", 50.0, 50.0, 15.0, 15.2, 15.1, dx_arcsec=0.8),
        gaia_row("1002", 100.0, 80.0, 16.0, 16.3, 16.1),
        gaia_row("1003", 120.0, 130.0, 17.0, 17.4, 17.2),
        gaia_row("1004", 152.0, 38.0, 12.0, 12.1, 12.0),
        gaia_row("1005", 80.0, 20.0, 19.5, 19.6, 19.5),
        gaia_row("1006", -40.0, 60.0, 14.0, 14.1, 14.0),
        gaia_row("1007", 170.0, 140.0, 16.5, 16.7, np.nan),
    ]
    gaia = pd.DataFrame(rows)
    gaia["source_id"] = gaia["source_id"].astype(str)
    return gaia
