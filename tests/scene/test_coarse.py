"""The coarse pass: coadds of bands of similar PSF, and the all-band fit that starts from it."""

from __future__ import annotations

import numpy as np
import pytest

from phot7dt import scene
from phot7dt.scene._coarse import BlendedPSF, binned_patch, psf_bins
from phot7dt.scene.sources import SourceTable

SHAPE = (64, 64)
KINDS = ["STAR", "STAR", "EXP"]
TRUTH = np.array(
    [
        [28.3, 30.6, 0.0, 0.0, 0.0, 2.0],
        [31.4, 31.9, 0.0, 0.0, 0.0, 2.0],  # 3.3 px from the first star
        [44.2, 45.7, *scene.catalog_to_soft(3.0, 0.3, 25.0), 1.0],
    ]
)
CATALOG = {
    "x": TRUTH[:, 0] + [0.4, -0.3, 0.3],
    "y": TRUTH[:, 1] + [-0.3, 0.4, -0.4],
    "type": KINDS,
    "re_pix": [np.nan, np.nan, 2.5],
    "ell": [np.nan, np.nan, 0.2],
    "theta_deg": [np.nan, np.nan, 0.0],
}


def _psfs(fwhms):
    return [scene.PixelizedPSF(scene.MoffatPSF(f, radius=18).stamp) for f in fwhms]


def _scene(n_band, seed, sky=2.0):
    """Bands with PSF widths in random order and fluxes varying +-30 % between bands."""
    rng = np.random.default_rng(seed)
    psfs = _psfs(rng.uniform(3.2, 4.6, n_band))
    fluxes = rng.uniform(1500.0, 3000.0, (len(KINDS), 1)) * rng.uniform(
        0.7, 1.3, (len(KINDS), n_band)
    )
    truth = scene.render_model(SHAPE, psfs, KINDS, TRUTH, fluxes)
    invvar = np.full(truth.shape, sky**-2)
    return truth, invvar, psfs, fluxes


def test_blended_psf_renders_the_weighted_mean_of_its_members():
    psfs = _psfs([3.0, 4.5])
    blend = BlendedPSF(psfs, [1.0, 3.0])
    fluxes = np.array([[1000.0], [400.0], [700.0]])
    got = scene.render_model(SHAPE, [blend], KINDS, TRUTH, fluxes)[0]
    each = [scene.render_model(SHAPE, [p], KINDS, TRUTH, fluxes)[0] for p in psfs]
    assert np.allclose(got, 0.25 * each[0] + 0.75 * each[1], rtol=0, atol=1e-9 * fluxes.max())
    assert np.isclose(
        got.sum(), fluxes.sum(), rtol=1e-3
    )  # unit sum (a little galaxy light leaves the image)
    thr = np.array([1e-3, 1e-5])
    assert np.all(blend.wing_radius(thr) >= np.max([p.wing_radius(thr) for p in psfs], axis=0))


def test_psf_bins_group_bands_of_similar_width_and_skip_bands_without_data():
    fwhm = np.array([4.4, 3.2, 4.0, 3.3, 4.5, 3.1, 3.9, 4.1, 3.6])
    sigma = np.ones(fwhm.size)
    sigma[8] = np.inf
    bins = psf_bins(_psfs(fwhm), sigma, 4)
    assert sorted(np.concatenate(bins).tolist()) == list(range(8))
    assert [sorted(fwhm[b].tolist()) for b in bins] == [
        [3.1, 3.2],
        [3.3, 3.9],
        [4.0, 4.1],
        [4.4, 4.5],
    ]


def test_coadd_of_a_bin_is_modelled_by_one_psf_and_the_mean_flux():
    """Bands of identical PSF but different fluxes and noise: the coadd is exactly one model."""
    n_band = 6
    psfs = _psfs([3.4] * 3 + [4.2] * 3)
    rng = np.random.default_rng(1)
    fluxes = rng.uniform(500.0, 3000.0, (len(KINDS), n_band))
    images = scene.render_model(SHAPE, psfs, KINDS, TRUTH, fluxes)
    sky = np.array([1.0, 2.0, 1.5, 1.0, 3.0, 2.0])
    invvar = np.broadcast_to(sky[:, None, None] ** -2, images.shape).copy()
    invvar[1, 10, 12] = 0.0  # a masked pixel
    images[1, 10, 12] = np.nan
    table = SourceTable({**CATALOG, "flux": fluxes}, n_band)
    gain = np.array([2.0, 1.0, 4.0, 2.0, 2.0, 2.0])
    img, iv, bpsfs, btable, bgain, bins = binned_patch(images, invvar, psfs, table, sky, 2, gain)
    assert [b.tolist() for b in bins] == [[0, 1, 2], [3, 4, 5]]
    for k, bands in enumerate(bins):
        w = sky[bands] ** -2
        mean_flux = fluxes[:, bands] @ w / w.sum()
        assert np.allclose(btable.flux[:, k], mean_flux)
        model = scene.render_model(SHAPE, [bpsfs[k]], KINDS, TRUTH, mean_flux[:, None])[0]
        keep = iv[k] > 0
        assert np.allclose(img[k][keep], model[keep], rtol=0, atol=1e-9 * fluxes.max())
        assert np.allclose(iv[k][keep], w.sum())
        assert np.isclose(
            bgain[k], w.sum() ** 2 / np.sum(w**2 / gain[bands])
        )  # var(mean) = model / gain
    assert (
        iv[0, 10, 12] == 0 and iv[1, 10, 12] > 0
    )  # a pixel missing in one band leaves its bin only


