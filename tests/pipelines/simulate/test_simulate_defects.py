"""Coadd defects: each where its truth says, only when enabled, independent, in SKYSIG units."""

from __future__ import annotations

import hashlib

import galsim
import numpy as np
import pandas as pd
import pytest

from phot7dt.config import ParameterError
from phot7dt.config.simulate import SimulateParams
from phot7dt.pipelines.simulate import nodes
from phot7dt.pipelines.simulate.artefacts import artefact_mask, border_mask
from phot7dt.pipelines.simulate.defects import SKY_COLUMNS
from phot7dt.pipelines.simulate.render import (
    add_bad_pixels,
    add_noise,
    bleed_and_clip,
    render_model,
)
from phot7dt.pipelines.simulate.sky import adu_per_scaled_flux
from phot7dt.pipelines.simulate.tile import BAND_STREAM

ALL_ON = {
    "hot_pixels": 6,
    "hot_columns": 2,
    "cosmic_rays": 12,
    "satellite_trails": 2,
}
#: sha256 (first 16 hex digits) of the images of ``_small_field()`` with the bright stars and
#: the PSF shear off, recorded with the simulator before defects existed (GalSim 2.8).
PRE_DEFECT_DIGESTS = {"m400": "545c9fb0ced6cbb8", "m700": "124c07a4bc3ed7d2"}


def _small_field(**overrides) -> dict:
    """The small preset cut to 200 x 200 px and two bands (seed 7)."""
    base = SimulateParams(preset="small", seed=7).model_dump()
    return {**base, "width": 200, "height": 200, "bands": ["m400", "m700"], **overrides}


