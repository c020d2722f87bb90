"""PSF roles: every PSF class plays the roles the engine calls, whatever attributes it has.

``NCircularGaussianPSF`` has a ``weights`` attribute, as the coadd PSF of the
coarse pass does; the engine must not mistake one for the other.  Its renders
and fits are compared with the analytic sum of Gaussians (point-sampled).
"""

from __future__ import annotations

import numpy as np
import pytest

from phot7dt import scene
from phot7dt.scene._coarse import BlendedPSF
from phot7dt.scene.ellipse import shape_covariance

SIGMAS, WEIGHTS = (1.6, 3.5), (0.8, 0.2)
SHAPE = (64, 64)


def _analytic(kind, p, shape=SHAPE):
    """Point-sampled Gaussians: profile mixture x ellipse, convolved with the PSF components."""
    cov = shape_covariance(*p[2:5])[0][0] if kind != "STAR" else np.zeros((2, 2))
    mix = (
        [(1.0, 0.0)]
        if kind == "STAR"
        else zip(scene.profile_mixture(kind).amp, scene.profile_mixture(kind).var, strict=True)
    )
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    dx, dy = xx - p[0], yy - p[1]
    out = np.zeros(shape)
    for a, v in mix:
        for w, s in zip(WEIGHTS, SIGMAS, strict=True):
            c = v * cov + s * s * np.eye(2)
            ic = np.linalg.inv(c)
            d2 = ic[0, 0] * dx * dx + 2 * ic[0, 1] * dx * dy + ic[1, 1] * dy * dy
            out += a * w * np.exp(-0.5 * d2) / (2 * np.pi * np.sqrt(np.linalg.det(c)))
    return out / sum(WEIGHTS)


@pytest.mark.parametrize("kind", ["STAR", "EXP"])
@pytest.mark.parametrize(("x", "y", "tol"), [(31.0, 33.0, 2e-6), (31.3, 32.6, 5e-5)])
def test_ncircular_gaussian_psf_renders_the_analytic_sum(kind, x, y, tol):
    """Tolerances, as a fraction of the peak: at an integer position the render differs from the
    point-sampled sum only by the PSF transform beyond Nyquist (exp(-2 pi^2 sigma^2 / 4) ~ 3e-6 of
    it for sigma = 1.6 px); a sub-pixel shift is tapered above 0.375 cycles/px, where that
    transform is still ~1e-3 (:func:`phot7dt.scene._render._shift_phase`)."""
    psf = scene.NCircularGaussianPSF(SIGMAS, WEIGHTS)
    p = np.array([x, y, np.log(2.5), 0.2, -0.1, 1.0])
    ours = scene.render_model(
        SHAPE,
        [psf],
        [kind],
        p[None],
        [[1.0]],
        settings=scene.FitSettings(min_stamp_size=64, max_stamp_size=64),
    )[0]
    ref = _analytic(kind, p)
    assert np.abs(ours - ref).max() < tol * ref.max()
    assert abs(ours.sum() - 1.0) < 1e-7


def test_ncircular_gaussian_psf_fits_a_star_and_a_galaxy():
    psf = scene.NCircularGaussianPSF(SIGMAS, WEIGHTS)
    star = np.array([20.4, 22.7, 0.0, 0.0, 0.0, 1.0])
    gal = np.array([42.2, 40.5, np.log(3.0), 0.25, 0.1, 1.0])
    flux = np.array([5000.0, 8000.0])
    truth = flux[0] * _analytic("STAR", star) + flux[1] * _analytic("EXP", gal)
    src = {
        "x": [star[0] + 0.3, gal[0] - 0.2],
        "y": [star[1] - 0.2, gal[1] + 0.3],
        "type": ["STAR", "EXP"],
        "re_pix": [np.nan, 2.6],
        "ell": [0.0, 0.3],
        "theta_deg": [0.0, 10.0],
    }
    res = scene.fit_patch(truth[None], np.ones((1,) + SHAPE), [psf], src)  # noiseless, unit weights
    assert res.converged.all()
    assert np.allclose(res.flux[:, 0], flux, rtol=1e-4)
    assert np.allclose(res.x, [star[0], gal[0]], atol=1e-3)
    assert np.allclose(res.y, [star[1], gal[1]], atol=1e-3)
    assert np.allclose(res.params[0, 1, 2:5], gal[2:5], atol=1e-3)


def test_rms_width_of_each_psf_kind():
    ncirc = scene.NCircularGaussianPSF(SIGMAS, WEIGHTS)
    expect = np.sqrt(np.dot(WEIGHTS, np.square(SIGMAS)) / sum(WEIGHTS))
    assert ncirc.rms_width() == pytest.approx(expect, rel=1e-12)
    gm = scene.GaussianMixturePSF([1.0], [[0.0, 0.0]], [[[4.0, 0.0], [0.0, 9.0]]])
    assert gm.rms_width() == pytest.approx(np.sqrt(6.5), rel=1e-12)
    stamp = _analytic("STAR", np.array([27.0, 27.0, 0, 0, 0, 1]), (55, 55))
    assert scene.PixelizedPSF(stamp).rms_width() == pytest.approx(expect, rel=1e-3)
    blend = BlendedPSF([ncirc, gm], [1.0, 3.0])
    assert blend.rms_width() == pytest.approx(np.sqrt(0.25 * expect**2 + 0.75 * 6.5), rel=1e-12)


def test_every_psf_class_plays_the_engine_roles():
    from phot7dt.scene.psf import PSF

    stamp = _analytic("STAR", np.array([27.0, 27.0, 0, 0, 0, 1]), (55, 55))
    psfs = [
        scene.PixelizedPSF(stamp),
        scene.MoffatPSF(4.0),
        scene.NCircularGaussianPSF(SIGMAS, WEIGHTS),
        scene.GaussianMixturePSF([1.0], [[0.0, 0.0]], [np.eye(2)]),
    ]
    for psf in [*psfs, BlendedPSF(psfs[:2], [1.0, 1.0])]:
        assert isinstance(psf, PSF), type(psf).__name__
