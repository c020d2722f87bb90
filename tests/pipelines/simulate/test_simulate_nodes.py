"""Node tests of the simulate pipeline: determinism, headers, truth versus pixels, tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.wcs import WCS

from phot7dt.config import ParameterError
from phot7dt.config.simulate import MEDIUM_BAND_WAVELENGTHS_NM, SimulateParams
from phot7dt.pipelines.simulate import nodes
from phot7dt.pipelines.simulate.sky import adu_per_scaled_flux, moffat_fwhm_at


def _scene(params: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    bands = nodes.draw_sim_bands(params)
    return bands, nodes.draw_sim_sources(bands, params)


def test_band_names_are_7dt_medium_bands():
    names = list(MEDIUM_BAND_WAVELENGTHS_NM)
    assert names[:5] == ["m400", "m412", "m425", "m437", "m450"]
    assert names[-1] == "m887" and len(names) == 40


def test_same_seed_same_field_other_seed_differs(small_params):
    bands_a, sources_a = _scene(small_params)
    bands_b, sources_b = _scene(small_params)
    pd.testing.assert_frame_equal(bands_a, bands_b)
    pd.testing.assert_frame_equal(sources_a, sources_b)
    images = nodes.simulate_field(sources_a, bands_a, small_params)
    first = images["m475"][0]
    np.testing.assert_array_equal(
        first, nodes.simulate_field(sources_b, bands_b, small_params)["m475"][0]
    )
    _, other = _scene({**small_params, "seed": 12})
    assert not np.allclose(other["x_pix"].to_numpy()[:10], sources_a["x_pix"].to_numpy()[:10])


def test_preset_counts_and_overrides(small_params):
    _, sources = _scene(small_params)
    roles = sources["role"].value_counts()
    assert 45 <= len(sources) <= 55
    assert roles["psf_star"] >= 12 and roles["saturated_star"] == 1
    assert roles["bright_star"] == 10
    assert roles["blend"] == 4 and roles["unlisted"] == 2
    layout = SimulateParams(preset="medium", n_galaxies=5, bands=["m412"]).layout()
    assert (layout.width, layout.n_galaxies, layout.bands) == (1200, 5, ["m412"])
    with pytest.raises(ParameterError, match="simulate.bands"):
        nodes.draw_sim_bands({**small_params, "bands": ["m401"]})


def test_sources_avoid_the_edges_and_blends_are_close(small_params):
    _, sources = _scene(small_params)
    margin = small_params["edge_margin_pix"]
    assert sources["x_pix"].between(margin, 399 - margin).all()
    assert sources["y_pix"].between(margin, 399 - margin).all()
    blends = sources[sources["role"] == "blend"].set_index("ID")
    for source_id, row in blends.iterrows():
        partner = blends.loc[row["blend_partner"]]
        assert (
            2.0 <= np.hypot(row["x_pix"] - partner["x_pix"], row["y_pix"] - partner["y_pix"]) <= 6.0
        )
        assert partner["blend_partner"] == source_id


def test_headers_hold_the_7dt_keys_and_a_shared_tan_wcs(small_params):
    bands, sources = _scene(small_params)
    images = nodes.simulate_field(sources, bands, small_params)
    wcs0 = None
    for band, (pixels, header) in images.items():
        assert pixels.dtype == np.float32 and pixels.shape == (400, 400)
        assert header["FILTER"] == band
        row = bands.set_index("band").loc[band]
        assert (
            header["ZP_AUTO"] == row["zp_auto"]
            and 0.02 <= abs(row["zp_auto"] - row["zp_true"]) <= 0.06
        )
        assert header["SKYSIG"] > 0 and header["EGAIN"] > 0 and header["SATURATE"] == 60000.0
        assert header["SEEING"] == pytest.approx(header["PEEING"] * 0.505, abs=1e-4)
        assert "CD1_1" in header and "PC1_1" not in header
        wcs = WCS(header)
        assert wcs.wcs.ctype[0] == "RA---TAN"
        assert np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600 == pytest.approx(0.505)
        wcs0 = wcs0 or wcs
        np.testing.assert_allclose(
            wcs.wcs_pix2world([[10, 20]], 0), wcs0.wcs_pix2world([[10, 20]], 0)
        )
        assert 0 < np.isnan(pixels).sum() < 400
        assert np.nanstd(pixels[:40, :40]) == pytest.approx(row["skysig"], rel=0.15)


def test_noiseless_star_sums_equal_truth_flux(isolated_stars_params):
    bands, sources = _scene(isolated_stars_params)
    images = nodes.simulate_field(sources, bands, isolated_stars_params)
    assert len(sources) == 9
    for _, band in bands.iterrows():
        pixels = images[band["band"]][0]
        adu = sources[f"FLUX_{band['band']}"] * adu_per_scaled_flux(
            band, isolated_stars_params["zp_ref"]
        )
        for (_, star), flux in zip(sources.iterrows(), adu, strict=True):
            x, y = int(round(star["x_pix"])), int(round(star["y_pix"]))
            total = pixels[y - 40 : y + 41, x - 40 : x + 41].astype(float).sum()
            assert total == pytest.approx(flux, rel=1e-3)


def test_star_centroid_matches_truth_position(isolated_stars_params):
    bands, sources = _scene(isolated_stars_params)
    pixels = nodes.simulate_field(sources, bands, isolated_stars_params)["m550"][0]
    star = sources.iloc[4]
    x, y = int(round(star["x_pix"])), int(round(star["y_pix"]))
    box = pixels[y - 30 : y + 31, x - 30 : x + 31].astype(float)
    yy, xx = np.mgrid[-30:31, -30:31]
    assert (box * xx).sum() / box.sum() + x == pytest.approx(star["x_pix"], abs=0.01)
    assert (box * yy).sum() / box.sum() + y == pytest.approx(star["y_pix"], abs=0.01)


def test_psf_fwhm_varies_by_band_and_slowly_across_the_field(small_params):
    bands = nodes.draw_sim_bands(small_params)
    assert bands["fwhm_pix"].iloc[0] > bands["fwhm_pix"].iloc[-1]  # broader in the blue
    assert bands["fwhm_pix"].between(3.0, 4.2).all()
    for _, band in bands.iterrows():
        assert moffat_fwhm_at(band, band["psf_xc"], band["psf_yc"]) == band["fwhm_pix"]
        corners = moffat_fwhm_at(band, np.array([0, 399, 0, 399]), np.array([0, 0, 399, 399]))
        assert np.all(np.abs(corners / band["fwhm_pix"] - 1) < 0.08)


def test_truth_zero_point_relation_is_exact(small_params):
    bands, sources = _scene(small_params)
    truth = nodes.build_sim_truth(sources, bands, small_params)
    for _, band in bands.iterrows():
        b = band["band"]
        zp = truth[f"mag_{b}"] + 2.5 * np.log10(truth[f"FLUX_{b}"])
        expected = small_params["zp_ref"] + band["zp_true"] - band["zp_auto"]
        np.testing.assert_allclose(zp, expected, atol=1e-9)


def test_truth_marks_the_saturated_star_and_only_it(small_params):
    bands, sources = _scene(small_params)
    truth = nodes.build_sim_truth(sources, bands, small_params)
    saturated = truth[truth["saturated_bands"] != ""]
    # The brightest Gaia-like stars may saturate too; nothing else does.
    assert set(saturated["role"]) <= {"saturated_star", "bright_star"}
    saturated = saturated[saturated["role"] == "saturated_star"]
    assert len(saturated) == 1
    assert saturated["saturated_bands"].iloc[0] == ",".join(bands["band"])
    star = saturated.iloc[0]
    pixels = nodes.simulate_field(sources, bands, small_params)["m400"][0]
    x, y = int(round(star["x_pix"])), int(round(star["y_pix"]))
    assert np.nanmax(pixels[y - 3 : y + 4, x - 3 : x + 4]) == 60000.0
    assert np.nanmax(pixels) == 60000.0


def test_catalog_is_perturbed_tract7dt_input(small_params):
    params = {**small_params, "catalog_untyped_fraction": 1.0}
    bands, sources = _scene(params)
    cat = nodes.build_sim_catalog(sources, params)
    listed = sources[sources["in_catalog"]].set_index("ID")
    assert sorted(cat["ID"]) == sorted(listed.index) and cat["ID"].is_unique
    assert cat["ID"].str.startswith("0").any()
    assert {"RA", "DEC", "TYPE", "ELL", "THETA", "Re", "SERSIC_n", "POS_ERR", "Re_ERR"} <= set(cat)
    assert set(cat["TYPE"]) <= {"STAR", "", "GAL"}  # every galaxy untyped here
    true = listed.loc[cat["ID"]]
    wcs = WCS(nodes.simulate_field(sources, bands, params)["m400"][1])
    x, y = wcs.all_world2pix(cat["RA"], cat["DEC"], 0)
    offsets = np.hypot(x - true["x_pix"].to_numpy(), y - true["y_pix"].to_numpy())
    assert 0.15 < np.median(offsets) < 0.6
    ratio = np.log(cat["FLUX_m550"].to_numpy() / true["FLUX_m550"].to_numpy())
    assert 0.05 < np.std(ratio) < 0.3
    stars = cat["TYPE"] == "STAR"
    assert cat.loc[stars, ["ELL", "THETA", "Re"]].isna().all().all()
    assert cat.loc[~stars, "THETA"].between(-90, 90).all()


def test_gaiaxp_lists_bright_stars_including_unlisted_ones(small_params):
    bands, sources = _scene(small_params)
    gaia = nodes.build_sim_gaiaxp(sources, small_params)
    expected = ["source_id", "ra", "dec", "phot_g_mean_mag"] + [f"mag_{b}" for b in bands["band"]]
    assert list(gaia.columns) == expected
    assert gaia["source_id"].str.fullmatch(r"\d{19}").all() and gaia["source_id"].is_unique
    assert (gaia["phot_g_mean_mag"] <= small_params["gaia_g_max"] + 0.02).all()
    truth = sources.set_index("gaia_source_id").loc[gaia["source_id"]]
    assert (truth["TYPE"] == "STAR").all()
    assert (~truth["in_catalog"]).sum() >= 1
    np.testing.assert_allclose(gaia["mag_m550"], truth["mag_m550"], atol=0.06)
    np.testing.assert_allclose(gaia["ra"], truth["RA"])
