"""Synthetic fitted catalogs with known per-band zero-point offsets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from phot7dt.frames import Box, Frame, FrameSet

ZP_REF = 25.0
#: True ``zp_median - zp_ref`` (= zp_true - ZP_AUTO) per band.
OFFSETS = {"m400": 0.07, "m525": -0.12, "r": 0.0}


def frame_set(offsets: dict[str, float] = OFFSETS) -> FrameSet:
    """Frames carrying only what calibration reads (band order, zp_ref, ZP_AUTO)."""
    frames = tuple(
        Frame(band=band, path=f"/nonexistent/{band}.fits", hdu=0, zp_auto=24.0 - offset,
              skysig=1.0, egain=1.0, saturate=np.inf, saturation_level=np.inf,
              fwhm_pix=3.0, scale=1.0)
        for band, offset in offsets.items()
    )
    return FrameSet(frames=frames, crop=Box(0, 0, 100, 100), full_shape=(100, 100),
                    zp_ref=ZP_REF, wcs_header="")


def synthetic_field(
    rng: np.random.Generator,
    *,
    n_stars: int = 150,
    n_galaxies: int = 40,
    intrinsic: float = 0.015,
    outlier_fraction: float = 0.05,
    nonconverged_fraction: float = 0.08,
    offsets: dict[str, float] = OFFSETS,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(merged_catalog, gaiaxp_synphot, truth) for one field.

    Stars have Gaia magnitudes 12-19, flux errors of sky plus source noise,
    an extra per-star scatter ``intrinsic`` (mag), blends that make a fraction
    of them 0.3-1 mag too bright, and unreliable fits biased by 0.2 mag.
    ``truth`` holds each row's true magnitude per band (``MAG_<band>_true``)
    and which rows are outliers.
    """
    ids = [f"gaia_{1000 + i}" for i in range(n_stars)]
    source_ids = [str(4_000_000_000 + i) for i in range(n_stars)]
    colour = rng.normal(0.0, 0.3, n_stars)
    base = rng.uniform(12.0, 19.0, n_stars)
    outlier = rng.random(n_stars) < outlier_fraction
    unreliable = (rng.random(n_stars) < nonconverged_fraction) & ~outlier
    merged = {"ID": ids + [f"gal{i}" for i in range(n_galaxies)],
              "gaia_source_id": source_ids + [""] * n_galaxies}
    gaia = {"source_id": source_ids, "phot_g_mean_mag": base}
    truth = {"ID": merged["ID"], "outlier": np.r_[outlier, np.zeros(n_galaxies, bool)]}
    for k, (band, offset) in enumerate(offsets.items()):
        mag = np.r_[base + colour * (k - 1) * 0.3, rng.uniform(18.0, 23.0, n_galaxies)]
        true_flux = 10 ** (0.4 * (ZP_REF + offset - mag))
        sigma = np.sqrt(true_flux + 20.0**2)
        scatter = np.r_[rng.normal(0.0, intrinsic, n_stars), np.zeros(n_galaxies)]
        flux = true_flux * 10 ** (-0.4 * scatter) + rng.normal(0.0, sigma)
        blend = np.r_[rng.uniform(0.3, 1.0, n_stars) * outlier, np.zeros(n_galaxies)]
        bias = np.r_[0.2 * unreliable, np.zeros(n_galaxies)]
        flux *= 10 ** (0.4 * (blend + bias))
        merged[f"FLUX_{band}_fit"] = flux
        merged[f"FLUXERR_{band}_fit"] = sigma
        gaia[f"mag_{band}"] = mag[:n_stars]
        truth[f"MAG_{band}_true"] = mag
    merged["fit_is_reliable"] = np.r_[~unreliable, np.ones(n_galaxies, bool)]
    merged["opt_converged"] = merged["fit_is_reliable"]
    merged["excluded_any"] = np.zeros(n_stars + n_galaxies, bool)
    return pd.DataFrame(merged), pd.DataFrame(gaia), pd.DataFrame(truth)
