"""Tables written next to the simulated images: the input catalog, GaiaXP synphot and the truth."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from phot7dt.config.simulate import SimulateParams

if TYPE_CHECKING:
    from astropy.wcs import WCS

TRUTH_COLUMNS = ["ID", "in_catalog", "role", "TYPE", "RA", "DEC", "x_pix", "y_pix"]
SHAPE_COLUMNS = ["re_pix", "ell", "theta_deg", "sersic_n"]


def band_names(sources: pd.DataFrame) -> list[str]:
    """Band names, in column order, of the ``FLUX_<band>`` columns."""
    return [c.removeprefix("FLUX_") for c in sources.columns if c.startswith("FLUX_")]


def truth_table(sources: pd.DataFrame, saturated: dict[str, np.ndarray]) -> pd.DataFrame:
    """``truth.csv``: one row per simulated source.

    ``FLUX_<band>`` is the flux a correct fit finds on the common scale, ``mag_<band>``
    the true AB magnitude; ``saturated_bands`` lists the bands whose core saturates
    (comma-separated, "" when none). Stars have NaN shape columns; ``role`` and
    ``blend_partner`` say why a source is there (an extension of the truth contract).
    """
    bands = band_names(sources)
    out = sources[TRUTH_COLUMNS].copy()
    for band in bands:
        out[f"FLUX_{band}"] = sources[f"FLUX_{band}"]
    for band in bands:
        out[f"mag_{band}"] = sources[f"mag_{band}"]
    out[SHAPE_COLUMNS] = sources[SHAPE_COLUMNS]
    out["gaia_source_id"] = sources["gaia_source_id"]
    out["phot_g_mean_mag"] = sources["phot_g_mean_mag"]
    out["blend_partner"] = sources["blend_partner"]
    flags = np.array([saturated[b] for b in bands]).T.reshape(len(sources), len(bands))
    out["saturated_bands"] = [
        ",".join(b for b, f in zip(bands, row, strict=True) if f) for row in flags
    ]
    return out


def _wrap_theta(theta_deg: np.ndarray) -> np.ndarray:
    """Angles folded into SExtractor's range ``(-90, 90]`` degrees."""
    return 90.0 - np.mod(90.0 - theta_deg, 180.0)


def input_catalog(
    sources: pd.DataFrame, wcs: WCS, params: SimulateParams, rng: np.random.Generator
) -> pd.DataFrame:
    """``catalog.csv`` in tract7dt's format, from the listed sources with perturbed measurements.

    Positions move by ``catalog_pos_sigma_pix``, fluxes and ``Re`` by log-normal
    factors; a few galaxies get a blank or ``GAL`` type; some rows carry prior
    widths. Rows come in random order.
    """
    listed = sources[sources["in_catalog"]].reset_index(drop=True)
    n = len(listed)
    galaxy = (listed["TYPE"] != "STAR").to_numpy()
    x = listed["x_pix"] + rng.normal(0.0, params.catalog_pos_sigma_pix, n)
    y = listed["y_pix"] + rng.normal(0.0, params.catalog_pos_sigma_pix, n)
    ra, dec = wcs.all_pix2world(x.to_numpy(), y.to_numpy(), 0)
    types = listed["TYPE"].to_numpy(dtype=object).copy()
    untyped = galaxy & (rng.uniform(size=n) < params.catalog_untyped_fraction)
    types[untyped] = rng.choice(np.array(["", "GAL"], dtype=object), int(untyped.sum()))
    cat = pd.DataFrame({"ID": listed["ID"], "RA": ra, "DEC": dec, "TYPE": types})
    for band in band_names(listed):
        cat[f"FLUX_{band}"] = listed[f"FLUX_{band}"] * rng.lognormal(
            0.0, params.catalog_flux_sigma, n
        )
    sigma = params.catalog_shape_sigma
    cat["ELL"] = np.where(galaxy, np.clip(listed["ell"] + rng.normal(0, 0.05, n), 0.0, 0.9), np.nan)
    cat["THETA"] = np.where(
        galaxy, _wrap_theta(listed["theta_deg"] + rng.normal(0, 8.0, n)), np.nan
    )
    cat["Re"] = np.where(galaxy, listed["re_pix"] * rng.lognormal(0.0, sigma, n), np.nan)
    is_sersic = (listed["TYPE"] == "SERSIC").to_numpy()
    sersic_n = np.clip(listed["sersic_n"] + rng.normal(0, 0.3, n), 0.5, 6.0)
    cat["SERSIC_n"] = np.where(is_sersic, sersic_n, np.nan)
    with_prior = rng.uniform(size=n) < params.catalog_prior_fraction
    cat["POS_ERR"] = np.where(with_prior, max(params.catalog_pos_sigma_pix, 0.05), np.nan)
    gal_prior = with_prior & galaxy
    cat["Re_ERR"] = np.where(gal_prior, 0.3 * cat["Re"], np.nan)
    cat["ELL_ERR"] = np.where(gal_prior, 0.1, np.nan)
    cat["THETA_ERR"] = np.where(gal_prior, 15.0, np.nan)
    return cat.iloc[rng.permutation(n)].reset_index(drop=True)


def gaiaxp_table(
    sources: pd.DataFrame, params: SimulateParams, rng: np.random.Generator
) -> pd.DataFrame:
    """``gaiaxp_synphot.csv``: stars with a Gaia source ID (G at most ``gaia_g_max``).

    Magnitudes are the true AB magnitudes plus ``gaia_mag_sigma`` noise; positions
    are the true ones (Gaia astrometry is far better than a pixel). Unlisted bright
    stars are included: Gaia knows stars the source catalog lacks.
    """
    stars = sources[sources["gaia_source_id"] != ""].reset_index(drop=True)
    n = len(stars)
    gaia = pd.DataFrame(
        {
            "source_id": stars["gaia_source_id"],
            "ra": stars["RA"],
            "dec": stars["DEC"],
            "phot_g_mean_mag": stars["phot_g_mean_mag"] + rng.normal(0, 0.003, n),
        }
    )
    for band in band_names(stars):
        gaia[f"mag_{band}"] = stars[f"mag_{band}"] + rng.normal(0.0, params.gaia_mag_sigma, n)
    return gaia.sort_values("ra").reset_index(drop=True)
