"""Profiles, ellipse conventions, PSF objects, settings and pickling."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from phot7dt import scene

# tractor-model.md Appendix A.2: half-light radius of the mixture / r_e
HALF_LIGHT = {
    0.29: 1.0047,
    0.5: 1.0,
    1.0: 0.9862,
    2.0: 0.9562,
    3.0: 0.9218,
    4.0: 0.8996,
    5.0: 0.8439,
    6.0: 0.7895,
    6.3: 0.7738,
}


@pytest.mark.parametrize(("n", "hlr"), sorted(HALF_LIGHT.items()))
def test_sersic_half_light_radii_match_reference(n, hlr):
    mix = scene.sersic_mixture(n)
    assert mix.amp.sum() == pytest.approx(1.0)
    assert mix.half_light_radius() == pytest.approx(hlr, abs=6e-4)


def test_named_profiles_and_sersic_limits():
    assert scene.profile_mixture("EXP").half_light_radius() == pytest.approx(0.9862, abs=1e-4)
    assert scene.profile_mixture("DEV").half_light_radius() == pytest.approx(0.8996, abs=1e-4)
    dev, s4 = scene.profile_mixture("DEV"), scene.sersic_mixture(4.0)
    assert np.allclose(dev.amp, s4.amp, atol=2e-3) and np.allclose(dev.var, s4.var, rtol=1e-2)
    assert np.array_equal(scene.sersic_mixture(9.0).amp, scene.sersic_mixture(6.3).amp)
    assert not scene.sersic_mixture(9.0).damp_dn.any()


def test_sersic_n_derivative_matches_finite_difference():
    for n in (0.8, 1.7, 2.6, 4.2, 5.7):
        m, lo, hi = (
            scene.sersic_mixture(n),
            scene.sersic_mixture(n - 1e-6),
            scene.sersic_mixture(n + 1e-6),
        )
        assert np.allclose((hi.amp - lo.amp) / 2e-6, m.damp_dn, atol=1e-5)
        assert np.allclose((hi.var - lo.var) / 2e-6, m.dvar_dn, atol=1e-5)


def test_worked_example_and_theta_round_trip():
    logre, ee1, ee2 = scene.catalog_to_soft(8.0, 0.6, 30.0)
    assert (float(logre), float(ee1), float(ee2)) == pytest.approx(
        (2.07944, -0.27981, 0.48465), abs=1e-5
    )
    for theta in (30.0, -30.0, 60.0, 0.0, 89.0):
        cols = scene.soft_to_columns(*scene.catalog_to_soft(5.0, 0.3, theta))
        assert cols["THETA_fit"] == pytest.approx(theta)
        assert cols["phi_deg_fit"] == pytest.approx((theta + 90.0) % 180.0)
        assert cols["ELL_fit"] == pytest.approx(0.3) and cols["ab_fit"] == pytest.approx(0.7)
        assert cols["Re_fit"] == pytest.approx(5.0) == cols["re_pix_fit"]
    assert scene.soft_to_columns(1.0, 0.0, 0.0)["THETA_fit"] == -90.0


@pytest.mark.parametrize("theta", [30.0, -50.0, 75.0])
def test_rendered_major_axis_is_ccw_from_x(theta):
    psf = scene.GaussianMixturePSF([1.0], [[0, 0]], [0.25 * np.eye(2)])
    p = np.array([[40.0, 40.0, *scene.catalog_to_soft(6.0, 0.5, theta), 0.5]])
    img = scene.render_model((80, 80), [psf], ["SERSIC"], p, [[1.0]])[0]
    yy, xx = np.mgrid[:80, :80]
    dx, dy = xx - 40.0, yy - 40.0
    mxx, myy, mxy = (img * dx * dx).sum(), (img * dy * dy).sum(), (img * dx * dy).sum()
    angle = 0.5 * np.degrees(np.arctan2(2 * mxy, mxx - myy))
    assert angle == pytest.approx(theta, abs=0.2)


def test_gaussian_mixture_from_stamp_recovers_gaussian():
    yy, xx = np.mgrid[-12:13, -12:13]
    stamp = np.exp(-0.5 * (xx**2 / 4.0 + yy**2 / 2.25))
    psf = scene.GaussianMixturePSF.from_stamp(stamp, n_components=1)
    assert psf.var[0] == pytest.approx(np.diag([4.0, 2.25]), abs=0.02)


def test_settings_reject_unknown_and_invalid_keys():
    with pytest.raises(TypeError, match="n_opt_iter"):
        scene.FitSettings.from_mapping({"n_opt_iter": 3})
    with pytest.raises(ValueError, match="q_min"):
        scene.FitSettings(q_min=2.0)
    s = scene.FitSettings().replace(n_opt_iters=5)
    assert s.n_opt_iters == 5 and hash(s) == hash(scene.FitSettings(n_opt_iters=5))


def test_bad_inputs_name_the_problem(epsf):
    with pytest.raises(ValueError, match="odd"):
        scene.PixelizedPSF(np.ones((4, 4)))
    with pytest.raises(ValueError, match="GAL"):
        scene.SourceTable({"x": [1.0], "y": [1.0], "type": ["GAL"]}, 1)
    with pytest.raises(ValueError, match="one PSF per band"):
        scene.fit_patch(np.zeros((2, 8, 8)), np.ones((2, 8, 8)), [epsf], {"x": [4.0], "y": [4.0]})


def test_flags_registry():
    assert scene.decode_flags(scene.flag_bit("not_converged") | scene.flag_bit("re_at_bound")) == [
        "not_converged",
        "re_at_bound",
    ]
    bits = [f.bit_value for f in scene.FLAGS]
    assert len(set(bits)) == len(bits) and all(b & (b - 1) == 0 for b in bits)


def _roundtrip(obj):
    for other in (pickle.loads(pickle.dumps(obj)), copy.deepcopy(obj)):
        assert other == obj and hash(other) == hash(obj)


def test_engine_values_pickle(epsf):
    _roundtrip(epsf)
    _roundtrip(scene.MoffatPSF(3.5, beta=3.0, radius=20))
    _roundtrip(scene.NCircularGaussianPSF([1.5, 3.0], [0.8, 0.2]))
    _roundtrip(scene.GaussianMixturePSF([0.7, 0.3], [[0, 0], [0.1, 0]], [np.eye(2), 4 * np.eye(2)]))
    _roundtrip(scene.FitSettings(n_opt_iters=7))
    _roundtrip(scene.SourceTable({"x": [1.0, 2.0], "y": [3.0, 4.0], "type": ["exp", "star"]}, 2))


def test_fit_result_pickles_and_renders(epsf):
    img = scene.render_model((40, 40), [epsf], ["STAR"], [[20.2, 19.7, 0, 0, 0, 0]], [[100.0]])
    res = scene.fit_patch(img, np.ones_like(img), [epsf], {"x": [20.0], "y": [20.0]})
    back = pickle.loads(pickle.dumps(res))
    assert np.array_equal(back.flux, res.flux)
    assert np.abs(back.residuals(img)).max() < 1e-3
    cols = res.columns(["m400"])
    assert cols["FLUX_m400_fit"][0] == pytest.approx(100.0, rel=1e-4)
    assert cols["stype_fit"][0] == "star" and cols["opt_converged"][0]
