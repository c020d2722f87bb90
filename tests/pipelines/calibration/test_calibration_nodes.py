"""compute_zero_points / apply_zero_points / plot nodes on synthetic fitted catalogs."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
from calibration_field import OFFSETS, ZP_REF, frame_set, synthetic_field
from matplotlib.figure import Figure

from phot7dt.pipelines.calibration.bands import band_wavelength_nm
from phot7dt.pipelines.calibration.nodes import (
    SUMMARY_COLUMNS,
    apply_zero_points,
    compute_zero_points,
    plot_zero_point_offsets,
    plot_zero_points,
)
from phot7dt.pipelines.calibration.plots import stars_off_axes

ZP = {"clip_sigma": 3.0, "clip_max_iters": 10, "zp_err_method": "all_mad"}


@pytest.fixture
def field():
    return synthetic_field(np.random.default_rng(11))


def test_recovers_each_band_offset(field):
    merged, gaia, _ = field
    summary, per_object = compute_zero_points(merged, gaia, frame_set(), ZP)
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert list(summary["band"]) == list(OFFSETS)
    for row in summary.itertuples():
        assert abs(row.zp_offset - OFFSETS[row.band]) < max(0.01, 3 * row.zp_err), row.band
        assert row.zp_median == pytest.approx(ZP_REF + row.zp_offset)
        assert row.n_kept + row.n_clipped == row.n_raw
        assert row.n_nonconverged > 0 and row.reason == ""
        assert row.zp_auto == pytest.approx(24.0 - OFFSETS[row.band])
    kept = per_object[per_object["is_kept"]]
    assert set(per_object["status"]) <= {"kept", "clipped", "nonconverged", "ambiguous"}
    assert not kept["ID"].str.startswith("gal").any()


def test_clipping_and_reliability_keep_bad_stars_out(field):
    merged, gaia, truth = field
    _, per_object = compute_zero_points(merged, gaia, frame_set(), ZP)
    outliers = set(truth.loc[truth["outlier"], "ID"])
    unreliable = set(merged.loc[~merged["fit_is_reliable"], "ID"])
    assert outliers and unreliable
    kept_ids = set(per_object.loc[per_object["is_kept"], "ID"])
    assert not kept_ids & outliers
    assert not kept_ids & unreliable
    statuses = per_object[per_object["ID"].isin(unreliable)]["status"]
    assert (statuses == "nonconverged").all()


def test_calibrated_magnitudes_of_bright_stars_match_truth(field):
    merged, gaia, truth = field
    summary, _ = compute_zero_points(merged, gaia, frame_set(), ZP)
    catalog = apply_zero_points(merged, summary)
    good = (~truth["outlier"] & merged["fit_is_reliable"]).to_numpy()
    for band in OFFSETS:
        bright = good & (truth[f"MAG_{band}_true"] < 16.0).to_numpy()
        residual = catalog[f"MAG_{band}_fit"].to_numpy()[bright] - truth[f"MAG_{band}_true"][bright]
        assert bright.sum() > 20
        assert np.max(np.abs(residual)) < 0.1
        assert abs(np.median(residual)) < 0.02


def test_magnitude_errors_include_the_zero_point_error(field):
    merged, gaia, _ = field
    summary, _ = compute_zero_points(merged, gaia, frame_set(), ZP)
    merged = merged.copy()
    merged.loc[0, "FLUX_m400_fit"] = -5.0
    merged.loc[1, "FLUXERR_m400_fit"] = np.nan
    catalog = apply_zero_points(merged, summary)
    zp_row = summary.set_index("band").loc["m400"]
    flux, fluxerr = merged["FLUX_m400_fit"][2], merged["FLUXERR_m400_fit"][2]
    assert catalog["MAG_m400_fit"][2] == pytest.approx(zp_row.zp_median - 2.5 * np.log10(flux))
    expected = math.hypot(2.5 / math.log(10) * fluxerr / flux, zp_row.zp_err)
    assert catalog["MAGERR_m400_fit"][2] == pytest.approx(expected)
    assert math.isnan(catalog["MAG_m400_fit"][0]) and math.isnan(catalog["MAGERR_m400_fit"][0])
    assert np.isfinite(catalog["MAG_m400_fit"][1]) and math.isnan(catalog["MAGERR_m400_fit"][1])
    assert len(catalog) == len(merged) and list(catalog["ID"]) == list(merged["ID"])


def test_band_without_stars_gets_nan_and_a_reason(field, caplog):
    merged, gaia, _ = field
    merged = merged.copy()
    merged["FLUX_r_fit"] = np.where(merged["ID"].str.startswith("gaia"), np.nan,
                                    merged["FLUX_r_fit"])
    gaia = gaia.drop(columns="mag_m525")
    with caplog.at_level(logging.WARNING):
        summary, _ = compute_zero_points(merged, gaia, frame_set(), ZP)
    rows = summary.set_index("band")
    assert math.isnan(rows.loc["r", "zp_median"]) and rows.loc["r", "n_raw"] == 0
    assert "need 3" in rows.loc["r", "reason"]
    assert math.isnan(rows.loc["m525", "zp_median"])
    assert rows.loc["m525", "reason"] == "gaiaxp_synphot has no column mag_m525"
    assert np.isfinite(rows.loc["m400", "zp_median"])
    assert "[r] no zero point" in caplog.text
    catalog = apply_zero_points(merged, summary)
    assert catalog["MAG_r_fit"].isna().all() and catalog["MAG_m400_fit"].notna().any()


def test_shared_gaia_match_is_ambiguous(field):
    merged, gaia, _ = field
    merged = merged.copy()
    merged.loc[len(merged) - 1, "gaia_source_id"] = merged.loc[0, "gaia_source_id"]
    summary, per_object = compute_zero_points(merged, gaia, frame_set(), ZP)
    shared = per_object[per_object["gaia_source_id"] == merged.loc[0, "gaia_source_id"]]
    assert (shared["status"] == "ambiguous").all() and len(shared) == 2 * len(OFFSETS)
    assert (summary["n_ambiguous"] == 2).all()


def test_disabled_calibration_passes_nominal_zero_point_through(field, caplog):
    merged, gaia, _ = field
    with caplog.at_level(logging.INFO):
        summary, per_object = compute_zero_points(merged, gaia, frame_set(), {"enabled": False})
    assert "zp.enabled is false" in caplog.text
    assert (summary["zp_median"] == ZP_REF).all() and summary["zp_err"].isna().all()
    assert summary["reason"].str.contains("disabled").all() and per_object.empty
    catalog = apply_zero_points(merged, summary)
    flux, fluxerr = merged["FLUX_m525_fit"][3], merged["FLUXERR_m525_fit"][3]
    assert catalog["MAG_m525_fit"][3] == pytest.approx(ZP_REF - 2.5 * np.log10(flux))
    assert catalog["MAGERR_m525_fit"][3] == pytest.approx(2.5 / math.log(10) * fluxerr / flux)


def test_uses_opt_converged_without_fit_is_reliable_and_rejects_neither(field):
    merged, gaia, _ = field
    summary, _ = compute_zero_points(merged.drop(columns="fit_is_reliable"), gaia, frame_set(), ZP)
    assert summary["zp_median"].notna().all()
    with pytest.raises(ValueError, match="fit_is_reliable' or 'opt_converged"):
        compute_zero_points(merged.drop(columns=["fit_is_reliable", "opt_converged"]), gaia,
                            frame_set(), ZP)
    with pytest.raises(ValueError, match="FLUXERR_m400_fit"):
        compute_zero_points(merged.drop(columns="FLUXERR_m400_fit"), gaia, frame_set(), ZP)


def test_plots_per_band_and_offsets(field):
    merged, gaia, _ = field
    summary, per_object = compute_zero_points(merged, gaia, frame_set(), ZP)
    figures = plot_zero_points(per_object, summary, ZP, {"detail": "full"})
    assert sorted(figures) == sorted(
        [f"zp_vs_mag__{b}.png" for b in OFFSETS] + [f"zp_vs_mag_full__{b}.png" for b in OFFSETS])
    brief = plot_zero_points(per_object, summary, ZP, {"detail": "summary"})
    assert sorted(brief) == sorted(f"zp_vs_mag__{b}.png" for b in OFFSETS)  # constrained only
    n_off = stars_off_axes(per_object[per_object["band"] == "m400"],
                           summary.set_index("band", drop=False).loc["m400"], (10.0, 20.0), 0.25)
    title = brief["zp_vs_mag__m400.png"].axes[0].get_title()
    assert n_off > 0 and f"{n_off} star(s) off axes" in title
    constrained = figures["zp_vs_mag__m400.png"].axes[0]
    assert constrained.get_xlim() == (10.0, 20.0)
    assert constrained.get_ylim()[1] - constrained.get_ylim()[0] == pytest.approx(0.5)
    assert "GaiaXP" in constrained.get_xlabel()
    offsets = plot_zero_point_offsets(summary)
    assert isinstance(offsets, Figure) and "wavelength" in offsets.axes[0].get_xlabel()


def test_band_wavelengths():
    assert band_wavelength_nm("m400") == 400.0
    assert band_wavelength_nm("m887") == 887.0
    assert band_wavelength_nm("r") == pytest.approx(617.6)
    assert math.isnan(band_wavelength_nm("H_alpha"))


def test_summary_round_trips_through_csv(field, tmp_path):
    merged, gaia, _ = field
    summary, _ = compute_zero_points(merged, gaia, frame_set(), ZP)
    path = tmp_path / "zp_summary.csv"
    summary.to_csv(path, index=False)
    reloaded = pd.read_csv(path, dtype={"band": str, "reason": str})
    pd.testing.assert_frame_equal(apply_zero_points(merged, reloaded),
                                  apply_zero_points(merged, summary))
