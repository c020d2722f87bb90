"""The true PSF: FWHM and shear varying continuously, and ``true_psf_image`` versus renders."""

from __future__ import annotations

import galsim
import numpy as np
import pandas as pd
import pytest

from phot7dt.pipelines.simulate import nodes
from phot7dt.pipelines.simulate.render import draw_source, true_psf_image
from phot7dt.pipelines.simulate.sky import (
    PSF_SHAPE_COLUMNS,
    moffat_fwhm_at,
    point_source_snr,
    psf_shear_at,
)


def _bands(params: dict, **overrides) -> pd.DataFrame:
    return nodes.draw_sim_bands({**params, **overrides})


def _moments(image: np.ndarray) -> galsim.hsm.ShapeData:
    return galsim.hsm.FindAdaptiveMom(galsim.ImageD(np.ascontiguousarray(image), scale=1.0))


def _half_max_width(image: np.ndarray) -> float:
    """FWHM (px) of the circle with the area of the pixels above half the peak (finely sampled)."""
    return 2.0 * np.sqrt((image > 0.5 * image.max()).sum() / np.pi)


def test_shear_varies_continuously_with_the_configured_amplitude(small_params):
    corners = (np.array([0, 399, 0, 399, 200]), np.array([0, 0, 399, 399, 200]))
    xx, yy = np.meshgrid(np.linspace(0, 399, 41), np.linspace(0, 399, 41))
    for amplitude in (0.03, 0.1):
        bands = _bands(small_params, psf_ellipticity_field_variation=amplitude)
        for _, band in bands.iterrows():
            g = np.hypot(*psf_shear_at(band, xx, yy))
            assert 0.6 * amplitude - 1e-9 <= g.max() <= amplitude + 1e-9
            g1, g2 = psf_shear_at(band, *corners)
            assert np.ptp(g1) + np.ptp(g2) > 0.1 * amplitude  # not a constant
            step = np.abs(np.diff(psf_shear_at(band, xx, yy)[0], axis=1)).max()
            assert step < 0.01 * amplitude * 41  # smooth: no jumps between grid points
    round_bands = _bands(small_params, psf_ellipticity_field_variation=0.0)
    assert (round_bands[list(PSF_SHAPE_COLUMNS)] == 0).all().all()


def test_psf_shape_columns_leave_the_old_band_columns_alone(small_params):
    with_shear = _bands(small_params, psf_ellipticity_field_variation=0.1)
    without = _bands(small_params, psf_ellipticity_field_variation=0.0)
    old = [c for c in with_shear.columns if c not in PSF_SHAPE_COLUMNS]
    pd.testing.assert_frame_equal(with_shear[old], without[old])


def test_true_psf_image_is_a_centred_unit_sum_odd_stamp(small_params):
    band = _bands(small_params).iloc[0]
    psf = true_psf_image(band, 10.0, 390.0, 31)
    assert psf.shape == (31, 31) and psf.sum() == pytest.approx(1.0, abs=1e-12)
    yy, xx = np.mgrid[-15:16, -15:16]
    assert abs((psf * xx).sum()) < 1e-6 and abs((psf * yy).sum()) < 1e-6
    assert np.unravel_index(psf.argmax(), psf.shape) == (15, 15)
    with pytest.raises(ValueError, match="odd"):
        true_psf_image(band, 0.0, 0.0, 24)


@pytest.mark.parametrize("xy", [(200.0, 200.0), (5.0, 395.0), (398.0, 2.0)])
def test_rendered_star_equals_true_psf_image(small_params, xy):
    band = _bands(small_params, psf_ellipticity_field_variation=0.15).iloc[1]
    star = pd.Series({"x_pix": xy[0], "y_pix": xy[1], "TYPE": "STAR"})
    stamp = draw_source(star, 1e7, band)  # bright: drawn at the accuracy of true_psf_image
    ix, iy = int(xy[0]) + 1, int(xy[1]) + 1  # 1-based GalSim pixel of the star
    cut = stamp[galsim.BoundsI(ix - 12, ix + 12, iy - 12, iy + 12)].array.astype(float)
    truth = true_psf_image(band, *xy, 25)
    np.testing.assert_allclose(cut / cut.sum(), truth, rtol=1e-5, atol=1e-8)
    # Shape of the truth: the adaptive-moment shear is the model shear (pixels dilute it a bit).
    g1, g2 = (float(g) for g in psf_shear_at(band, *xy))
    shape = _moments(truth).observed_shape
    assert shape.g1 == pytest.approx(g1, abs=0.1 * abs(g1) + 0.002)
    assert shape.g2 == pytest.approx(g2, abs=0.1 * abs(g2) + 0.002)


def test_true_psf_fwhm_follows_the_field_variation(small_params):
    band = _bands(small_params, psf_fwhm_field_variation=0.3, psf_ellipticity_field_variation=0.0)
    band = band.iloc[0]
    centre, corner = (band["psf_xc"], band["psf_yc"]), (0.0, 0.0)
    expected = moffat_fwhm_at(band, *corner) / moffat_fwhm_at(band, *centre)
    assert abs(expected - 1.0) > 0.1  # a large variation is allowed
    fine = {}
    for name, (x, y) in {"centre": centre, "corner": corner}.items():
        fwhm = float(moffat_fwhm_at(band, x, y))
        moffat = galsim.Moffat(beta=float(band["moffat_beta"]), fwhm=fwhm)
        fine[name] = _half_max_width(moffat.drawImage(nx=401, ny=401, scale=0.05).array) * 0.05
        assert fine[name] == pytest.approx(fwhm, rel=0.01)
    measured = _moments(true_psf_image(band, *corner, 41)).moments_sigma / _moments(
        true_psf_image(band, *centre, 41)
    ).moments_sigma
    assert measured == pytest.approx(expected, rel=0.03)  # pixelisation blurs both a little


def test_point_source_snr_matches_the_pixel_sum(small_params):
    band = _bands(small_params, psf_ellipticity_field_variation=0.0).iloc[2]
    psf = true_psf_image(band, band["psf_xc"], band["psf_yc"], 61)
    fwhm = moffat_fwhm_at(band, band["psf_xc"], band["psf_yc"])
    for flux in (100.0, 1e4, 1e6):
        variance = band["skysig"] ** 2 + flux * psf / band["egain"]
        exact = np.sqrt(((flux * psf) ** 2 / variance).sum())
        analytic = point_source_snr(flux, band["skysig"], band["egain"], fwhm, band["moffat_beta"])
        assert analytic == pytest.approx(exact, rel=0.1)
        if flux == 100.0:  # sky-limited: only pixelisation separates the two
            assert analytic == pytest.approx(exact, rel=0.04)
