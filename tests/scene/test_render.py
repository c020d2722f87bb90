"""Renders against GalSim and an analytic Gaussian x Gaussian case; exact derivatives."""

from __future__ import annotations

import galsim
import numpy as np
import pytest
from _galsim_helpers import draw, galsim_mixture, galsim_profile

from phot7dt import scene
from phot7dt.scene._engine import PatchModel  # noqa: F401  (import check)
from phot7dt.scene._render import Layout, base_factors
from phot7dt.scene.ellipse import shape_covariance

SHAPE = (96, 96)
X, Y = 47.3, 48.6
CASES = [("STAR", 1.0), ("EXP", 1.0), ("DEV", 4.0)] + [
    ("SERSIC", n) for n in (1.0, 2.0, 3.0, 4.0, 5.0)
]


def _params(n):
    return np.array([X, Y, *scene.catalog_to_soft(4.0, 0.4, 30.0), n])


def _gal(kind, p):
    return galsim.DeltaFunction() if kind == "STAR" else galsim_mixture(kind, *p[2:5], p[5])


@pytest.mark.parametrize(("kind", "n"), CASES)
def test_pixelized_psf_matches_galsim(kind, n, galsim_psf, epsf):
    p = _params(n)
    ref = draw(galsim.Convolve(_gal(kind, p), galsim_psf), SHAPE, X, Y, method="auto")
    ours = scene.render_model(SHAPE, [epsf], [kind], p, [[1.0]])[0]
    assert np.abs(ours - ref).sum() <= 1e-3


@pytest.mark.parametrize(("kind", "n"), CASES)
def test_moffat_psf_matches_galsim(kind, n):
    p = _params(n)
    ref = draw(
        galsim.Convolve(_gal(kind, p), galsim.Moffat(beta=3.5, fwhm=4.0)),
        SHAPE,
        X,
        Y,
        method="no_pixel",
    )
    ours = scene.render_model(SHAPE, [scene.MoffatPSF(4.0)], [kind], p, [[1.0]])[0]
    assert np.abs(ours - ref).sum() <= 1e-3


def test_mixture_fidelity_to_true_sersic_is_the_tractor_approximation(galsim_psf, epsf):
    """The tables approximate softened profiles: a few % from GalSim's exact Sersic."""
    for kind, n, bound in [("EXP", 1.0, 0.03), ("DEV", 4.0, 0.12), ("SERSIC", 2.0, 0.08)]:
        p = _params(n)
        true = draw(galsim.Convolve(galsim_profile(kind, *p[2:5], n), galsim_psf), SHAPE, X, Y)
        ours = scene.render_model(SHAPE, [epsf], [kind], p, [[1.0]])[0]
        assert np.abs(ours - true).sum() < bound


def test_gaussian_psf_analytic_to_machine_precision():
    psf = scene.GaussianMixturePSF([1.0], [[0.0, 0.0]], [9.0 * np.eye(2)])
    p = np.array([[40.3, 39.7, np.log(3.0), 0.2, -0.1, 1.0]])
    ours = scene.render_model(
        (80, 80),
        [psf],
        ["EXP"],
        p,
        [[1.0]],
        settings=scene.FitSettings(min_stamp_size=128, max_stamp_size=128),
    )[0]
    cov, _ = shape_covariance(*p[0, 2:5])
    yy, xx = np.mgrid[:80, :80]
    dx, dy = xx - p[0, 0], yy - p[0, 1]
    ref = np.zeros((80, 80))
    for a, v in zip(
        scene.profile_mixture("EXP").amp, scene.profile_mixture("EXP").var, strict=True
    ):
        c = v * cov[0] + 9.0 * np.eye(2)
        ic = np.linalg.inv(c)
        d2 = ic[0, 0] * dx * dx + 2 * ic[0, 1] * dx * dy + ic[1, 1] * dy * dy
        ref += a * np.exp(-0.5 * d2) / (2 * np.pi * np.sqrt(np.linalg.det(c)))
    assert np.abs(ours - ref).max() < 1e-15
    assert abs(ours.sum() - 1.0) < 1e-12


