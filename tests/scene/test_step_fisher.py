"""Optimiser-step evaluations: adjoint gradient and the Fisher matrix from representative bands."""

from __future__ import annotations

import numpy as np
import pytest

from phot7dt import scene
from phot7dt.scene._engine import PatchModel
from phot7dt.scene._render import Layout

SHAPE = (72, 72)
N_BAND = 12
KINDS = ["SERSIC", "STAR", "EXP"]
TRUTH = np.array(
    [
        [30.3, 33.6, *scene.catalog_to_soft(3.5, 0.4, 30.0), 2.2],
        [35.8, 30.1, 0.0, 0.0, 0.0, 2.0],  # a star blended with the Sersic galaxy
        [55.4, 56.7, *scene.catalog_to_soft(2.5, 0.2, -60.0), 1.0],
    ]
)


def _patch(fwhms, seed=3):
    rng = np.random.default_rng(seed)
    psfs = [scene.PixelizedPSF(scene.MoffatPSF(f, radius=20).stamp) for f in fwhms]
    fluxes = rng.uniform(2000.0, 6000.0, (len(KINDS), N_BAND))
    images = scene.render_model(SHAPE, psfs, KINDS, TRUTH, fluxes) + rng.normal(
        0, 2.0, (N_BAND,) + SHAPE
    )
    invvar = np.full(images.shape, 0.25)
    return images, invvar, psfs, fluxes


def _model(images, invvar, psfs):
    nan = np.full((len(KINDS), N_BAND), np.nan)
    return PatchModel(images, invvar, psfs, KINDS, (nan, nan), pad=64)


def _layout(free=None):
    free = np.ones((len(KINDS), 6), bool) if free is None else free
    free[1, 2:] = False  # a star has no shape
    free[2, 5] = False  # an exponential has no n
    return Layout(np.array([48, 40, 40]), free, 64)


@pytest.fixture(scope="module")
def perturbed():
    return TRUTH + np.array([0.4, -0.3, 0.1, 0.05, -0.05, 0.3])


def test_adjoint_gradient_equals_derivative_stamp_gradient(perturbed):
    images, invvar, psfs, _ = _patch(np.linspace(3.2, 4.6, N_BAND))
    model = _model(images, invvar, psfs)
    lay = _layout()
    exact = model.evaluate(perturbed, lay, derivs=True)
    step = model.evaluate(
        perturbed, lay, derivs=True, single=True, fisher_bands=model.fisher_plan(4)
    )
    assert step.lnlike == pytest.approx(exact.lnlike, rel=1e-7)  # float32 stamps
    assert np.allclose(step.fluxes, exact.fluxes, rtol=1e-5)
    assert np.abs(step.grad - exact.grad).max() < 1e-5 * np.abs(exact.grad).max()
    # a smooth PSF trend across bands: the estimated Fisher matrix is close to the full one
    sig = np.sqrt(np.diag(exact.fisher))
    rel = (step.fisher - exact.fisher) / np.outer(sig, sig)
    assert np.abs(rel).max() < 0.05


def test_fisher_estimate_is_exact_for_isolated_sources_and_one_psf(perturbed):
    """Same PSF and noise in every band: a bin's RMS flux reproduces each source's own block."""
    images, invvar, psfs, _ = _patch([4.0] * N_BAND)
    model = _model(images, invvar, psfs)
    free = np.zeros((len(KINDS), 6), bool)
    free[2] = True  # only the isolated galaxy moves
    lay = _layout(free)
    exact = model.evaluate(perturbed, lay, derivs=True)
    step = model.evaluate(
        perturbed, lay, derivs=True, single=True, fisher_bands=model.fisher_plan(3)
    )
    sig = np.sqrt(np.diag(exact.fisher))
    assert np.abs((step.fisher - exact.fisher) / np.outer(sig, sig)).max() < 1e-5


def test_fisher_band_plan_covers_every_band_once():
    sigma = np.ones(40)
    sigma[17] = np.inf  # a band without data is never a representative
    reps, edges = scene._step.fisher_band_plan(sigma, 8)
    assert edges[0] == 0 and edges[-1] == 40 and np.all(np.diff(edges) == 5)
    assert np.all((reps >= edges[:-1]) & (reps < edges[1:])) and 17 not in reps


def _start_catalog() -> dict:
    """The three sources, started 0.3-0.5 px off their true positions."""
    return {
        "x": TRUTH[:, 0] + [0.5, -0.4, 0.3],
        "y": TRUTH[:, 1] + [-0.4, 0.3, 0.5],
        "type": KINDS,
        "re_pix": [3.0, np.nan, 3.0],
        "ell": [0.3, np.nan, 0.1],
        "theta_deg": [20.0, np.nan, -50.0],
        "sersic_n": [2.0, np.nan, np.nan],
    }


def test_fit_with_estimated_fisher_reaches_the_full_fisher_optimum():
    images, invvar, psfs, fluxes = _patch(np.linspace(3.2, 4.6, N_BAND)[::-1], seed=8)
    cat = _start_catalog()
    full = scene.fit_patch(images, invvar, psfs, cat, {"fisher_bands": 0, "coarse_bands": 0})
    est = scene.fit_patch(images, invvar, psfs, cat, {"fisher_bands": 4, "coarse_bands": 0})
    assert full.converged.all() and est.converged.all()
    err = np.nan_to_num(full.params_err, nan=1.0)
    assert np.all(np.abs(est.params - full.params) <= 0.25 * err)
    assert np.all(np.abs(est.flux - full.flux) <= 0.1 * full.flux_err)
    assert np.all(np.abs(full.flux - fluxes) < 5 * full.flux_err_marginal)


def test_frozen_source_stamp_cache_changes_nothing(monkeypatch):
    images, invvar, psfs, _ = _patch(np.linspace(3.2, 4.6, N_BAND), seed=11)
    cat = _start_catalog()
    cached = scene.fit_patch(images, invvar, psfs, cat, {"fisher_bands": 4, "coarse_bands": 0})
    hits = []
    original_fill = scene._step.StampCache.fill

    def counting_fill(self, key, bands, out):
        got = original_fill(self, key, bands, out)
        hits.append(got)
        return got

    monkeypatch.setattr(scene._step.StampCache, "fill", counting_fill)
    again = scene.fit_patch(images, invvar, psfs, cat, {"fisher_bands": 4, "coarse_bands": 0})
    original_subset = PatchModel.subset

    def uncached(self, idx):
        sub = original_subset(self, idx)
        sub._stamps = None
        return sub

    monkeypatch.setattr(PatchModel, "subset", uncached)
    plain = scene.fit_patch(images, invvar, psfs, cat, {"fisher_bands": 4, "coarse_bands": 0})
    assert any(hits)  # frozen sources were taken from the cache
    assert np.array_equal(cached.params, again.params)
    assert np.allclose(cached.params, plain.params, rtol=0, atol=1e-9)
    assert np.allclose(cached.flux, plain.flux, rtol=1e-12)
