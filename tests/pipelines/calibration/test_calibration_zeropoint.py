"""Zero-point statistics: weighted median, scatter, clipping, honest errors, fallbacks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from phot7dt.pipelines.calibration.zeropoint import (
    K_MAG,
    clip_stars,
    estimate_zero_point,
    intrinsic_scatter,
    reml_intrinsic_scatter,
    weighted_median,
    weighted_median_error,
)

TRUE_ZP = 25.3


def star_sample(rng, n, *, intrinsic=0.02, outlier_fraction=0.0):
    """Per-star zero points of n stars (mag 12-19), sky + source noise, blends."""
    mag = rng.uniform(12.0, 19.0, n)
    flux = 10 ** (0.4 * (TRUE_ZP - mag))
    sigma = np.sqrt(flux + 25.0**2)
    observed = flux * 10 ** (-0.4 * rng.normal(0.0, intrinsic, n)) + rng.normal(0.0, sigma)
    outlier = rng.random(n) < outlier_fraction
    observed[outlier] *= 10 ** (0.4 * rng.uniform(0.3, 1.0, outlier.sum()))
    good = observed > 0
    zp_i = mag[good] + 2.5 * np.log10(observed[good])
    return zp_i, K_MAG * sigma[good] / observed[good], observed[good] / sigma[good], outlier[good]


def estimate(zp_i, sigma, snr, method="all_mad", **kwargs):
    return estimate_zero_point(zp_i, sigma, snr, clip_sigma=3.0, clip_max_iters=10,
                               err_method=method, snr_min=kwargs.get("snr_min", 100.0))


def test_weighted_median_follows_tract7dt_rule():
    values = np.array([3.0, 1.0, 2.0, 10.0])
    assert weighted_median(values, np.ones(4)) == 2.0  # first value at/past half the weight
    assert weighted_median(values, np.array([1.0, 1.0, 1.0, 10.0])) == 10.0


def test_intrinsic_scatter_recovers_extra_scatter_and_is_zero_without_it():
    rng = np.random.default_rng(1)
    sigma = rng.uniform(0.005, 0.05, 4000)
    with_extra = rng.normal(0.0, np.hypot(sigma, 0.03))
    assert intrinsic_scatter(with_extra, sigma) == pytest.approx(0.03, abs=0.003)
    assert reml_intrinsic_scatter(with_extra, sigma) == pytest.approx(0.03, abs=0.002)
    assert intrinsic_scatter(rng.normal(0.0, sigma), sigma) < 0.005
    assert reml_intrinsic_scatter(rng.normal(0.0, sigma), sigma) < 0.004


def test_weighted_median_error_reduces_to_median_standard_error():
    n, sigma = 400, 0.05
    expected = math.sqrt(math.pi / 2) * sigma / math.sqrt(n) * math.sqrt(n / (n - 2))
    assert weighted_median_error(np.full(n, sigma**2)) == pytest.approx(expected, rel=1e-9)


def test_zero_point_recovered_within_001_mag_or_three_sigma():
    rng = np.random.default_rng(2)
    zp_i, sigma, snr, _ = star_sample(rng, 150, outlier_fraction=0.05)
    result = estimate(zp_i, sigma, snr)
    assert abs(result.zp - TRUE_ZP) < max(0.01, 3 * result.zp_err)
    assert 0.0 < result.zp_err < 0.01
    assert result.scatter_intrinsic == pytest.approx(0.02, abs=0.008)


def test_clipping_removes_injected_outliers():
    rng = np.random.default_rng(3)
    zp_i, sigma, snr, outlier = star_sample(rng, 300, outlier_fraction=0.1)
    kept = clip_stars(zp_i, sigma, 3.0, 10)
    assert outlier.sum() > 15
    assert not np.any(kept & outlier)  # every blend is >= 0.3 mag off
    assert kept[~outlier].mean() > 0.97  # and almost no good star is lost


@pytest.mark.parametrize(("n", "intrinsic", "outliers", "method"), [
    (150, 0.02, 0.05, "all_mad"),
    (150, 0.0, 0.0, "all_mad"),
    (60, 0.03, 0.05, "bright_std"),
])
def test_zero_point_error_is_honest_over_realisations(n, intrinsic, outliers, method):
    rng = np.random.default_rng(4)
    pulls = []
    for _ in range(150):
        zp_i, sigma, snr, _ = star_sample(rng, n, intrinsic=intrinsic, outlier_fraction=outliers)
        result = estimate(zp_i, sigma, snr, method)
        pulls.append((result.zp - TRUE_ZP) / result.zp_err)
    pulls = np.asarray(pulls)
    assert abs(np.mean(pulls)) < 0.3
    assert 0.75 < np.std(pulls) < 1.3


def test_bright_std_falls_back_to_lower_snr_then_to_mad():
    rng = np.random.default_rng(5)
    zp_i = TRUE_ZP + rng.normal(0.0, 0.02, 40)
    sigma = np.full(40, 0.005)
    snr = np.r_[np.full(12, 60.0), np.full(28, 10.0)]  # 12 stars at S/N 60 only
    result = estimate(zp_i, sigma, snr, "bright_std", snr_min=100.0)
    assert result.err_method_used == "bright_std"
    assert result.zp_err_snr_used == 50.0 and result.n_zp_err_src == 12
    assert result.zp_err_std == pytest.approx(np.std(zp_i[:12], ddof=1))
    too_faint = estimate(zp_i, sigma, np.full(40, 20.0), "bright_std", snr_min=100.0)
    assert too_faint.err_method_used == "all_mad (fallback)"
    assert math.isnan(too_faint.zp_err_snr_used) and too_faint.n_zp_err_src == 40
    assert np.isfinite(too_faint.zp_err)


def test_tract7dt_raw_mad_column():
    zp_i = np.array([25.0, 25.1, 25.2, 25.3, 25.4])
    result = estimate(zp_i, np.full(5, 0.01), np.full(5, 100.0))
    assert result.zp == 25.2
    assert result.zp_err_mad == pytest.approx(0.1)  # raw median |z - zp|, not x1.4826


def test_too_few_stars_give_nan():
    result = estimate(np.array([25.0, 25.1]), np.array([0.01, 0.01]), np.array([50.0, 50.0]))
    assert math.isnan(result.zp) and math.isnan(result.zp_err)
    empty = estimate(np.array([]), np.array([]), np.array([]))
    assert math.isnan(empty.zp) and empty.kept.size == 0
