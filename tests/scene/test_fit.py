"""Fit behaviour: recovery at high S/N, modes, stages, masks, bounds, flags."""

from __future__ import annotations

import galsim
import numpy as np
import pytest
from _galsim_helpers import draw, galsim_mixture

from phot7dt import scene

SHAPE = (64, 64)
SIGMA = 1.0


@pytest.fixture(scope="module")
def galaxy_scene(galsim_psf):
    """Sersic(2.5) galaxy + star, 3 bands, high S/N, GalSim-rendered."""
    gal = np.array([30.4, 33.7, *scene.catalog_to_soft(4.0, 0.45, 35.0), 2.5])
    star = (44.6, 16.2)
    fluxes = np.array([[8000.0, 6000.0, 7000.0], [5000.0, 5500.0, 4000.0]])
    imgs = []
    for b in range(3):
        g = galsim_mixture("SERSIC", *gal[2:5], gal[5], flux=fluxes[0, b])
        img = draw(galsim.Convolve(g, galsim_psf), SHAPE, gal[0], gal[1])
        img += draw(
            galsim.Convolve(galsim.DeltaFunction(flux=fluxes[1, b]), galsim_psf), SHAPE, *star
        )
        imgs.append(img)
    noise = np.random.default_rng(5).normal(0, SIGMA, (3,) + SHAPE)
    src = {
        "x": [gal[0] + 0.8, star[0] - 0.6],
        "y": [gal[1] - 0.7, star[1] + 0.5],
        "type": ["SERSIC", "STAR"],
        "re_pix": [3.0, np.nan],
        "ell": [0.2, np.nan],
        "theta_deg": [10.0, np.nan],
        "sersic_n": [1.5, np.nan],
    }
    return gal, star, fluxes, np.array(imgs) + noise, src


def test_recovers_position_and_shape_within_errors(galaxy_scene, epsf):
    gal, star, fluxes, imgs, src = galaxy_scene
    res = scene.fit_patch(imgs, np.full(imgs.shape, SIGMA**-2), [epsf] * 3, src)
    assert res.converged.all() and res.flags.tolist() == [0, 0]
    truth = np.array([gal, [star[0], star[1], 0, 0, 0, 0]])
    pulls = (res.params[0] - truth) / res.params_err[0]
    assert np.all(np.abs(pulls[0]) < 4.0), pulls[0]
    assert np.all(np.abs(pulls[1, :2]) < 4.0), pulls[1]
    assert np.all(np.abs(res.flux - fluxes) < 4.0 * res.flux_err_marginal)
    cols = res.shape_columns()
    assert abs(cols["THETA_fit"][0] - 35.0) < 3.0 and abs(cols["ELL_fit"][0] - 0.45) < 0.03
    assert np.isnan(cols["re_pix_fit"][1])
    resid = res.residuals(imgs)
    assert abs(np.mean(resid**2) - 1.0) < 0.05  # no visible truncation / misfit


def test_single_band_mode_gives_per_band_positions(galaxy_scene, epsf):
    gal, star, fluxes, imgs, src = galaxy_scene
    res = scene.fit_patch(
        imgs,
        np.full(imgs.shape, SIGMA**-2),
        [epsf] * 3,
        src,
        {"enable_multi_band_simultaneous_fitting": False},
    )
    assert res.x.shape == (2, 3) and len(res.stages) == 3
    assert np.all(np.abs(res.x[1] - star[0]) < 5 * res.x_err[1])
    assert np.all(np.abs(res.flux - fluxes) < 5 * res.flux_err_marginal)


def test_single_band_mode_is_each_band_fitted_alone(galaxy_scene, epsf):
    *_, imgs, src = galaxy_scene
    imgs = imgs.copy()
    imgs[1, 20:24, 5:9] = np.nan  # non-finite pixels in band 1 only
    iv = np.full(imgs.shape, SIGMA**-2)
    single = {"enable_multi_band_simultaneous_fitting": False}
    res = scene.fit_patch(imgs, iv, [epsf] * 3, src, single)
    parts = res.fits()
    assert len(parts) == 3
    (multi,) = scene.fit_patch(imgs, iv, [epsf] * 3, src).fits()
    assert multi.flux.shape == (2, 3)
    for b, part in enumerate(parts):
        alone = scene.fit_patch(imgs[b : b + 1], iv[b : b + 1], [epsf], src)
        np.testing.assert_array_equal(part.params, alone.params)
        np.testing.assert_array_equal(part.flux, alone.flux)
        np.testing.assert_array_equal(part.flux_err, res.flux_err[:, b : b + 1])
        assert part.flags.tolist() == alone.flags.tolist() and part.stages == alone.stages
    assert [p.n_bad_pixels for p in parts] == [0, 16, 0] and res.n_bad_pixels == 16
    # a forced refit may place each band's sources at that band's own positions
    placed = [{**src, "x": p.x, "y": p.y} for p in parts]
    forced = {**single, "fit_positions": False, "fit_shapes": False}
    again = scene.fit_patch(imgs, iv, [epsf] * 3, placed, forced).fits()
    for p, q in zip(parts, again, strict=True):
        np.testing.assert_array_equal(p.params[0, :, :2], q.params[0, :, :2])
    with pytest.raises(ValueError, match="2 per-band tables for 3 bands"):
        scene.fit_patch(imgs, iv, [epsf] * 3, placed[:2], forced)


