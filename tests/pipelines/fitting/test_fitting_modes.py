"""The same fits through a dask LocalCluster; single-band mode's per-band columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
from fitting_field import run_stages


def _subset(baseline, n: int) -> dict:
    tags = sorted(baseline["patch_payloads"]["patch_tag"].unique())[:n]
    payloads = baseline["patch_payloads"]
    return {
        "patches": baseline["patches"],
        "patch_payloads": payloads[payloads["patch_tag"].isin(tags)].reset_index(drop=True),
    }


def _fitted(merged: pd.DataFrame) -> pd.DataFrame:
    fitted = merged.filter(regex=r"^x_pix_white.*_fit$").notna().any(axis=1)
    return merged[fitted].reset_index(drop=True)


def test_dask_local_cluster_gives_the_joblib_catalog(upstream, baseline, tmp_path):
    inputs = _subset(baseline, 3)
    out = run_stages(
        upstream, tmp_path / "patches", patch_run={"dask_scheduler": "local"}, inputs=inputs
    )
    assert out["fit_run_report"]["n_fitted"] == 3
    dask_rows = _fitted(out["merged_catalog"])
    joblib_rows = baseline["merged_catalog"]
    joblib_rows = _fitted(joblib_rows[joblib_rows["ID"].isin(dask_rows["ID"])])
    assert len(dask_rows) > 0
    # only 3 patches were fitted: the other rows have no result, so this catalog is partial
    assert out["merged_catalog"]["catalog_is_partial"].all()
    partial = ["catalog_is_partial"]
    pd.testing.assert_frame_equal(
        dask_rows.drop(columns=partial), joblib_rows.drop(columns=partial)
    )


def test_single_band_mode_writes_per_band_columns(upstream, baseline, tmp_path):
    inputs = _subset(baseline, 2)
    out = run_stages(
        upstream,
        tmp_path / "patches",
        patch_run={"enable_multi_band_simultaneous_fitting": False},
        inputs=inputs,
    )
    merged = _fitted(out["merged_catalog"])
    multi = baseline["merged_catalog"].set_index("ID").loc[merged["ID"]]
    for band in upstream.frames.bands:
        for col in (
            f"x_pix_white_{band}_fit",
            f"RA_{band}_fit",
            f"DEC_{band}_fit",
            f"opt_converged_{band}",
            f"opt_niters_{band}",
            f"flag_bound_stalled_{band}",
        ):
            assert col in merged.columns, col
        flux, ref = merged[f"FLUX_{band}_fit"].to_numpy(), multi[f"FLUX_{band}_fit"].to_numpy()
        bright = ref / multi[f"FLUXERR_{band}_fit"].to_numpy() > 20
        assert np.median(np.abs(flux[bright] / ref[bright] - 1)) < 0.02
    assert "x_pix_white_fit" not in merged.columns
    assert merged["opt_converged"].dtype == "boolean"
    assert merged["stype_fit"].notna().all()
