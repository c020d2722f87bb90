"""A hand-made field of saturated stars with bleed trails, and the stages before patching on it.

Four bands with a Moffat PSF (FWHM 3.5 px, beta 3); three stars 1, 2 and 3 mag
brighter than saturation in m400 and m500 (their peak pixel reaches
``SATURATE / 1.3`` at the saturation flux) and at 0.3 of that flux in m600 and
m700; four ordinary stars. Saturated columns spill their excess charge along
the column (bleed trails) before clipping at ``SATURATE``. Noise: sky plus
source Poisson noise (``EGAIN`` = 1).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from fitting_field import UpstreamField, load_upstream, run_project_pipeline
from tiny_field import tiny_wcs, wcs_header

from phot7dt.pipelines.gaia_augment import create_pipeline as gaia_augment_pipeline
from phot7dt.pipelines.ingest import create_pipeline as ingest_pipeline
from phot7dt.pipelines.masking import create_pipeline as masking_pipeline
from phot7dt.pipelines.psf.stamp_models import moffat_alpha, moffat_stamp
from phot7dt.psf_grid import PSFChoice, PSFGrid, cell_boxes

BANDS = ("m400", "m500", "m600", "m700")
SATURATED_BANDS = ("m400", "m500")
SHAPE = (220, 220)
FWHM, BETA = 3.5, 3.0
SATURATE, SKYSIG = 60000.0, 5.0
#: Flux (ADU) whose peak pixel is exactly at the pipeline's saturation level SATURATE / 1.3.
PEAK_FRACTION = (BETA - 1.0) / (math.pi * moffat_alpha(FWHM, BETA) ** 2)
SATURATION_FLUX = SATURATE / 1.3 / PEAK_FRACTION
#: (ID, x, y, magnitudes above saturation in m400/m500 or None, flux in the other bands)
STARS = (
    ("sat1", 60.3, 60.6, 1.0, 0.3),
    ("sat2", 160.7, 70.2, 2.0, 0.3),
    ("sat3", 105.4, 160.3, 3.0, 0.3),
    ("star1", 60.2, 150.8, None, 0.05),
    ("star2", 160.5, 160.1, None, 0.08),
    ("star3", 110.8, 100.4, None, 0.1),
    ("star4", 170.1, 120.6, None, 0.04),
)


def truth_fluxes() -> pd.DataFrame:
    """ID, x, y (original px) and ``FLUX_{band}`` (ADU = common scale, ZP_AUTO = zp_ref)."""
    rows = []
    for sid, x, y, above, other in STARS:
        row = {"ID": sid, "x": x, "y": y}
        for band in BANDS:
            bright = above is not None and band in SATURATED_BANDS
            factor = 10 ** (0.4 * above) if bright else other
            row[f"FLUX_{band}"] = SATURATION_FLUX * factor
        rows.append(row)
    return pd.DataFrame(rows)


def _moffat(shape, x0: float, y0: float) -> np.ndarray:
    """Unit-flux Moffat integrated over pixels (5x5 sub-pixels) within 40 px of (x0, y0)."""
    alpha = moffat_alpha(FWHM, BETA)
    out = np.zeros(shape)
    ix, iy = round(x0), round(y0)
    ya, yb = max(iy - 40, 0), min(iy + 41, shape[0])
    xa, xb = max(ix - 40, 0), min(ix + 41, shape[1])
    sub = (np.arange(5) + 0.5) / 5 - 0.5
    yy = np.arange(ya, yb)[:, None, None, None] + sub[None, None, :, None] - y0
    xx = np.arange(xa, xb)[None, :, None, None] + sub[None, None, None, :] - x0
    profile = (1.0 + (xx**2 + yy**2) / alpha**2) ** (-BETA)
    out[ya:yb, xa:xb] = profile.mean(axis=(2, 3)) * (BETA - 1.0) / (math.pi * alpha**2)
    return out


def bleed(image: np.ndarray) -> None:
    """Spill each column's charge above SATURATE along the column (half up, half down), clip."""
    excess = np.clip(image - SATURATE, 0.0, None).sum(axis=0)
    for col in np.flatnonzero(excess > 0):
        rows = np.flatnonzero(image[:, col] >= SATURATE)
        extra = math.ceil(excess[col] / SATURATE / 2.0)
        image[max(rows.min() - extra, 0) : rows.max() + extra + 1, col] = SATURATE
    np.minimum(image, SATURATE, out=image)


def write_field(folder: Path, seed: int = 3) -> pd.DataFrame:
    """Write the four FITS images, image list, catalog and GaiaXP CSV; return the truth."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    truth = truth_fluxes()
    wcs = tiny_wcs(SHAPE)
    truth["RA"], truth["DEC"] = wcs.all_pix2world(truth["x"], truth["y"], 0)
    for band in BANDS:
        model = sum(r[f"FLUX_{band}"] * _moffat(SHAPE, r["x"], r["y"]) for _, r in truth.iterrows())
        image = rng.poisson(np.clip(model, 0, None)) + rng.normal(0.0, SKYSIG, SHAPE)
        bleed(image)
        header = wcs_header(wcs)
        header.update(FILTER=band, ZP_AUTO=25.0, SKYSIG=SKYSIG, EGAIN=1.0, SATURATE=SATURATE,
                      PEEING=FWHM)
        fits.PrimaryHDU(image.astype(np.float32), header).writeto(folder / f"{band}.fits")
    (folder / "image_list.txt").write_text("\n".join(f"{b}.fits" for b in BANDS) + "\n")
    truth[["ID", "RA", "DEC"]].assign(TYPE="STAR").to_csv(folder / "catalog.csv", index=False,
                                                           float_format="%.10f")
    gaia = {"source_id": ["1"], "ra": [truth["RA"][3]], "dec": [truth["DEC"][3]],
            "phot_g_mean_mag": [30.0], **{f"mag_{b}": [30.0] for b in BANDS}}
    pd.DataFrame(gaia).to_csv(folder / "gaiaxp_synphot.csv", index=False)
    return truth


def moffat_grid(frames, ngrid: int) -> PSFGrid:
    """The field's true PSF in every band and cell."""
    stamp = moffat_stamp(FWHM, BETA, 25)
    choices = {
        (band, r, c): PSFChoice("epsf", stamp, FWHM, BETA, 30, "true PSF")
        for band in frames.bands
        for (r, c) in cell_boxes(frames.shape, ngrid)
    }
    return PSFGrid(frames.shape, ngrid, tuple(frames.bands), choices)


def build_saturated_upstream(root: Path, mode: str, ngrid: int) -> UpstreamField:
    """Ingest, gaia_augment and masking on the field with ``source_saturation_cut.mode``."""
    raw, work = root / "raw", root / "work"
    truth = write_field(raw)
    params = {
        "sample_dir": str(raw),
        "work_dir": str(work),
        "input_catalog": str(raw / "catalog.csv"),
        "image_list": str(raw / "image_list.txt"),
        "gaiaxp_synphot": str(raw / "gaiaxp_synphot.csv"),
        "source_saturation_cut": {"mode": mode},
        "crop": {"plot_pre_crop": False, "overlay_catalog": False},
    }
    upstream = ingest_pipeline() + gaia_augment_pipeline() + masking_pipeline()
    run_project_pipeline(upstream.to_nodes("flag_bright_mask_sources", "write_wcs_snapshot"),
                         params)
    return load_upstream(raw, work, truth, lambda frames: moffat_grid(frames, ngrid))