def test_unstaged_fit_agrees_with_staged(galaxy_scene, epsf):
    *_, imgs, src = galaxy_scene
    iv = np.full(imgs.shape, SIGMA**-2)
    a = scene.fit_patch(imgs, iv, [epsf] * 3, src)
    b = scene.fit_patch(imgs, iv, [epsf] * 3, src, {"enable_staged_fit": False})
    assert [s.name for s in a.stages[0]] == ["positions", "all"]
    assert [s.name for s in b.stages[0]] == ["all"]
    assert np.allclose(a.params, b.params, atol=0.05 * np.nan_to_num(a.params_err, nan=1.0))


def test_nonfinite_pixels_never_abort(galaxy_scene, epsf):
    *_, imgs, src = galaxy_scene
    imgs = imgs.copy()
    iv = np.full(imgs.shape, SIGMA**-2)
    imgs[:, :, 31] = np.nan  # a NaN column through the galaxy
    iv[1, 10, :] = np.inf
    res = scene.fit_patch(imgs, iv, [epsf] * 3, src)
    assert res.n_bad_pixels == 3 * 64 + 64 - 1  # one pixel is in both
    assert np.all(np.isfinite(res.flux)) and res.converged.all()


def test_fully_masked_source_is_flagged(epsf):
    img = np.zeros((2,) + SHAPE)
    iv = np.ones_like(img)
    iv[1] = 0.0  # band 1 entirely masked
    res = scene.fit_patch(img, iv, [epsf] * 2, {"x": [32.0], "y": [32.0]}, {"fit_positions": False})
    assert "no_data" in res.flag_names(0) and np.isnan(res.flux[0, 1])
    assert np.isfinite(res.flux[0, 0])


def test_runaway_radius_hits_bound_and_is_flagged(epsf):
    rng = np.random.default_rng(2)
    img = draw(
        galsim.Convolve(
            galsim.Exponential(half_light_radius=14.0, flux=4e4), galsim.Gaussian(sigma=1.7)
        ),
        SHAPE,
        32.0,
        32.0,
    )[None]
    img = img + rng.normal(0, 1.0, img.shape)
    res = scene.fit_patch(
        img,
        np.ones_like(img),
        [epsf],
        {"x": [32.0], "y": [32.0], "type": ["EXP"], "re_pix": [3.0]},
        {"re_max_pix": 6.0},
    )
    assert "re_at_bound" in res.flag_names(0)
    assert res.shape_columns()["re_pix_fit"][0] == pytest.approx(6.0)


def test_position_box_bound(epsf, galsim_psf):
    img = draw(galsim.Convolve(galsim.DeltaFunction(flux=5e3), galsim_psf), SHAPE, 35.0, 32.0)[None]
    res = scene.fit_patch(
        img, np.ones_like(img), [epsf], {"x": [32.0], "y": [32.0]}, {"pos_max_shift_pix": 1.5}
    )
    assert res.x[0] == pytest.approx(33.5) and "pos_at_bound" in res.flag_names(0)


def test_flux_prior_and_negative_flux(epsf):
    img = np.zeros((1,) + SHAPE)
    iv = np.full_like(img, 1.0)
    src = {"x": [32.0], "y": [32.0], "flux": [[-50.0]], "flux_err": [[1e-3]]}
    res = scene.fit_patch(img, iv, [epsf], src, {"fit_positions": False})
    assert res.flux[0, 0] == pytest.approx(
        -50.0, abs=1e-3
    )  # negative fluxes allowed; tight prior wins
    free = scene.fit_patch(
        img - 0.3, iv, [epsf], {"x": [32.0], "y": [32.0]}, {"fit_positions": False}
    )
    assert free.flux[0, 0] < 0


def test_deterministic(galaxy_scene, epsf):
    *_, imgs, src = galaxy_scene
    iv = np.full(imgs.shape, SIGMA**-2)
    a = scene.fit_patch(imgs, iv, [epsf] * 3, src)
    b = scene.fit_patch(imgs, iv, [epsf] * 3, src)
    assert np.array_equal(a.params, b.params) and np.array_equal(a.flux, b.flux)


