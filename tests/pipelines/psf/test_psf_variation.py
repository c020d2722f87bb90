"""The PSF-model error term and the PSF's change across a cell, against known truth.

Stars are pixel-integrated elliptical Gaussians (analytic second moments) whose
covariance changes linearly with position, with sky and photon noise; the tests
check that the moment field, the Gaussian smear and the leave-one-out flux
error recover what was put in.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf

from phot7dt.pipelines.psf.epsf_stack import StarCutouts, stack_epsf
from phot7dt.pipelines.psf.model_error import (
    PsfFluxRatios,
    excess_scatter,
    loo_flux_ratios,
    pooled_eta,
)
from phot7dt.pipelines.psf.spatial import fit_moment_field
from phot7dt.psf_grid import MomentField, PSFChoice, gaussian_smear

N = 41
SKY, GAIN = 2.0, 2.0


def gaussian_pixels(n, dx, dy, sxx, syy):
    """Unit-flux axis-aligned Gaussian integrated over pixels, centre (dx, dy) from the middle."""
    c = (n - 1) / 2
    edges = np.arange(n + 1) - 0.5 - c
    px = np.diff(0.5 * erf((edges - dx) / np.sqrt(2 * sxx)))
    py = np.diff(0.5 * erf((edges - dy) / np.sqrt(2 * syy)))
    return np.outer(py, px)


def moments(image):
    n = image.shape[0]
    yy, xx = np.indices(image.shape) - (n - 1) / 2
    f = image.sum()
    mx, my = (image * xx).sum() / f, (image * yy).sum() / f
    return ((image * (xx - mx) ** 2).sum() / f, (image * (yy - my) ** 2).sum() / f)


def test_gaussian_smear_changes_moments_by_dsigma():
    stamp = gaussian_pixels(N, 0.0, 0.0, 2.0, 2.5)
    wider = gaussian_smear(stamp, (0.3, 0.0, 0.1))
    narrower = gaussian_smear(stamp, (-0.2, 0.0, -0.2))
    base = moments(stamp)
    assert wider.sum() == pytest.approx(1.0)
    assert moments(wider)[0] - base[0] == pytest.approx(0.3, rel=0.01)
    assert moments(wider)[1] - base[1] == pytest.approx(0.1, rel=0.02)
    assert moments(narrower)[0] - base[0] == pytest.approx(-0.2, rel=0.02)
    np.testing.assert_allclose(gaussian_smear(stamp, (0.0, 0.0, 0.0)), stamp, atol=1e-12)


def _field_stars(rng, n_stars, grad, snr=400.0, gain=GAIN):
    """Stars over a 300 px cell whose s_xx grows by ``grad`` px**2 per px of x."""
    c = (N - 1) / 2
    xs, ys = rng.uniform(0, 300, n_stars), rng.uniform(0, 300, n_stars)
    data, cx, cy = [], [], []
    for x in xs:
        dx, dy = rng.uniform(-0.5, 0.5, 2)
        sxx = 2.2 + grad * (x - 150.0)
        flux = snr * SKY * np.sqrt(4 * np.pi * 2.2)
        model = flux * gaussian_pixels(N, dx, dy, sxx, 2.2)
        data.append(rng.poisson(model * gain) / gain + rng.normal(0, SKY, model.shape))
        cx.append(c + dx)
        cy.append(c + dy)
    data = np.asarray(data)
    # the star's working-frame position is origin + (cx, cy), within 0.5 px of (xs, ys)
    origin = np.column_stack([xs - c, ys - c]).round().astype(int)
    return StarCutouts(data, np.zeros(data.shape, bool), np.asarray(cx), np.asarray(cy),
                       data.sum(axis=(1, 2)), origin)


def test_moment_field_recovers_a_width_gradient_and_the_error_term_shrinks():
    rng = np.random.default_rng(3)
    grad = 0.2 / 300  # s_xx changes by 0.2 px**2 (~9 %) across the cell
    # sky-limited stars: a photon-limited PSF fit weighs pixels like an aperture and
    # hardly depends on the PSF's width, so only sky-limited stars show the model error
    stars = _field_stars(rng, 30, grad, gain=1e6)
    res = stack_epsf(stars, SKY, 1e6, 3.5, 10, 5.0, 2.0, gradient_stars=8)
    field = res.moment_field
    assert field is not None
    assert field.coef[1, 0] == pytest.approx(grad, rel=0.15)
    assert abs(field.coef[1, 2]) < 0.25 * grad and abs(field.coef[2, 0]) < 0.25 * grad
    # PSF-fit flux of a true star at either end of the cell: with the plain stamp it
    # changes by ~2 % across the cell, with the stamp moved by the field by < 0.5 %
    def fit_ratio(x, stamp):
        true = gaussian_pixels(N, 0, 0, 2.2 + grad * (x - 150), 2.2)
        return (true * stamp).sum() / (stamp * stamp).sum()

    plain = fit_ratio(10, res.stamp) - fit_ratio(290, res.stamp)
    moved = (fit_ratio(10, gaussian_smear(res.stamp, field.at(10.0, field.y0)))
             - fit_ratio(290, gaussian_smear(res.stamp, field.at(290.0, field.y0))))
    assert abs(plain) > 0.015
    assert abs(moved) < 0.25 * abs(plain)
    without = stack_epsf(stars, SKY, 1e6, 3.5, 10, 5.0, 2.0, gradient_stars=None)
    eta_with, _ = excess_scatter(res.ratios.ratio, res.ratios.sigma)
    eta_without, _ = excess_scatter(without.ratios.ratio, without.ratios.sigma)
    assert eta_without > 0.004  # the width change leaves a PSF-model flux error ...
    assert eta_with < 0.5 * eta_without  # ... that the moment field removes


def test_excess_scatter_recovers_known_extra_variance():
    rng = np.random.default_rng(1)
    sigma = rng.uniform(0.001, 0.02, 600)
    for eta in (0.0, 0.005, 0.02):
        ratio = 1.01 + rng.normal(0, sigma) + rng.normal(0, eta, sigma.size)
        ratio[:5] += 0.5  # outliers (a neighbour in the aperture) are clipped
        got, n = excess_scatter(ratio, sigma)
        assert n <= 595
        assert got == pytest.approx(eta, abs=max(0.15 * eta, 0.0015))


def test_loo_ratios_of_identical_noiseless_stars_are_one():
    stars = np.stack([gaussian_pixels(N, 0, 0, 2.2, 2.2)] * 6)
    weight = np.full(stars.shape, 1e6)
    got = loo_flux_ratios(stars, weight, 3.5, 2.0)
    np.testing.assert_allclose(got.ratio, 1.0, atol=1e-9)


def test_pooled_eta_shrinks_cells_towards_the_band():
    rng = np.random.default_rng(2)
    cells = {}
    for k in range(4):
        sigma = np.full(40, 0.002)
        cells[k] = PsfFluxRatios(1 + rng.normal(0, np.hypot(sigma, 0.01)), sigma)
    cells[9] = PsfFluxRatios.empty()
    band, per_cell = pooled_eta(cells, shrink_stars=5)
    assert band == pytest.approx(0.01, rel=0.2)
    assert per_cell[9] == (band, 0)
    assert all(v[0] == pytest.approx(0.01, rel=0.3) for k, v in per_cell.items() if k != 9)


def test_fit_moment_field_offset_only_with_few_stars():
    x, y = np.array([0.0, 10, 20, 30]), np.array([0.0, 5, 0, 5])
    d = np.tile([0.1, 0.0, -0.05], (4, 1)) + np.array([[0.01], [-0.01], [0.0], [0.0]])
    field = fit_moment_field(x, y, d, np.full((4, 3), 1e-4), min_gradient_stars=8)
    np.testing.assert_allclose(field.coef[0], [0.1, 0.0, -0.05], atol=0.006)
    np.testing.assert_array_equal(field.coef[1:], 0.0)
    assert fit_moment_field(x[:2], y[:2], d[:2], np.full((2, 3), 1e-4), 8) is None


def test_psf_choice_applies_its_moment_field_and_round_trips(tmp_path):
    from phot7dt.datasets.psf_grid_dataset import PSFGridDataset
    from phot7dt.psf_grid import PSFGrid

    stamp = gaussian_pixels(15, 0, 0, 2.0, 2.0)
    stamp /= stamp.sum()
    field = MomentField(10.0, 20.0, [[0.0, 0, 0], [0.01, 0, 0], [0, 0, 0]])
    choice = PSFChoice("epsf", stamp, 3.3, 3.0, 12, "ok", flux_error_frac=0.004,
                       moment_field=field)
    np.testing.assert_allclose(choice.stamp_at(10.0, 20.0), stamp, atol=1e-9)
    assert moments(choice.stamp_at(30.0, 0.0))[0] - moments(stamp)[0] == pytest.approx(0.2,
                                                                                        rel=0.05)
    grid = PSFGrid((50, 50), 1, ("m400",), {("m400", 0, 0): choice})
    ds = PSFGridDataset(filepath=str(tmp_path / "epsf"))
    ds.save(grid)
    back = ds.load().choice("m400", 0, 0)
    assert back == choice
    assert back.flux_error_frac == 0.004
    np.testing.assert_allclose(back.moment_field.coef, field.coef)


def test_excess_scatter_ignores_a_few_wild_stars_in_a_small_cell():
    rng = np.random.default_rng(5)
    sigma = np.full(12, 0.003)
    ratio = 1.0 + rng.normal(0, sigma)
    ratio[[2, 7, 9]] = [0.85, 1.12, 0.93]  # a blend, a cosmic ray, a saturated core
    eta, n = excess_scatter(ratio, sigma)
    assert n == 9
    assert eta < 0.003


def test_sky_limited_fraction_is_one_for_faint_and_small_for_photon_limited_sources():
    from phot7dt.psf_grid import sky_limited_fraction

    stamp = gaussian_pixels(21, 0, 0, 2.2, 2.2)
    sky_var, gain = 4.0, 2.0
    kappas = []
    for flux in (1.0, 1e3, 1e6):
        weight = 1.0 / (sky_var + flux * stamp / gain)
        kappas.append(float(sky_limited_fraction(weight, np.full(stamp.shape, 1 / sky_var), stamp)))
    assert kappas[0] == pytest.approx(1.0, abs=0.01)
    assert kappas[0] > kappas[1] > kappas[2]
    assert kappas[2] < 0.01
