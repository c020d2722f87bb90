"""gaia_augment nodes on a small field with known Gaia stars."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from gaia_field import WORK_WCS

from phot7dt.pipelines.gaia_augment.nodes import augment_catalog_with_gaia
from phot7dt.pipelines.gaia_augment.selection import gaia_selection_box

SAT = {"enabled": True, "mode": "exclude", "radius_pix": 20.0, "require_all_bands": False}


def flux(mag: float) -> float:
    return 10 ** ((25.0 - mag) / 2.5)


def run(cat, gaia, frames, **zp):
    return augment_catalog_with_gaia(cat, gaia, frames, zp, SAT)


def test_matched_rows_get_their_gaia_source_id(flagged_catalog, gaiaxp, frames):
    out, summary = run(flagged_catalog, gaiaxp, frames)
    ids = dict(zip(out["ID"], out["gaia_source_id"], strict=True))
    assert ids["s1"] == "1001"  # 0.8" away, inside 3"
    assert ids["s2"] == "1002"
    assert ids["s3"] == ""
    assert summary["n_rows_matched"] == 2


def test_every_unmatched_star_in_window_is_injected_once(flagged_catalog, gaiaxp, frames):
    out, summary = run(flagged_catalog, gaiaxp, frames)
    injected = out[out["is_injected_gaia"]]
    assert sorted(injected["ID"]) == ["gaia_1003", "gaia_1004", "gaia_1007"]
    assert injected["ID"].is_unique
    assert (injected["TYPE"] == "STAR").all()
    assert np.allclose(injected["POS_ERR"], 0.1)
    assert list(injected["gaia_source_id"]) == [i.removeprefix("gaia_") for i in injected["ID"]]
    assert summary["n_injected"] == 3
    # input rows first, in their order, then the injected stars with continued row_index
    assert list(out["ID"][:5]) == list(flagged_catalog["ID"])
    assert list(out["row_index"]) == list(range(8))


def test_injected_positions_and_fluxes_follow_wcs_and_synphot(flagged_catalog, gaiaxp, frames):
    out, _ = run(flagged_catalog, gaiaxp, frames)
    star = out.set_index("ID").loc["gaia_1003"]
    x, y = WORK_WCS.all_world2pix([star["RA"]], [star["DEC"]], 0)
    assert star["x_pix_white"] == pytest.approx(x[0]) == pytest.approx(120.0)
    assert star["y_pix_white"] == pytest.approx(y[0]) == pytest.approx(130.0)
    assert star["FLUX_m400"] == pytest.approx(flux(17.4), rel=1e-12)
    assert star["FLUX_m500"] == pytest.approx(flux(17.2), rel=1e-12)
    assert np.isnan(out.set_index("ID").loc["gaia_1007", "FLUX_m500"])


def test_injected_stars_get_their_own_exclusion_flags(flagged_catalog, gaiaxp, frames):
    out = run(flagged_catalog, gaiaxp, frames)[0].set_index("ID")
    near = out.loc["gaia_1004"]  # 2.8 px from the saturated block
    assert (
        near["excluded_saturation"]
        and near["excluded_any"]
        and near["excluded_reason"] == "saturation"
    )
    far = out.loc["gaia_1003"]
    assert not far["excluded_any"] and far["excluded_reason"] == ""


def test_backfill_fills_nan_and_zero_fluxes_of_matched_rows_only(flagged_catalog, gaiaxp, frames):
    out = run(flagged_catalog, gaiaxp, frames)[0].set_index("ID")
    assert out.loc["s2", "FLUX_m400"] == pytest.approx(flux(16.3), rel=1e-12)
    assert out.loc["s2", "FLUX_m500"] == pytest.approx(flux(16.1), rel=1e-12)
    assert out.loc["s1", "FLUX_m400"] == 1000.0  # given fluxes are kept


def test_no_injection_only_matches(flagged_catalog, gaiaxp, frames):
    out, summary = run(flagged_catalog, gaiaxp, frames, inject_gaia_sources=False)
    assert len(out) == len(flagged_catalog) and not out["is_injected_gaia"].any()
    assert list(out["gaia_source_id"][:2]) == ["1001", "1002"]
    assert summary["n_not_injected"] == 3


def test_nan_position_rows_survive_untouched(flagged_catalog, gaiaxp, frames):
    out = run(flagged_catalog, gaiaxp, frames)[0].set_index("ID")
    row = out.loc["s4_no_position"]
    assert np.isnan(row["RA"]) and np.isnan(row["DEC"])
    assert row["gaia_source_id"] == "" and row["excluded_reason"] == "crop"


def test_header_only_gaia_table_changes_nothing_and_warns(flagged_catalog, gaiaxp, frames, caplog):
    out, summary = run(flagged_catalog, gaiaxp.iloc[:0], frames)
    assert len(out) == len(flagged_catalog) and (out["gaia_source_id"] == "").all()
    assert summary["n_gaia_in_box"] == 0
    assert "no GaiaXP star" in caplog.text


def test_g_window_limits_the_stars(flagged_catalog, gaiaxp, frames):
    out, _ = run(flagged_catalog, gaiaxp, frames, gaia_mag_min=13.0, gaia_mag_max=16.2)
    assert sorted(out.loc[out["is_injected_gaia"], "ID"]) == []
    assert list(out["gaia_source_id"][:2]) == ["1001", "1002"]


def test_disabled_stage_passes_catalog_through(flagged_catalog, gaiaxp, frames, caplog):
    caplog.set_level(logging.INFO)
    out, summary = run(flagged_catalog, None, frames, enabled=False)
    assert summary == {"enabled": False, "n_rows": 5}
    pd.testing.assert_frame_equal(out[flagged_catalog.columns], flagged_catalog)
    assert (out["gaia_source_id"] == "").all() and not out["is_injected_gaia"].any()
    assert "zp.enabled is false" in caplog.text


def test_missing_gaia_table_with_zp_enabled_is_a_clear_error(flagged_catalog, frames):
    with pytest.raises(ValueError, match="gaiaxp_synphot.*zp.enabled: false"):
        run(flagged_catalog, None, frames)


def test_gaia_table_without_required_column_names_it(flagged_catalog, gaiaxp, frames):
    with pytest.raises(
        ValueError, match=r"gaiaxp_synphot: missing column\(s\) \['phot_g_mean_mag'\]"
    ):
        run(flagged_catalog, gaiaxp.drop(columns="phot_g_mean_mag"), frames)


@pytest.mark.parametrize(
    ("x", "y", "min_size", "shape", "expected"),
    [
        ([40, 60], [40, 60], 20, (200, 300), (40, 40, 60, 60)),  # sources' extent wins
        ([50, 60], [50, 52], 40, (200, 300), (35, 31, 75, 71)),  # centred, min size
        ([2, 8], [100, 100], 40, (200, 300), (0, 80, 40, 120)),  # shifted right at x = 0
        ([295, 298], [195, 198], 40, (200, 300), (260, 160, 300, 200)),  # shifted in at far edges
        ([10, 20], [10, 20], 3000, (160, 200), (0, 0, 200, 160)),  # clipped: image smaller
        ([np.nan], [np.nan], 50, (100, 100), (25, 25, 75, 75)),  # no position: frame centre
    ],
)
def test_selection_box(x, y, min_size, shape, expected):
    box = gaia_selection_box(np.array(x, float), np.array(y, float), min_size, shape)
    assert (box.x0, box.y0, box.x1, box.y1) == expected
