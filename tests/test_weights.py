"""weights: the four conventions, no-data pixels, and the chunked reference-weight scan."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits

from phot7dt import weights
from phot7dt.weights import check_weight_settings, summarize_weights, to_invvar, weight_problem

SIGMA = np.array([1.0, 2.0, 4.0])  # ADU
SCALE = 0.5


@pytest.mark.parametrize(
    ("weight_type", "values", "ref"),
    [
        ("relative", 8.0 / SIGMA**2, 8.0),  # w_ref = 8: SKYSIG (1 ADU) where w = 8
        ("inverse_variance", 1.0 / SIGMA**2, None),
        ("variance", SIGMA**2, None),
        ("rms", SIGMA, None),
    ],
)
def test_every_convention_gives_one_over_scaled_sigma_squared(weight_type, values, ref):
    invvar = to_invvar(values, weight_type, skysig=1.0, scale=SCALE, weight_ref=ref)
    assert invvar.dtype == np.float32
    np.testing.assert_allclose(invvar, 1.0 / (SCALE * SIGMA) ** 2, rtol=1e-7)


def test_relative_noise_is_skysig_at_the_reference_weight():
    invvar = to_invvar(np.array([3.0, 0.75]), "relative", skysig=2.0, scale=1.0, weight_ref=3.0)
    np.testing.assert_allclose(invvar**-0.5, [2.0, 4.0])  # SKYSIG * sqrt(w_ref / w)


@pytest.mark.parametrize(
    ("weight_type", "no_data"),
    [
        ("relative", [0.0, np.nan, np.inf]),
        ("inverse_variance", [0.0, np.nan, np.inf]),
        ("variance", [0.0, np.nan, np.inf]),
        ("rms", [0.0, np.nan, np.inf]),
    ],
)
def test_no_data_pixels_get_zero_inverse_variance(weight_type, no_data):
    invvar = to_invvar(np.array(no_data), weight_type, skysig=1.0, scale=1.0, weight_ref=1.0)
    np.testing.assert_array_equal(invvar, 0.0)


def test_unknown_type_and_bad_reference_are_errors():
    with pytest.raises(ValueError, match="weight_type 'ivar'"):
        to_invvar(np.ones(2), "ivar", skysig=1.0, scale=1.0)
    with pytest.raises(ValueError, match="band m400: weight_type 'ivar', expected one of"):
        check_weight_settings("band m400", "ivar", None)
    with pytest.raises(ValueError, match="positive finite weight_ref, got nan"):
        check_weight_settings("band m400", "relative", math.nan)
    with pytest.raises(ValueError, match="positive finite weight_ref, got None"):
        to_invvar(np.ones(2), "relative", skysig=1.0, scale=1.0)
    check_weight_settings("band m400", "rms", None)


def _write(path, data) -> str:
    fits.PrimaryHDU(np.asarray(data, np.float32)).writeto(path)
    return str(path)


def test_scan_counts_and_median_of_sampled_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "REF_SAMPLE_ROWS", 10)  # 35 rows -> every 4th row
    monkeypatch.setattr(weights, "SCAN_CHUNK_ROWS", 6)  # chunks not aligned with the sampling
    data = np.arange(35 * 8, dtype=np.float32).reshape(35, 8) + 1.0
    data[1, 2], data[4, 0], data[8, 1] = -2.5, np.nan, 0.0
    summary = summarize_weights(_write(tmp_path / "w.fits", data))
    assert summary.row_step == 4 and summary.n_pixels == 280
    assert summary.n_negative == 1 and summary.minimum == -2.5
    assert summary.n_usable == 280 - 3
    sampled = data[::4]
    assert summary.reference == np.median(sampled[np.isfinite(sampled) & (sampled > 0)])
    assert "1 negative value(s) (minimum -2.5)" in weight_problem(summary)


def test_scan_falls_back_to_every_row_when_the_sample_is_empty(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "REF_SAMPLE_ROWS", 4)  # 16 rows -> every 4th row: 0, 4, 8, 12
    data = np.zeros((16, 5), np.float32)
    data[5], data[6] = 2.0, 6.0
    summary = summarize_weights(_write(tmp_path / "w.fits", data))
    assert summary.row_step == 1 and summary.reference == 4.0
    assert weight_problem(summary) is None


def test_all_zero_or_non_finite_is_a_problem(tmp_path):
    data = np.zeros((4, 5), np.float32)
    data[0] = np.nan
    data[1] = np.inf
    summary = summarize_weights(_write(tmp_path / "w.fits", data))
    assert summary.n_usable == 0 and math.isnan(summary.reference)
    assert weight_problem(summary).startswith("no positive finite value in 20 pixels")