def test_core_box_cross_terms_reach_the_same_optimum(galaxy_scene, epsf):
    *_, imgs, src = galaxy_scene
    iv = np.full(imgs.shape, SIGMA**-2)
    exact = scene.fit_patch(imgs, iv, [epsf] * 3, src)
    cut = scene.fit_patch(imgs, iv, [epsf] * 3, src, {"cross_trunc_frac": 0.5})
    err = np.nan_to_num(exact.params_err, nan=1.0)
    assert np.all(np.abs(cut.params - exact.params) < 0.1 * err)
    assert np.all(np.abs(cut.flux - exact.flux) < 0.05 * exact.flux_err)


def test_single_band_columns_use_per_band_names(galaxy_scene, epsf):
    *_, imgs, src = galaxy_scene
    res = scene.fit_patch(
        imgs[:2],
        np.ones(imgs[:2].shape),
        [epsf] * 2,
        src,
        {"enable_multi_band_simultaneous_fitting": False},
    )
    cols = res.columns(["m400", "m425"])
    assert {
        "x_pix_patch_m400_fit",
        "THETA_m425_fit",
        "re_pix_m400_fit",
        "sersic_n_m425_fit",
        "FLUX_m425_fit",
    } <= set(cols)
    assert all(np.shape(v) == (2,) for v in cols.values())


def test_sources_centred_outside_the_patch_are_fitted():
    psf = scene.MoffatPSF(4.0)
    truth = np.array([[-6.0, 20.0, 0, 0, 0, 1], [20.3, 41.5, np.log(3.0), 0.1, 0.0, 1.0]])
    flux = np.array([[1e4], [5e3]])
    model = scene.render_model((40, 40), [psf], ["STAR", "EXP"], truth, flux)
    img = model + np.random.default_rng(0).normal(0, 1, model.shape)
    res = scene.fit_patch(
        img.astype(np.float32),
        np.ones(img.shape, np.float32),
        [psf],
        {"x": [-6.0, 20.0], "y": [20.0, 41.0], "type": ["STAR", "EXP"]},
    )
    assert res.converged.all()
    assert np.sum(res.residuals(img) ** 2) <= np.sum(
        (img - model) ** 2
    )  # at least as good as truth
    assert np.all(np.abs(res.flux - flux) < 4 * res.flux_err_marginal)


def _bright_and_faint(galsim_psf):
    """One band: a bright EXP galaxy and a faint one 55 px away (separate groups), unit noise."""
    rng = np.random.default_rng(4)
    bright = galsim_mixture("EXP", *scene.catalog_to_soft(3.0, 0.3, 20.0), 1.0, flux=2e4)
    faint = galsim_mixture("EXP", *scene.catalog_to_soft(3.0, 0.3, 20.0), 1.0, flux=60.0)
    img = draw(galsim.Convolve(bright, galsim_psf), (64, 96), 20.3, 30.6)
    img += draw(galsim.Convolve(faint, galsim_psf), (64, 96), 75.2, 33.1)
    img = img[None] + rng.normal(0, 1.0, (1, 64, 96))
    src = {
        "x": [20.0, 75.0],
        "y": [31.0, 33.0],
        "type": ["EXP", "EXP"],
        "re_pix": [2.5, 2.5],
        "ell": [0.1, 0.1],
        "theta_deg": [0.0, 0.0],
    }
    return img, src


def test_groups_iterate_independently_and_faint_shapes_are_frozen(epsf, galsim_psf):
    """A bright galaxy and a faint one far apart: own iteration counts; the faint shape stays."""
    img, src = _bright_and_faint(galsim_psf)
    res = scene.fit_patch(img, np.ones_like(img), [epsf], src)
    assert res.converged.all()
    assert "shape_unconstrained" in res.flag_names(
        1
    ) and "shape_unconstrained" not in res.flag_names(0)
    assert res.shape_columns()["re_pix_fit"][1] == pytest.approx(2.5)
    assert np.isnan(res.params_err[0, 1, 2]) and np.isfinite(res.params_err[0, 1, 0])
    cols = res.columns()
    assert cols["opt_niters"].shape == (2,) and cols["opt_niters"][0] > cols["opt_niters"][1]


def test_faint_group_beside_a_bright_one_gets_the_patch_lnp_tolerance(epsf, galsim_psf):
    """A group's ln P also counts the unmodelled light of other groups; its tolerance must not."""
    img, src = _bright_and_faint(galsim_psf)
    res = scene.fit_patch(img, np.ones_like(img), [epsf], src, {"step_tol_sigma": 0.3})
    assert (
        res.converged.all()
    )  # (with the group's own |ln P| the polish passed it again: never converged)