def _render(params: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    bands = nodes.draw_sim_bands(params)
    sources = nodes.draw_sim_sources(bands, params)
    defects = nodes.draw_sim_defects(bands, params)
    images = nodes.simulate_field(sources, bands, params, defects)
    return bands, defects, {band: images[band] for band in images}


@pytest.fixture(scope="module")
def clean() -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    return _render(_small_field(noise=False))


def test_defect_free_images_are_bitwise_those_of_the_plain_renderer():
    params = _small_field(n_gaia_stars=0, psf_ellipticity_field_variation=0.0)
    bands, defects, images = _render(params)
    assert defects.empty and all(len(item) == 2 for item in images.values())
    sources = nodes.draw_sim_sources(bands, params)
    layout = SimulateParams(**params).layout()
    for index, (_, band) in enumerate(bands.iterrows()):
        pixels = images[band["band"]][0]
        if galsim.__version__.startswith("2.8"):
            digest = hashlib.sha256(pixels.tobytes()).hexdigest()[:16]
            assert digest == PRE_DEFECT_DIGESTS[band["band"]]
        # The renderer's steps composed by hand, as before defects existed.
        rng = np.random.default_rng([params["seed"], BAND_STREAM, index])
        adu = sources[f"FLUX_{band['band']}"].to_numpy() * adu_per_scaled_flux(band, 25.0)
        model, saturating = render_model(sources, adu, band, (layout.height, layout.width))
        image = add_noise(model, band, rng)
        bleed_and_clip(image, float(band["saturate"]), saturating)
        add_bad_pixels(image, params["nan_pixels"], params["nan_columns"], rng)
        assert image.tobytes() == pixels.tobytes()


def test_artefacts_appear_where_the_truth_says_and_only_there(clean):
    bands, _, plain = clean
    _, defects, images = _render(_small_field(noise=False, defects=ALL_ON))
    counts = defects.groupby(["band", "kind"]).size()
    for band in ("m400", "m700"):
        assert counts[(band, "hot_pixel")] == 6 and counts[(band, "hot_column")] == 2
        assert counts[(band, "cosmic_ray")] == 12 and counts[(band, "satellite_trail")] == 1
    for _, band in bands.iterrows():
        name, skysig = band["band"], float(band["skysig"])
        diff = images[name][0].astype(float) - plain[name][0]
        usable = np.isfinite(diff) & (plain[name][0] < band["saturate"])
        mask = artefact_mask(defects[defects["band"] == name], diff.shape, skysig)
        near_threshold = np.abs(diff - 0.5 * skysig) < 1e-3 * skysig
        compared = usable & ~near_threshold
        assert np.array_equal((diff > 0.5 * skysig)[compared], mask[compared])
        assert mask.sum() > 200  # two columns (>= 20 px each), the trail, tracks, pixels
        fixed = defects[
            (defects["band"] == name) & defects["kind"].isin(["hot_pixel", "hot_column"])
        ]
        for _, hot in fixed.iterrows():
            y, x = int(hot["y0"]), int(hot["x0"])
            if usable[y, x]:
                assert diff[y, x] >= hot["amplitude_adu"] * (1 - 1e-5)
        trail = defects[(defects["band"] == name) & (defects["kind"] == "satellite_trail")].iloc[0]
        xs = np.linspace(trail["x0"], trail["x1"], 50)
        ys = np.linspace(trail["y0"], trail["y1"], 50)
        on = np.rint(ys).astype(int), np.rint(xs).astype(int)
        assert np.median(diff[on][usable[on]]) > 0.5 * trail["amplitude_adu"]
        assert trail["width_pix"] == band["fwhm_pix"]
        assert trail["amplitude_adu"] == pytest.approx(5.0 * skysig)
        assert np.nanmax(images[name][0]) <= band["saturate"]


def test_each_defect_kind_has_its_own_random_stream(clean):
    _, defects_a, _ = _render(_small_field(noise=False, defects={"hot_pixels": 6}))
    _, defects_b, images_b = _render(_small_field(noise=False, defects=ALL_ON))
    pd.testing.assert_frame_equal(
        defects_a, defects_b[defects_b["kind"] == "hot_pixel"].reset_index(drop=True)
    )
    bands, _, plain = clean
    for _, band in bands.iterrows():
        name = band["band"]
        diff = images_b[name][0] - plain[name][0]
        # Everything but the artefacts (sources, NaN pixels) is unchanged; the trail's far
        # wings (below 5e-4 ADU) are the only other difference.
        touched = artefact_mask(defects_b[defects_b["band"] == name], diff.shape, 1e-3)
        assert np.abs(diff[~touched & np.isfinite(diff)]).max() < 1e-3
        assert np.array_equal(np.isnan(diff), np.isnan(plain[name][0]))


def test_residual_sky_is_in_skysig_units(clean):
    bands_clean, _, plain = clean
    sky = {"sky_offset_sigma": 2.0, "sky_gradient_sigma": 4.0}
    params = _small_field(noise=False, defects=sky)
    bands, defects, images = _render(params)
    assert defects.empty
    old = [c for c in bands_clean.columns if c not in SKY_COLUMNS]
    pd.testing.assert_frame_equal(bands[old], bands_clean[old])
    yy, xx = np.mgrid[:200, :200]
    for _, band in bands.iterrows():
        skysig, name = band["skysig"], band["band"]
        assert 1.0 <= abs(band["sky_offset"]) / skysig <= 2.0
        plane = (
            band["sky_offset"]
            + band["sky_grad_x"] * (xx - band["psf_xc"])
            + band["sky_grad_y"] * (yy - band["psf_yc"])
        )
        assert np.ptp(plane) == pytest.approx(4.0 * skysig, rel=1e-9)
        diff = images[name][0].astype(float) - plain[name][0]
        ok = np.isfinite(diff) & (plain[name][0] < band["saturate"])
        np.testing.assert_allclose(diff[ok], plane[ok], atol=2e-3 * skysig)
    assert not (bands[list(SKY_COLUMNS)] == 0).any().any()
    assert (bands_clean[list(SKY_COLUMNS)] == 0).all().all()


def test_nan_border_and_weight_map(clean):
    params = _small_field(noise=False, defects={"nan_border_pix": 9, "depth_map": True})
    bands, _, images = _render(params)
    _, _, plain = clean
    for _, band in bands.iterrows():
        pixels, _, weight = images[band["band"]]
        border = border_mask(band, pixels.shape)
        widths = band[["nan_left", "nan_right", "nan_bottom", "nan_top"]].astype(int)
        assert widths.between(0, 9).all() and widths.sum() > 0
        assert np.isnan(pixels[border]).all() and (weight[border] == 0).all()
        assert weight.dtype == np.float32 and weight.shape == pixels.shape
        inside = weight[~border]
        assert inside.min() >= 0.3 - 1e-7 and inside.max() == pytest.approx(1.0)
        assert np.ptp(inside) > 0.1  # depth varies across the field
        interior = ~border & np.isfinite(plain[band["band"]][0])
        # Noise off: the depth map changes no pixel value.
        np.testing.assert_array_equal(pixels[interior], plain[band["band"]][0][interior])


def test_depth_map_noise_follows_the_weights():
    empty = {k: 0 for k in ("psf_star_grid", "n_field_stars", "n_galaxies", "n_blends")}
    empty |= {"n_saturated": 0, "n_unlisted": 0, "n_gaia_stars": 0, "nan_pixels": 0}
    empty |= {"nan_columns": 0, "width": 300, "height": 300}
    bands, _, images = _render(_small_field(**empty, defects={"depth_map": True}))
    for _, band in bands.iterrows():
        pixels, header, weight = images[band["band"]]
        median = np.median(weight[weight > 0])
        pull = pixels / (header["SKYSIG"] * np.sqrt(median / weight))
        assert np.std(pull) == pytest.approx(1.0, abs=0.03)
        assert weight.min() < 0.8 * median  # shallow regions exist
        at_median = np.abs(weight / median - 1.0) < 0.02
        assert np.std(pixels[at_median]) == pytest.approx(header["SKYSIG"], rel=0.05)
        shallow = weight < 0.8 * median
        assert np.std(pixels[shallow]) > 1.05 * header["SKYSIG"]


def test_defect_parameters_are_validated():
    with pytest.raises(ParameterError, match=r"simulate\.defects\.hot_pixel: unknown key"):
        nodes.draw_sim_bands(_small_field(defects={"hot_pixel": 3}))
    with pytest.raises(ParameterError, match="cosmic_ray_sigma"):
        nodes.draw_sim_bands(_small_field(defects={"cosmic_ray_sigma": [50.0, 5.0]}))
    with pytest.raises(ParameterError, match=r"simulate\.defects\.cosmic_rays"):
        nodes.draw_sim_bands(_small_field(defects={"cosmic_rays": -1}))
    defaults = SimulateParams().defects
    assert not defaults.depth_map and defaults.hot_pixels == defaults.cosmic_rays == 0
