"""Patch grid, halo, base/halo assignment and source initialisation on small synthetic inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phot7dt.frames import Box, Frame, FrameSet
from phot7dt.pipelines.patching.geometry import halo_pix, patch_tag, split_cell
from phot7dt.pipelines.patching.nodes import build_patch_payloads, define_patches
from phot7dt.pipelines.patching.source_init import initial_columns

BANDS = ("m400", "m425")
EPSF = {"epsf_ngrid": 2, "ngrid": 3, "final_psf_size": 21}


def _frames(shape=(100, 120)) -> FrameSet:
    frames = tuple(
        Frame(b, f"/nonexistent/{b}.fits", 0, 25.0, 1.0, 1.0, np.inf, np.inf, 3.0, 1.0)
        for b in BANDS
    )
    return FrameSet(frames, Box(0, 0, shape[1], shape[0]), shape, 25.0, "")


def _catalog() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ID": ["a", "b", "c", "d", "e"],
            "x_pix_white": [5.0, 19.6, 25.0, 100.0, 110.0],
            "y_pix_white": [5.0, 5.0, 10.0, 80.0, 90.0],
            "excluded_any": [False, False, False, False, True],
            "TYPE": ["STAR", "gal", "", "SERSIC", "EXP"],
            "FLUX_m400": [10.0, np.nan, -1.0, 5.0, 1.0],
            "flux_m425_err": [1.0, 1.0, 1.0, np.nan, 1.0],
            "FLUX_M425": [20.0, 3.0, np.nan, 6.0, 1.0],
            "Re": [np.nan, 4.0, np.nan, 2.0, 1.0],
            "Re_ERR": [0.5, 0.5, 0.5, 0.5, 0.5],
        }
    )


def test_halo_split_and_tags():
    assert halo_pix(55, 20) == 29
    assert halo_pix(21, 20) == 20
    boxes = split_cell(Box(0, 0, 61, 50), 3)
    assert boxes[(0, 0)] == Box(0, 0, 20, 16) and boxes[(2, 2)] == Box(40, 32, 61, 50)
    assert sum(b.shape[0] * b.shape[1] for b in boxes.values()) == 61 * 50
    assert patch_tag(5, 2, 4, 0) == "r05_c02_pr04_pc00"
    with pytest.raises(ValueError, match="epsf.ngrid=8"):
        split_cell(Box(0, 0, 7, 50), 8)


def test_define_patches_covers_active_cells_with_clipped_halos():
    patches = define_patches(_catalog(), _frames(), EPSF, {"halo_pix_min": 4})
    # active sources lie in cells (0, 0) and (1, 1); the excluded one does not count
    assert sorted(patches["epsf_tag"].unique()) == ["r00_c00", "r01_c01"]
    assert len(patches) == 2 * 9 and patches["halo_pix"].eq(12).all()
    first = patches.iloc[0]
    assert (first.x0_base, first.x1_base, first.y0_base, first.y1_base) == (0, 20, 0, 16)
    assert (first.x0_roi, first.x1_roi, first.y0_roi, first.y1_roi) == (0, 32, 0, 28)
    assert patches["x1_roi"].max() == 120 and patches["y1_roi"].max() == 100


def test_payloads_assign_each_source_to_one_base_patch():
    catalog, frames = _catalog(), _frames()
    patches = define_patches(catalog, frames, EPSF, {"halo_pix_min": 4})
    payloads = build_patch_payloads(patches, catalog, frames, {"gal_model": "dev"}, {})
    base = payloads[~payloads["is_halo"]]
    assert sorted(base["ID"]) == ["a", "b", "c", "d"]  # excluded "e" is not fitted
    # x = 19.6 lies in pixel 20, the first pixel of the second box (the ePSF cell rule)
    assert base.set_index("ID").loc["b", "patch_tag"] == "r00_c00_pr00_pc01"
    halo = payloads[payloads["is_halo"]]
    assert set(halo["ID"]) <= {"a", "b", "c"}
    row = payloads.iloc[0]
    tag = patches.set_index("patch_tag").loc[row.patch_tag]
    assert row.x_pix_patch == pytest.approx(row.x_pix_white - tag.x0_roi)
    assert payloads["patch_tag"].nunique() == 3  # empty patches skipped


def test_initial_columns_follow_tract7dt_rules():
    init = initial_columns(
        _catalog(), BANDS, gal_model="exp", re_fallback_pix=3.0, sersic_n_init=3.0
    )
    assert init["model_type"].tolist() == ["STAR", "EXP", "EXP", "SERSIC", "EXP"]
    assert np.isnan(init["flux_cat_m400"].iloc[1]) and np.isnan(init["flux_cat_m400"].iloc[2])
    assert init["flux_cat_m425"].tolist()[:2] == [20.0, 3.0]  # case-insensitive FLUX_ column
    assert init["flux_cat_err_m425"].tolist()[:3] == [1.0, 1.0, pytest.approx(np.nan, nan_ok=True)]
    assert init["re_pix"].tolist()[:2] == [3.0, 4.0]
    assert np.isnan(init["re_err"].iloc[0]) and init["re_err"].iloc[1] == 0.5
    assert (init["ell"] == 0.2).all() and (init["theta_deg"] == 90.0).all()  # no ELL/THETA columns
    assert (init["sersic_n"] == 3.0).all()


def test_missing_position_column_is_named():
    with pytest.raises(ValueError, match="active_catalog: missing column 'x_pix_white'"):
        define_patches(_catalog().drop(columns="x_pix_white"), _frames(), EPSF, {})