def test_coarse_pass_reaches_the_all_band_optimum():
    truth, invvar, psfs, _ = _scene(16, seed=5)
    images = truth + np.random.default_rng(6).normal(0.0, 2.0, truth.shape)
    direct = scene.fit_patch(images, invvar, psfs, CATALOG, {"coarse_bands": 0})
    coarse = scene.fit_patch(images, invvar, psfs, CATALOG, {"coarse_bands": 4})
    assert [s.name for s in coarse.stages[0]][:3] == ["coarse_positions", "coarse_all", "all"]
    assert [s.name for s in direct.stages[0]][:2] == ["positions", "all"]
    assert direct.converged.all() and coarse.converged.all()
    err = np.nan_to_num(direct.params_err, nan=1.0)
    assert np.all(np.abs(coarse.params - direct.params) <= 0.25 * err)
    assert np.all(np.abs(coarse.flux - direct.flux) <= 0.1 * direct.flux_err_marginal)


def test_coarse_pass_is_skipped_with_few_bands():
    truth, invvar, psfs, _ = _scene(7, seed=2)
    res = scene.fit_patch(truth, invvar, psfs, CATALOG, {"coarse_bands": 4})
    assert not any(s.name.startswith("coarse_") for s in res.stages[0])


def test_non_targets_keep_their_coarse_fit():
    truth, invvar, psfs, _ = _scene(16, seed=7)
    images = truth + np.random.default_rng(8).normal(0.0, 2.0, truth.shape)
    everyone = scene.fit_patch(images, invvar, psfs, CATALOG)
    halo = scene.fit_patch(images, invvar, psfs, {**CATALOG, "target": [True, True, False]})
    assert np.all(np.isnan(halo.params_err[0, 2]))  # not free in the all-band fit ...
    catalog_xy = np.array([CATALOG["x"][2], CATALOG["y"][2]])
    assert np.any(
        np.abs(halo.params[0, 2, :2] - catalog_xy) > 0.05
    )  # ... but fitted in the coarse pass
    assert np.all(np.abs(halo.params[0, 2, :2] - TRUTH[2, :2]) < 4 * everyone.params_err[0, 2, :2])
    err = everyone.params_err[0, :2, :2]
    assert np.all(np.abs(halo.params[0, :2, :2] - everyone.params[0, :2, :2]) <= 0.5 * err)


@pytest.mark.parametrize("gain", [None, 2.0])
def test_blended_pair_pulls_with_the_coarse_pass(gain):
    """Noise realisations of a 3.3 px star pair and a galaxy in 16 bands of shuffled PSF widths."""
    truth, invvar, psfs, fluxes = _scene(16, seed=3, sky=4.0)
    rng = np.random.default_rng(11 if gain is None else 12)
    pulls = []
    for _ in range(40):
        noisy = truth if gain is None else rng.poisson(np.maximum(truth, 0.0) * gain) / gain
        images = noisy + rng.normal(0.0, 4.0, truth.shape)
        res = scene.fit_patch(images, invvar, psfs, CATALOG, {"coarse_bands": 4}, gain=gain)
        assert res.converged.all()
        assert res.stages[0][0].name == "coarse_positions"
        pulls.append((res.flux - fluxes) / res.flux_err_marginal)
    pulls = np.array(pulls)
    assert 0.85 < pulls.std() < 1.15, pulls.std()
    per_real = pulls.mean(axis=2)  # (realisation, source): bands share the position error
    bias = per_real.mean(axis=0)
    assert np.all(np.abs(bias) < 3.0 * per_real.std(axis=0, ddof=1) / np.sqrt(per_real.shape[0])), (
        bias
    )
