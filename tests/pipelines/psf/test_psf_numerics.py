"""The psf stage's numerical building blocks against references: pixel-integrated Moffat
and its derivatives, the arrow-shaped least squares, clipped medians, dilation, growth curves
and the batched star re-fits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from phot7dt.pipelines.psf.arrow_lm import Evaluation, solve_arrow
from phot7dt.pipelines.psf.cell_image import _grow
from phot7dt.pipelines.psf.cutouts import clipped_medians
from phot7dt.pipelines.psf.epsf_stack import StarCutouts, shifted_copies
from phot7dt.pipelines.psf.moffat_profile import moffat_alpha, moffat_fwhm, moffat_integrated
from phot7dt.pipelines.psf.stamp_models import fit_moffat, growth_curve, moffat_stamp
from phot7dt.pipelines.psf.star_refit import refit_stars


def fine_moffat(dx, dy, alpha, beta, sub=40):
    """Pixel integrals by a ``sub x sub`` midpoint grid (reference)."""
    off = (np.arange(sub) + 0.5) / sub - 0.5
    ox = dx[..., None, None] + off[None, :]
    oy = dy[..., None, None] + off[:, None]
    prof = (1 + (ox**2 + oy**2) / alpha**2) ** -beta
    return prof.mean(axis=(-2, -1)) * (beta - 1) / (math.pi * alpha**2)


@pytest.mark.parametrize(("fwhm", "beta"), [(2.5, 2.5), (3.5, 3.5), (5.0, 4.5)])
def test_pixel_integrals_match_a_fine_grid_and_sum_to_one(fwhm, beta):
    alpha = moffat_alpha(fwhm, beta)
    assert moffat_fwhm(alpha, beta) == pytest.approx(fwhm)
    idx = np.arange(-12, 13, dtype=float)
    dx, dy = idx[None, :] - 0.31, idx[:, None] + 0.17
    got, ref = moffat_integrated(dx, dy, alpha, beta), fine_moffat(dx, dy, alpha, beta)
    # the 40 x 40 midpoint reference itself is good to ~1e-5 of the peak at FWHM 2.5
    assert np.abs(got - ref).max() < 3e-5 * ref.max()
    big = np.arange(-400, 401, dtype=float)
    assert moffat_integrated(big[None, :], big[:, None], alpha, beta).sum() == pytest.approx(
        1.0, abs=2e-4)


def test_derivatives_match_finite_differences():
    idx = np.arange(-8, 9, dtype=float)
    dx, dy, a, b, h = idx[None, :] - 0.3, idx[:, None] + 0.2, 1.9, 3.1, 1e-6
    d = moffat_integrated(dx, dy, a, b, derivatives=True)
    numeric = [
        (moffat_integrated(dx - h, dy, a, b) - moffat_integrated(dx + h, dy, a, b)) / (2 * h),
        (moffat_integrated(dx, dy - h, a, b) - moffat_integrated(dx, dy + h, a, b)) / (2 * h),
        (moffat_integrated(dx, dy, a * math.exp(h), b)
         - moffat_integrated(dx, dy, a * math.exp(-h), b)) / (2 * h),
        (moffat_integrated(dx, dy, a, 1 + (b - 1) * math.exp(h))
         - moffat_integrated(dx, dy, a, 1 + (b - 1) * math.exp(-h))) / (2 * h),
    ]
    np.testing.assert_allclose(d[0], moffat_integrated(dx, dy, a, b), rtol=1e-12)
    for k, num in enumerate(numeric):
        assert np.abs(d[k + 1] - num).max() < 1e-7 * np.abs(num).max()


def test_arrow_fit_finds_the_least_squares_solution():
    """Lines sharing a slope, each with its own offset: the exact solution is known."""
    rng = np.random.default_rng(1)
    x = np.tile(np.linspace(-1, 1, 40), (6, 1))
    offsets = rng.normal(0, 3, 6)
    y = 2.5 * x + offsets[:, None] + rng.normal(0, 0.1, x.shape)

    def evaluate(shared, local):
        model = shared[0] * x + local[:, :1]
        return Evaluation(y - model, x[:, :, None], np.ones((*x.shape, 1)))

    inf = np.full(1, np.inf)
    fit = solve_arrow(evaluate, np.zeros(1), np.zeros((6, 1)), (-inf, inf, -inf, inf))
    design = np.column_stack([x.ravel(), np.kron(np.eye(6), np.ones((40, 1)))])
    exact = np.linalg.lstsq(design, y.ravel(), rcond=None)[0]
    assert fit.shared[0] == pytest.approx(exact[0], rel=1e-9)
    np.testing.assert_allclose(fit.local[:, 0], exact[1:], rtol=1e-8)
    cov = np.linalg.inv(design.T @ design)[0, 0]
    assert fit.shared_cov[0, 0] == pytest.approx(cov, rel=1e-9)


def test_arrow_fit_respects_bounds():
    x = np.linspace(-1, 1, 30)[None, :]

    def evaluate(shared, local):
        return Evaluation(2.0 * x - shared[0] * x - local, x[:, :, None], np.ones((1, 30, 1)))

    fit = solve_arrow(evaluate, np.zeros(1), np.zeros((1, 1)),
                      (np.array([-1.0]), np.array([1.5]), np.array([-5.0]), np.array([5.0])))
    assert fit.shared[0] == pytest.approx(1.5)


def test_stamp_fit_recovers_the_drawn_moffat():
    stamp = moffat_stamp(3.3, 3.2, 27)
    fit = fit_moffat(stamp, 10.0)
    assert fit.fwhm == pytest.approx(3.3, rel=1e-6)
    assert fit.beta == pytest.approx(3.2, rel=1e-5)
    assert (fit.x0, fit.y0) == pytest.approx((27.0, 27.0), abs=1e-7)


def test_clipped_medians_equal_astropy():
    from astropy.stats import sigma_clipped_stats

    rng = np.random.default_rng(3)
    rows = []
    for s in range(30):
        v = rng.normal(0.5, 2.0, rng.integers(30, 900))
        v[: rng.integers(0, 30)] += rng.uniform(10, 200)
        rows.append(np.round(v) if s % 5 == 0 else v)  # ties too
    table = np.full((len(rows), max(map(len, rows))), np.nan)
    for i, v in enumerate(rows):
        table[i, : len(v)] = v
    expected = [sigma_clipped_stats(v, sigma=3.0, maxiters=5)[1] for v in rows]
    np.testing.assert_array_equal(clipped_medians(table, 3.0), expected)


@pytest.mark.parametrize("steps", [1, 2])
def test_grow_equals_binary_dilation(steps):
    from scipy import ndimage

    mask = np.random.default_rng(steps).random((90, 71)) > 0.99
    expected = ndimage.binary_dilation(mask, np.ones((3, 3), bool), iterations=steps)
    np.testing.assert_array_equal(_grow(mask, steps), expected)


def test_growth_curve_equals_exact_apertures():
    from photutils.aperture import CircularAperture

    stamp = moffat_stamp(3.0, 3.0, 12) + np.random.default_rng(0).normal(0, 1e-4, (25, 25))
    radii = np.array([0.5, 2.3, 7.0, 12.0, 15.0])
    expected = [CircularAperture((12, 12), r).do_photometry(stamp, method="exact")[0][0]
                for r in radii]
    np.testing.assert_allclose(growth_curve(stamp, radii), np.array(expected) / stamp.sum(),
                               rtol=1e-12)


def test_star_refit_recovers_shifts_and_fluxes():
    rng = np.random.default_rng(4)
    n, c = 41, 20.0
    stamp = moffat_stamp(3.2, 3.0, 20)
    dx, dy = rng.uniform(-0.4, 0.4, 12), rng.uniform(-0.4, 0.4, 12)
    flux = rng.uniform(5e3, 5e4, 12)
    data = shifted_copies(stamp, dx, dy) * flux[:, None, None] + rng.normal(0, 1.0, (12, n, n))
    bad = np.zeros(data.shape, bool)
    bad[3, 5:9, 5:9] = True
    stars = StarCutouts(data, bad, c + dx + 0.2, c + dy - 0.2, flux * 0.9, np.zeros((12, 2), int))
    used = np.ones(12, bool)
    cx, cy, f = stars.cx.copy(), stars.cy.copy(), stars.flux.copy()
    for _ in range(3):
        refit_stars(stars, used, cx, cy, f, stamp, (1.0, 1.0), 8.0)
    assert used.all()
    np.testing.assert_allclose(cx, c + dx, atol=0.01)
    np.testing.assert_allclose(cy, c + dy, atol=0.01)
    np.testing.assert_allclose(f, flux, rtol=0.01)
