"""Saturated stars fitted from their wings (fit_wings) or excluded (exclude), on a field with truth.

The stars are 1, 2 and 3 mag brighter than saturation in m400/m500 and unsaturated
in m600/m700 (truth / error S/N ~500-650 in every band, see ``saturated_field``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fitting_field import EPSF_PARAMS, run_stages
from saturated_field import BANDS, SATURATED_BANDS, STARS, build_saturated_upstream
from scipy import ndimage

from phot7dt.frames import Box

UNSATURATED_BANDS = [b for b in BANDS if b not in SATURATED_BANDS]
SATURATED_IDS = [s[0] for s in STARS if s[3] is not None]


def _with_truth(merged: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    return merged.merge(truth, on="ID", suffixes=("", "_true")).set_index("ID")


def _ratios(rows: pd.DataFrame, bands) -> np.ndarray:
    return np.array([rows[f"FLUX_{b}_fit"] / rows[f"FLUX_{b}_true"] - 1 for b in bands]).ravel()


def test_saturated_cores_are_flagged_not_excluded(saturated_upstream, saturated_run):
    merged = saturated_run["merged_catalog"].set_index("ID")
    sat = merged.loc[SATURATED_IDS]
    assert not merged["excluded_saturation"].any()
    assert (sat["saturated_bands"] == ",".join(SATURATED_BANDS)).all()
    assert (sat["fit_status"] == "saturated_core").all()
    counts = sat["n_sat_pix_m400"].to_numpy(int)
    assert (counts > 0).all() and (np.diff(counts) > 0).all()  # brighter star, bigger region
    assert (sat[[f"n_sat_pix_{b}" for b in UNSATURATED_BANDS]] == 0).all().all()
    others = merged.drop(index=SATURATED_IDS)
    assert (others["saturated_bands"] == "").all() and (others["fit_status"] == "ok").all()


def test_wing_fluxes_match_truth(saturated_upstream, saturated_run):
    rows = _with_truth(saturated_run["merged_catalog"], saturated_upstream.truth)
    sat = rows.loc[SATURATED_IDS]
    in_saturated = _ratios(sat, SATURATED_BANDS)
    in_unsaturated = _ratios(sat, UNSATURATED_BANDS)
    assert np.all(np.abs(in_saturated) < 0.05) and abs(np.median(in_saturated)) < 0.01
    assert abs(np.median(in_unsaturated)) < 0.01 and np.all(np.abs(in_unsaturated) < 0.02)
    ordinary = _ratios(rows.drop(index=SATURATED_IDS), BANDS)
    assert abs(np.median(ordinary)) < 0.01
    dx = sat["x_pix_white_fit"] - (sat["x"] - saturated_upstream.frames.crop.x0)
    dy = sat["y_pix_white_fit"] - (sat["y"] - saturated_upstream.frames.crop.y0)
    assert np.hypot(dx, dy).max() < 0.1  # the shared position comes from the unmasked data


def test_saturated_cores_and_bleed_trails_get_zero_weight_with_the_pad(saturated_upstream):
    frames = saturated_upstream.frames
    box = Box(60, 110, 110, 170)  # around sat3 (3 mag above saturation), working frame
    _, invvar, saturated = frames.cutout(box, saturation_pad_pix=2)
    _, plain, _ = frames.cutout(box)
    column_runs = saturated[0].sum(axis=0)
    row_runs = saturated[0].sum(axis=1)
    assert column_runs.max() > 2 * row_runs.max()  # a bleed trail longer than the core is wide
    distance = ndimage.distance_transform_edt(~saturated[0])
    assert (invvar[0][distance <= 2] == 0).all()  # saturated pixels, trail and 2 px ring
    assert (invvar[0][distance > 2.5] > 0).all()
    assert (plain[0][saturated[0]] == 0).all() and (plain[0][distance == 1] > 0).all()
    assert not saturated[2].any() and (invvar[2] > 0).all()  # m600: nothing saturates


def test_exclude_mode_excludes_them_as_tract7dt(tmp_path):
    upstream = build_saturated_upstream(tmp_path, "exclude", EPSF_PARAMS["epsf_ngrid"])
    merged = run_stages(upstream, tmp_path / "patches", patch_run={"max_workers": 1})[
        "merged_catalog"
    ].set_index("ID")
    sat = merged.loc[SATURATED_IDS]
    assert sat["excluded_saturation"].all() and (sat["excluded_reason"] == "saturation").all()
    assert (sat["fit_status"] == "excluded_saturation").all()
    assert sat[[f"FLUX_{b}_fit" for b in BANDS]].isna().all().all()
    assert merged.drop(index=SATURATED_IDS)["FLUX_m400_fit"].notna().all()


def test_single_band_mode_status_per_band(saturated_upstream, tmp_path):
    out = run_stages(
        saturated_upstream,
        tmp_path / "patches",
        patch_run={"max_workers": 1, "enable_multi_band_simultaneous_fitting": False},
    )
    merged = out["merged_catalog"].set_index("ID")
    sat = merged.loc[SATURATED_IDS]
    for band in SATURATED_BANDS:
        assert (sat[f"fit_status_{band}"] == "saturated_core").all()
    for band in UNSATURATED_BANDS:
        assert (sat[f"fit_status_{band}"] == "ok").all()
    assert (sat["fit_status"] == "saturated_core").all()
    counts = out["fit_status_counts"].set_index("fit_status")
    assert counts.loc["saturated_core", "n_m400"] == len(SATURATED_IDS)
    assert counts.loc["ok", "n_m600"] == len(merged)
    rows = _with_truth(out["merged_catalog"], saturated_upstream.truth).loc[SATURATED_IDS]
    assert np.all(np.abs(_ratios(rows, SATURATED_BANDS)) < 0.05)
    assert np.median(np.abs(_ratios(rows, UNSATURATED_BANDS))) < 0.01


@pytest.mark.parametrize("band", SATURATED_BANDS)
def test_wing_fits_keep_a_high_snr_in_saturated_bands(saturated_upstream, saturated_run, band):
    rows = _with_truth(saturated_run["merged_catalog"], saturated_upstream.truth)
    sat = rows.loc[SATURATED_IDS]
    snr = sat[f"FLUX_{band}_true"] / sat[f"FLUXERR_{band}_fit"]
    assert (snr > 100).all()  # wings of a saturated star still measure it well
    assert sat[f"FLUXERR_{band}_fit"].gt(0).all()