@pytest.mark.parametrize("mode", ["positions", "fluxes"])
def test_neighbour_fit_limits_what_non_targets_fit(galaxy_scene, epsf, mode):
    """A non-target keeps its catalog shape (and position with "fluxes"); the target is fitted."""
    gal, star, fluxes, imgs, src = galaxy_scene
    iv = np.full(imgs.shape, SIGMA**-2)
    full = scene.fit_patch(imgs, iv, [epsf] * 3, dict(src, target=[False, True]))
    res = scene.fit_patch(
        imgs, iv, [epsf] * 3, dict(src, target=[False, True]), {"neighbour_fit": mode}
    )
    cols = res.shape_columns()
    assert cols["re_pix_fit"][0] == pytest.approx(3.0) and cols["ELL_fit"][0] == pytest.approx(0.2)
    assert cols["sersic_n_fit"][0] == pytest.approx(1.5)
    moved = np.abs(res.params[0][0, :2] - [src["x"][0], src["y"][0]])
    assert np.all(moved > 0.1) if mode == "positions" else np.all(moved == 0)
    fixed = slice(2 if mode == "positions" else 0, None)  # fixed parameters have no error
    assert (
        np.isnan(res.params_err[0][0, fixed]).all()
        and np.isfinite(full.params_err[0][0, fixed]).all()
    )
    assert res.converged[1]
    assert np.all(np.abs(res.flux[1] - full.flux[1]) < 0.5 * full.flux_err_marginal[1])
    assert np.all(np.abs(res.flux[1] - fluxes[1]) < 4 * res.flux_err_marginal[1])
    assert np.all(np.abs(res.params[0][1, :2] - star) < 4 * res.params_err[0][1, :2])


def test_non_targets_never_drive_the_fit(galaxy_scene, galsim_psf, epsf):
    """A non-target with no shared pixel keeps its catalog position; a blended one stays close
    to a full fit."""
    gal, star, fluxes, imgs, src = galaxy_scene
    iv = np.full(imgs.shape, SIGMA**-2)
    both = scene.fit_patch(imgs, iv, [epsf] * 3, src)
    star_off = scene.fit_patch(imgs, iv, [epsf] * 3, dict(src, target=[True, False]))
    assert star_off.converged[0]
    assert np.all(np.abs(star_off.params[0][0] - both.params[0][0]) < 0.3 * both.params_err[0][0])
    assert np.all(np.abs(star_off.flux[0] - both.flux[0]) < 0.3 * both.flux_err_marginal[0])

    far = np.zeros((1, 64, 200))
    far[0, :, :64] = imgs[0]
    far[0] += draw(
        galsim.Convolve(galsim.DeltaFunction(flux=3000.0), galsim_psf), far.shape[1:], 170.3, 30.6
    )
    far[0, :, 64:] += np.random.default_rng(8).normal(0, SIGMA, (64, 136))
    cat = {k: [*v, v[1]] for k, v in src.items()}
    cat["x"][2], cat["y"][2] = 170.8, 30.2
    res = scene.fit_patch(
        far, np.full(far.shape, SIGMA**-2), [epsf], dict(cat, target=[True, True, False])
    )
    assert res.params[0][2, 0] == 170.8 and res.params[0][2, 1] == 30.2  # never iterated
    assert (
        np.isfinite(res.flux[2, 0])
        and abs(res.params[0][1, 0] - star[0]) < 4 * res.params_err[0][1, 0]
    )


@pytest.mark.parametrize("factor", [3.0, 10.0])
def test_a_galaxy_growing_past_the_runaway_factor_keeps_its_catalog_shape(factor):
    """True r_e is 4x the catalog's: factor 3 resets it (flagged), factor 10 finds it."""
    psf = scene.MoffatPSF(3.5)
    truth = np.array([[32.2, 31.7, np.log(6.0), 0.1, -0.05, 1.0]])
    flux = np.array([[3e4, 2e4]])
    model = scene.render_model((64, 64), [psf] * 2, ["EXP"], truth, flux)
    img = model + np.random.default_rng(8).normal(0, 1, model.shape)
    src = {
        "x": [32.0],
        "y": [32.0],
        "type": ["EXP"],
        "re_pix": [1.5],
        "ell": [0.1],
        "theta_deg": [0.0],
    }
    res = scene.fit_patch(img, np.ones_like(img), [psf] * 2, src, {"re_runaway_factor": factor})
    re_fit = np.exp(res.params[0, 0, 2])
    assert res.converged.all()
    if factor == 3.0:
        assert "re_runaway" in res.flag_names(0)
        assert re_fit == pytest.approx(1.5)
        assert np.isnan(res.params_err[0, 0, 2:5]).all()  # the shape is fixed, not fitted
    else:
        assert "re_runaway" not in res.flag_names(0)
        assert abs(re_fit - 6.0) < 4 * 6.0 * res.params_err[0, 0, 2]
        assert np.all(np.abs(res.flux - flux) < 4 * res.flux_err_marginal)
