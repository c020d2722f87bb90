"""End to end on the small simulated field: every row kept, star fluxes and errors against truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fitting_field import EPSF_PARAMS, drive_fit_patches

from phot7dt.datasets.patch_results_dataset import PatchResultStore
from phot7dt.pipelines.fitting import nodes
from phot7dt.pipelines.fitting.status import STATUS_NAMES
from phot7dt.pipelines.patching.nodes import build_patch_payloads, define_patches


def _star_flux_stats(merged: pd.DataFrame, truth: pd.DataFrame, bands: list[str]):
    stars = merged.merge(truth[truth["TYPE"] == "STAR"], on="ID", suffixes=("", "_true"))
    fit = np.concatenate([stars[f"FLUX_{b}_fit"] for b in bands])
    err = np.concatenate([stars[f"FLUXERR_{b}_fit"] for b in bands])
    true = np.concatenate([stars[f"FLUX_{b}_true"] for b in bands])
    bright = np.isfinite(fit) & (true / err > 20)
    ratio = fit[bright] / true[bright] - 1.0
    pull = (fit[bright] - true[bright]) / err[bright]
    robust_std = 1.4826 * np.median(np.abs(pull - np.median(pull)))
    return int(bright.sum()), float(np.median(ratio)), float(robust_std)


def test_every_input_row_is_in_the_merged_catalog(upstream, baseline):
    merged = baseline["merged_catalog"]
    assert merged["ID"].tolist() == upstream.active_catalog["ID"].tolist()
    assert set(merged["fit_status"]) <= set(STATUS_NAMES)
    excluded = merged["excluded_any"].to_numpy(bool)
    assert merged.loc[excluded, "FLUX_m400_fit"].isna().all()
    assert merged.loc[~excluded, "FLUX_m400_fit"].notna().all()
    assert merged.loc[excluded, "opt_converged"].isna().all()


def test_star_fluxes_and_errors_match_truth(upstream, baseline):
    n, bias, pull_std = _star_flux_stats(
        baseline["merged_catalog"], upstream.truth, upstream.frames.bands
    )
    assert n >= 40
    assert abs(bias) < 0.01
    assert 0.8 <= pull_std <= 1.25


def test_fit_patches_stops_its_worker_pool(baseline):
    assert baseline["workers_after"] == []  # idle workers would hold memory to the run's end


def test_converged_fraction(baseline):
    merged = baseline["merged_catalog"]
    fitted = merged[~merged["excluded_any"].to_numpy(bool)]
    assert fitted["opt_converged"].astype(bool).mean() >= 0.95


def test_fitted_positions_and_sky_coordinates(upstream, baseline):
    merged = baseline["merged_catalog"]
    fitted = merged[merged["x_pix_white_fit"].notna()]
    shift = np.hypot(
        fitted["x_pix_white_fit"] - fitted["x_pix_white"],
        fitted["y_pix_white_fit"] - fitted["y_pix_white"],
    )
    assert np.median(shift) < 1.0
    ra, dec = upstream.frames.wcs.all_pix2world(
        fitted["x_pix_white_fit"], fitted["y_pix_white_fit"], 0
    )
    assert fitted["RA_fit"].to_numpy() == pytest.approx(ra, abs=1e-9)
    assert fitted["DEC_fit"].to_numpy() == pytest.approx(dec, abs=1e-9)


def test_run_report_patch_tags_and_psf_audit(baseline):
    report, merged = baseline["fit_run_report"], baseline["merged_catalog"]
    assert report["n_failed"] == 0
    assert (
        report["n_fitted"]
        == report["n_patches"]
        == baseline["patch_payloads"]["patch_tag"].nunique()
    )
    fitted = merged[merged["x_pix_white_fit"].notna()]
    assert (fitted["epsf_tag"] == fitted["patch_tag"].str.slice(0, 7)).all()
    assert (fitted["psf_used_epsf_band_count"] == 4).all()
    assert (fitted["psf_fallback_bands"] == "").all()


def test_nothing_to_fit_still_gives_every_row_and_the_fit_columns(upstream, tmp_path):
    catalog = upstream.active_catalog.assign(excluded_any=True)
    patches = define_patches(catalog, upstream.frames, EPSF_PARAMS, {})
    payloads = build_patch_payloads(patches, catalog, upstream.frames, {}, {})
    store = PatchResultStore(tmp_path)
    report = drive_fit_patches(
        nodes.fit_patches,
        patches,
        payloads,
        upstream.frames,
        upstream.bright_mask,
        upstream.epsf_grid,
        store,
        {},
        {},
        {},
        {},
        {},
        {},
        results_dir=tmp_path,
    )
    merged = nodes.merge_fits(
        catalog, payloads, store, report, upstream.wcs_snapshot, None, upstream.frames, {}, {}
    )
    assert not merged["catalog_is_partial"].any()
    assert report["n_patches"] == 0 and len(merged) == len(catalog)
    for band in upstream.frames.bands:
        assert merged[f"FLUX_{band}_fit"].isna().all()
    assert merged["RA_fit"].isna().all() and not merged["fit_is_reliable"].any()
    assert set(merged["fit_status"]) <= {"excluded_crop", "excluded_saturation"}
