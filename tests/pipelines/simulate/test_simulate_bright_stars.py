"""The Gaia-like bright-star population: counts, magnitudes, IDs, S/N; other sources unmoved."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phot7dt.config.simulate import SimulateParams
from phot7dt.pipelines.simulate import nodes
from phot7dt.pipelines.simulate.field import CLEARANCE_PIX, GAIA_STAR_G
from phot7dt.pipelines.simulate.sky import adu_per_scaled_flux, moffat_fwhm_at, point_source_snr

SNR_BINS = [0, 20, 100, 300, 1000, 3000, np.inf]


def _scene(params: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    bands = nodes.draw_sim_bands(params)
    return bands, nodes.draw_sim_sources(bands, params)


def _star_band_snr(bands: pd.DataFrame, sources: pd.DataFrame, zp_ref: float) -> pd.DataFrame:
    """Analytic PSF-fit S/N (sky + source noise) of every star in every band."""
    stars = sources[sources["TYPE"] == "STAR"]
    rows = []
    for _, band in bands.iterrows():
        adu = stars[f"FLUX_{band['band']}"].to_numpy() * adu_per_scaled_flux(band, zp_ref)
        fwhm = moffat_fwhm_at(band, stars["x_pix"], stars["y_pix"])
        snr = point_source_snr(adu, band["skysig"], band["egain"], fwhm, band["moffat_beta"])
        rows.append(pd.DataFrame({"role": stars["role"].to_numpy(), "snr": snr}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def medium() -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    params = SimulateParams(preset="medium", seed=7).model_dump()
    bands, sources = _scene(params)
    return params, bands, sources


def test_magnitudes_follow_gaia_like_number_counts():
    params = SimulateParams(
        preset="large", n_gaia_stars=4000, n_galaxies=0, n_field_stars=0, bands=["m550"]
    ).model_dump()
    _, sources = _scene(params)
    g = sources.loc[sources["role"] == "bright_star", "phot_g_mean_mag"].to_numpy()
    assert len(g) == 4000
    assert GAIA_STAR_G[0] <= g.min() < 11.5 and 20.9 < g.max() <= GAIA_STAR_G[1]
    counts, edges = np.histogram(g, bins=np.arange(12.0, 21.01, 1.0))
    slope = np.polyfit(0.5 * (edges[1:] + edges[:-1]), np.log10(counts), 1)[0]
    assert slope == pytest.approx(0.25, abs=0.03)


def test_bright_stars_are_catalogued_stars_with_gaia_ids_and_clearance(medium):
    params, _, sources = medium
    bright = sources[sources["role"] == "bright_star"]
    assert len(bright) == 120
    assert (bright["TYPE"] == "STAR").all() and bright["in_catalog"].all()
    in_gaia = bright["phot_g_mean_mag"] <= params["gaia_g_max"]
    assert bright.loc[in_gaia, "gaia_source_id"].str.fullmatch(r"\d{19}").all()
    assert (bright.loc[~in_gaia, "gaia_source_id"] == "").all()
    assert sources["ID"].is_unique
    ids = sources.loc[sources["gaia_source_id"] != "", "gaia_source_id"]
    assert ids.is_unique
    gaia = nodes.build_sim_gaiaxp(sources, params)
    assert set(bright.loc[in_gaia, "gaia_source_id"]) <= set(gaia["source_id"])
    xy = sources[["x_pix", "y_pix"]].to_numpy()
    for i in np.flatnonzero((sources["role"] == "bright_star").to_numpy()):
        dist = np.hypot(*(xy - xy[i]).T)
        assert np.sort(dist)[1] >= CLEARANCE_PIX["bright_star"]


def test_adding_bright_stars_leaves_the_other_sources_in_place(small_params):
    _, with_stars = _scene(small_params)
    _, without = _scene({**small_params, "n_gaia_stars": 0})
    rest = with_stars[with_stars["role"] != "bright_star"].reset_index(drop=True)
    pd.testing.assert_frame_equal(rest, without)
    assert (with_stars["role"].iloc[len(without) :] == "bright_star").all()


def test_medium_field_has_hundreds_of_high_snr_star_bands(medium):
    params, bands, sources = medium
    snr = _star_band_snr(bands, sources, params["zp_ref"])
    useful = snr["snr"].between(100, 3000)
    assert useful.sum() >= 600
    bright = snr[snr["role"] == "bright_star"]
    assert bright["snr"].between(100, 3000).sum() >= 80
    assert bright["snr"].between(300, 3000).sum() >= 10
    assert (bright["snr"] < 20).sum() > 300  # most Gaia-like stars are faint


def test_only_a_few_bright_stars_saturate(medium):
    params, bands, sources = medium
    truth = nodes.build_sim_truth(sources, bands, params)
    saturated = truth[truth["saturated_bands"] != ""]
    assert set(saturated["role"]) <= {"saturated_star", "bright_star"}
    assert (saturated["role"] == "bright_star").sum() <= 3
