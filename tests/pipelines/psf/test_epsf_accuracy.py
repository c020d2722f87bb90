"""ePSF recovery on GalSim Moffat fields: FWHM within 3 %, EE(2 FWHM) within 2 %, fallbacks."""

from __future__ import annotations

import galsim
import numpy as np
import pytest
from psf_field import BAND_PSF, EPSF_TEST_PARAMS, FEW_STAR_CELL

from phot7dt.pipelines.psf.nodes import build_epsf
from phot7dt.pipelines.psf.stamp_models import growth_curve


@pytest.fixture(scope="module")
def built(psf_field):
    return build_epsf(psf_field.frames, psf_field.flagged_catalog, psf_field.gaiaxp,
                      EPSF_TEST_PARAMS, {}, {})


def true_ee(beta: float, fwhm: float, radius: float) -> float:
    """Fraction of the total flux of a pixel-integrated Moffat within ``radius`` pixels."""
    size = 201
    image = galsim.Moffat(beta=beta, fwhm=fwhm).drawImage(nx=size, ny=size, scale=1.0).array
    return float(growth_curve(image.astype(float), np.array([radius]))[0] * image.sum())


GOOD_CELLS = [(b, r, c) for b, (_, cells) in BAND_PSF.items() for (r, c) in cells
              if (r, c) != FEW_STAR_CELL]


@pytest.mark.parametrize(("band", "row", "col"), GOOD_CELLS)
def test_epsf_fwhm_and_encircled_energy_match_truth(built, band, row, col):
    grid, _, _ = built
    beta, fwhm_by_cell = BAND_PSF[band]
    true_fwhm = fwhm_by_cell[(row, col)]
    choice = grid.choice(band, row, col)
    assert choice.model == "epsf"
    assert choice.nstars >= 10
    assert choice.fwhm_pix == pytest.approx(true_fwhm, rel=0.03)
    ee = growth_curve(choice.stamp, np.array([2 * true_fwhm]))[0]
    assert ee == pytest.approx(true_ee(beta, true_fwhm, 2 * true_fwhm), rel=0.02)


def test_stamps_are_native_odd_centred_unit_sum(built, epsf_params):
    grid, _, _ = built
    for _, choice in grid.items():
        n = choice.stamp.shape[0]
        assert n % 2 == 1
        assert choice.stamp.sum() == pytest.approx(1.0)
        peak = np.unravel_index(np.argmax(choice.stamp), choice.stamp.shape)
        assert peak == (n // 2, n // 2)
        if choice.model == "epsf":
            assert n == epsf_params["final_psf_size"]


def test_few_star_cell_falls_back_with_reason(built):
    grid, summary, _ = built
    r, c = FEW_STAR_CELL
    for band in BAND_PSF:
        choice = grid.choice(band, r, c)
        assert choice.model == "moffat"
        assert choice.nstars == 2
        assert "low-star ePSF: 2 stars used < min_epsf_nstars_for_use=5" in choice.reason
        assert choice.fallback_level == "neighbour_stars"
        assert choice.fallback_nstars > 40
        row = summary[(summary.band == band) & (summary.cell == "r01_c01")].iloc[0]
        assert row.nstars_used == 2 and row.psf_model == "moffat"
        assert row.psf_fallback_level == "neighbour_stars"
        assert row.psf_fallback_nstars == choice.fallback_nstars


def test_saturated_star_is_rejected(built, psf_field):
    _, _, qa = built
    cell = next(r for r in qa if (r.band, r.row, r.col) == ("m500", 0, 0))
    d = np.hypot(cell.candidates.x - 60.0, cell.candidates.y - 60.0)
    assert (cell.candidates.loc[d < 3, "reason"] == "saturated").all()
    assert (d < 3).any()


def test_summary_counts_stars_actually_used(built):
    _, summary, _ = built
    assert (summary.nstars_used <= summary.nstars_extract).all()
    assert (summary.nstars_extract <= summary.nstars_sel).all()
    assert (summary.nstars_used == summary.nstars_extract - summary.nstars_fitfail).all()
