"""The one Fourier shift: exact below the taper, flux-preserving, exact derivative."""

from __future__ import annotations

import numpy as np

from phot7dt.scene import shift_factors
from phot7dt.scene.shift import SHIFT_TAPER


def test_exact_ramp_below_the_taper_and_without_it():
    k = np.fft.fftfreq(33)
    d = np.array([-0.4, 0.0, 0.27])
    exact = np.exp(-2j * np.pi * k[None, :] * d[:, None])
    low = np.abs(k) <= SHIFT_TAPER[0]
    np.testing.assert_allclose(shift_factors(k, d)[:, low], exact[:, low], atol=1e-15)
    np.testing.assert_allclose(shift_factors(k, d, taper=False), exact, atol=1e-15)
    assert np.all(shift_factors(k, [0.0]) == 1.0)  # no shift is exactly nothing
    assert np.all(shift_factors(k, d)[:, 0] == 1.0)  # flux kept


def test_derivative_matches_finite_differences():
    k = np.fft.rfftfreq(25)
    d, h = np.array([-0.33, 0.12, 0.49]), 1e-6
    _, derivative = shift_factors(k, d, derivative=True)
    numeric = (shift_factors(k, d + h) - shift_factors(k, d - h)) / (2 * h)
    np.testing.assert_allclose(derivative, numeric, atol=1e-8)


def test_a_half_pixel_shift_is_real_at_nyquist_both_ways():
    k = np.fft.fftfreq(32)
    nyquist = np.argmax(np.abs(k))
    plus, minus = shift_factors(k, [0.5])[0, nyquist], shift_factors(k, [-0.5])[0, nyquist]
    assert abs(plus.imag) < 1e-15 and abs(plus - minus) < 1e-15