@pytest.mark.parametrize("kind", ["STAR", "EXP", "SERSIC"])
def test_fourier_derivatives_match_finite_differences(kind, epsf):
    p = np.array([[30.3, 29.8, np.log(2.5), 0.3, -0.2, 2.2]])
    free = np.zeros((1, 6), bool)
    free[0, :2] = True
    free[0, 2:5] = kind != "STAR"
    free[0, 5] = kind == "SERSIC"
    lay = Layout([64], free, pad=0)

    def render(q):
        od = lay.origins(q[:, 0], q[:, 1])
        od = (od0[0], od0[1], q[:, 0] - np.floor(p[:, 0] + 0.5), q[:, 1] - np.floor(p[:, 1] + 0.5))
        base = base_factors(lay, [kind], q, od)[0]  # (1, ncol, 64, 33): one stamp group
        return np.fft.irfft2(base * epsf.fourier(64), s=(64, 64))[0]

    od0 = lay.origins(p[:, 0], p[:, 1])
    cols = render(p).reshape(-1, 64, 64)
    for col, k in enumerate(np.flatnonzero(free[0]), start=1):
        h = np.zeros_like(p)
        h[0, k] = 1e-5
        fd = (render(p + h).reshape(-1, 64, 64)[0] - render(p - h).reshape(-1, 64, 64)[0]) / 2e-5
        assert np.abs(fd - cols[col]).max() < 1e-6 * np.abs(cols[col]).max() + 1e-10


def test_subpixel_shift_does_not_ring_along_the_central_row():
    """A sharp ePSF shifted by 0.3 px: a plain (sinc) Fourier shift rings along the row through
    the star across the whole stamp; the tapered shift keeps that line 8x weaker."""
    moffat = galsim.Moffat(beta=3.5, fwhm=2.2).shear(g1=0.1, g2=0.05)
    psf = scene.PixelizedPSF(moffat.drawImage(nx=55, ny=55, scale=1.0).array)
    ours = scene.render_model(
        (80, 80),
        [psf],
        ["STAR"],
        np.array([[40.3, 40.0, 0, 0, 0, 1]]),
        [[1.0]],
        settings=scene.FitSettings(min_stamp_size=80, max_stamp_size=80),
    )[0]
    kx = np.fft.rfftfreq(80)[None, :]
    sinc_shift = np.fft.irfft2(
        psf.fourier(80)
        * np.exp(-2j * np.pi * kx * 40.3)
        * np.exp(-2j * np.pi * np.fft.fftfreq(80)[:, None] * 40.0),
        s=(80, 80),
    )
    assert np.abs(sinc_shift - ours).max() < 0.02 * ours.max()  # the same star

    def far(m):
        return np.abs(np.r_[m[40, :28], m[40, 53:]]).max()

    assert far(ours) < far(sinc_shift) / 8


@pytest.mark.parametrize(
    ("kind", "re_pix", "ell", "size"),
    [("EXP", 0.15, 0.0, 16), ("DEV", 3.0, 0.5, 64), ("SERSIC", 100.0, 0.98, 256)],
)
def test_profile_transform_equals_the_direct_gaussian_sum(kind, re_pix, ell, size):
    """The row recurrence (and its fall-back for steep rows) equals
    sum_j a_j exp(-2 pi^2 v_j k^T C k)."""
    from phot7dt.scene.mixtures import profile_mixture

    p = np.array([[10.3, 20.7, *scene.catalog_to_soft(re_pix, ell, 70.0), 2.5]])
    lay = Layout([size], np.zeros((1, 6), bool), pad=0)
    od = lay.origins(p[:, 0], p[:, 1])
    base = base_factors(lay, [kind], p, od)[0][0, 0]
    ky, kx = np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :]
    cov = shape_covariance(*p[0, 2:5])[0][0]
    quad = cov[0, 0] * kx**2 + 2 * cov[0, 1] * kx * ky + cov[1, 1] * ky**2
    mix = profile_mixture(kind, 2.5)
    direct = sum(
        a * np.exp(-2 * np.pi**2 * v * quad) for a, v in zip(mix.amp, mix.var, strict=True)
    )
    phase = base_factors(Layout([size], np.zeros((1, 6), bool), pad=0), ["STAR"], p, od)[0][0, 0]
    np.testing.assert_allclose(base, direct * phase, rtol=0, atol=1e-12)
