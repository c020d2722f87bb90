"""Fallback PSF shape fitted to PSF stars: joint Moffat fit, levels, header last resort."""

from __future__ import annotations

import dataclasses

import galsim
import numpy as np
import pytest
from psf_field import BAND_PSF, EPSF_TEST_PARAMS, FEW_STAR_CELL

from phot7dt.datasets.psf_grid_dataset import PSFGridDataset
from phot7dt.pipelines.psf.epsf_stack import StarCutouts
from phot7dt.pipelines.psf.nodes import build_epsf
from phot7dt.pipelines.psf.star_moffat import fit_moffat_to_stars, fit_stars_from_cutouts

SKY, GAIN, CUTOUT = 3.0, 1.5, 41


def galsim_stars(rng, fwhm: float, beta: float, fluxes) -> StarCutouts:
    """Noisy pixel-integrated GalSim Moffat stars, centres known to ~0.1 px."""
    c = (CUTOUT - 1) / 2
    data, cx, cy = [], [], []
    for flux in fluxes:
        dx, dy = rng.uniform(-0.5, 0.5, 2)
        model = galsim.Moffat(beta=beta, fwhm=fwhm, flux=flux).drawImage(
            nx=CUTOUT, ny=CUTOUT, scale=1.0, offset=(dx, dy)).array.astype(float)
        data.append(rng.poisson(model.clip(0) * GAIN) / GAIN + rng.normal(0, SKY, model.shape))
        cx.append(c + dx + rng.normal(0, 0.1))
        cy.append(c + dy + rng.normal(0, 0.1))
    data = np.asarray(data)
    return StarCutouts(data, np.zeros(data.shape, bool), np.asarray(cx), np.asarray(cy),
                       data.sum(axis=(1, 2)), np.zeros((len(data), 2), int))


@pytest.mark.parametrize(("fwhm", "beta"), [(2.8, 2.5), (3.4, 3.2), (4.2, 4.0)])
def test_two_star_fit_recovers_fwhm_and_beta(fwhm, beta):
    rng = np.random.default_rng(int(10 * fwhm))
    stars = fit_stars_from_cutouts(galsim_stars(rng, fwhm, beta, [2e4, 4e4]), 12.0)
    fit = fit_moffat_to_stars(stars, SKY, GAIN, 3.5, 3.5, 3 * 3.5)
    assert fit.nstars == 2
    assert fit.fwhm_pix == pytest.approx(fwhm, rel=0.02)
    assert fit.beta == pytest.approx(beta, rel=0.05)
    assert abs(fit.fwhm_pix - fwhm) < 4 * fit.fwhm_err_pix + 0.01
    fixed = fit_moffat_to_stars(stars, SKY, GAIN, 3.5, beta, 3 * 3.5, free_beta=False)
    assert fixed.beta == beta and fixed.fwhm_pix == pytest.approx(fwhm, rel=0.02)


def test_a_star_the_profile_does_not_describe_is_dropped():
    rng = np.random.default_rng(5)
    stars = galsim_stars(rng, 3.0, 3.0, [3e4] * 5)
    blend = galsim_stars(rng, 6.0, 3.0, [3e4])
    both = StarCutouts(*(np.concatenate([getattr(stars, f.name), getattr(blend, f.name)])
                         for f in dataclasses.fields(StarCutouts)))
    fit = fit_moffat_to_stars(fit_stars_from_cutouts(both, 10.0), SKY, GAIN, 3.5, 3.5, 9.0)
    assert fit.nstars == 5
    assert fit.fwhm_pix == pytest.approx(3.0, rel=0.01)


def run(field, moffat: dict, gaia="field"):
    gaia = field.gaiaxp if gaia == "field" else gaia
    epsf = EPSF_TEST_PARAMS | {"save_patch_background_diagnostics": False}
    return build_epsf(field.frames, field.flagged_catalog, gaia, epsf, {}, moffat)


def test_cell_with_two_stars_fits_its_own_stars(psf_field, tmp_path):
    grid, summary, _ = run(psf_field, {"fit_min_stars": 2})
    r, c = FEW_STAR_CELL
    for band, (beta, fwhm_by_cell) in BAND_PSF.items():
        choice = grid.choice(band, r, c)
        assert choice.model == "moffat" and choice.nstars == 2
        assert choice.fallback_level == "cell_stars" and choice.fallback_nstars == 2
        assert choice.fwhm_pix == pytest.approx(fwhm_by_cell[(r, c)], rel=0.03)
        assert choice.beta == pytest.approx(beta, rel=0.08)
        assert choice.reason.startswith("low-star ePSF: 2 stars used")
        assert "fitted to 2 stars (cell_stars)" in choice.reason
        assert grid.choice(band, 0, 0).fallback_level == ""
    row = summary[(summary.band == "m650") & (summary.cell == "r01_c01")].iloc[0]
    assert row.psf_fallback_level == "cell_stars" and row.psf_fallback_nstars == 2
    dataset = PSFGridDataset(filepath=str(tmp_path / "epsf"))
    dataset.save(grid)
    assert dataset.load() == grid


def test_fit_switched_off_uses_the_header_with_reason(psf_field):
    grid, _, _ = run(psf_field, {"fit_to_stars": False})
    choice = grid.choice("m500", *FEW_STAR_CELL)
    assert choice.fallback_level == "header" and choice.fallback_nstars == 0
    assert choice.fwhm_pix == pytest.approx(3.5) and choice.beta == pytest.approx(3.5)
    assert "header PEEING/SEEING" in choice.reason and "fit_to_stars is off" in choice.reason
    no_header = grid.choice("m650", *FEW_STAR_CELL)
    assert no_header.fwhm_pix == pytest.approx(4.0)
    assert "fallback_default_fwhm_pix" in no_header.reason


def test_fitted_fwhm_feeds_the_gaussian_fallbacks(psf_field):
    from phot7dt.pipelines.psf.nodes import build_epsf as node

    frames = dataclasses.replace(psf_field.frames, frames=psf_field.frames.frames[:1])
    epsf = EPSF_TEST_PARAMS | {"save_patch_background_diagnostics": False}
    grid, _, _ = node(frames, psf_field.flagged_catalog, psf_field.gaiaxp, epsf,
                      {"psf_fallback_model": "ncircular_gaussian"}, {"fit_min_stars": 2})
    choice = grid.choice("m500", *FEW_STAR_CELL)
    assert choice.model == "ncircular_gaussian" and choice.beta is None
    assert choice.fallback_level == "cell_stars"
    assert choice.fwhm_pix == pytest.approx(BAND_PSF["m500"][1][FEW_STAR_CELL], rel=0.03)
