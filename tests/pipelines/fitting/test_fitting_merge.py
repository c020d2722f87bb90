"""Merge rules on small tables: left join, duplicate keys, RA+DEC key, status and reliability."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from astropy.wcs import WCS

from phot7dt.catalog_columns import merge_key
from phot7dt.pipelines.fitting import merge, status


def _catalog() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ID": ["1", "2", "3", "4"],
            "RA": [10.0, 10.1, 10.2, 10.3],
            "DEC": [0.0, 0.1, 0.2, 0.3],
            "excluded_crop": [False, False, True, False],
            "excluded_saturation": [False] * 4,
            "excluded_any": [False, False, True, False],
            "affected_by_bright_mask": [False, True, False, False],
        }
    )


def _fits(ids, flux, converged) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame(
        {
            "ID": ids,
            "x_pix_white_fit": np.arange(n, dtype=float),
            "y_pix_white_fit": np.arange(n, dtype=float),
            "FLUX_g_fit": flux,
            "opt_converged": converged,
            "opt_hit_max_iters": [False] * n,
            "opt_niters": [3] * n,
            "flag_bound_stalled": [False] * n,
            "fit_flags": [0] * n,
        }
    )


def test_duplicate_keys_warn_and_keep_the_first(caplog):
    tables = [_fits(["1", "2"], [1.0, 2.0], [True, True]), _fits(["2"], [99.0], [True])]
    with caplog.at_level(logging.WARNING):
        fits = merge.collect_fits(tables, ["ID"])
    assert "1 duplicate key(s)" in caplog.text
    assert fits["FLUX_g_fit"].tolist() == [1.0, 2.0]


def test_left_join_keeps_every_row_and_leaves_unmeasured_values_missing():
    merged = merge.join_fits(_catalog(), _fits(["1", "2"], [1.0, 2.0], [True, False]), ["ID"])
    assert merged["ID"].tolist() == ["1", "2", "3", "4"]
    assert np.isnan(merged["FLUX_g_fit"].iloc[2:]).all()
    assert merged["opt_converged"].dtype == "boolean" and merged[
        "opt_converged"
    ].isna().tolist() == [False, False, True, True]
    assert merged["opt_niters"].dtype == "Int64"


def test_status_and_reliability():
    merged = merge.join_fits(_catalog(), _fits(["1", "2"], [1.0, 2.0], [True, False]), ["ID"])
    patch_of = pd.Series(["p0", "p0", np.nan, "p1"], dtype=object)
    merged["patch_tag"] = patch_of
    statuses = status.row_statuses(merged, ["g"], 0.0, multi_band=True)
    assert statuses.tolist() == ["ok", "not_converged", "excluded_crop", "patch_failed"]
    # 2 is not converged (a soft flag) but lies on the bright mask; 3 excluded; 4 not fitted
    assert merge.reliable(merged).tolist() == [True, False, False, False]


def test_radec_key_and_sky_positions():
    catalog = _catalog().drop(columns="ID")
    assert merge_key(catalog) == ["RA", "DEC"]
    fits = _fits(["x", "y"], [1.0, 2.0], [True, True]).drop(columns="ID")
    fits["RA"], fits["DEC"] = [10.0, 10.1], [0.0, 0.1]
    merged = merge.join_fits(catalog, fits, ["RA", "DEC"])
    assert merged["FLUX_g_fit"].tolist()[:2] == [1.0, 2.0]
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval, wcs.wcs.crpix, wcs.wcs.cdelt = [10.0, 0.0], [1.0, 1.0], [-1e-4, 1e-4]
    merged = merge.sky_positions(merged, wcs)
    assert merged["RA_fit"].iloc[0] == pytest.approx(10.0) and np.isnan(merged["RA_fit"].iloc[3])


def test_join_refuses_keys_that_would_duplicate_rows():
    fits = _fits(["1", "1"], [1.0, 2.0], [True, True])
    with pytest.raises(ValueError, match="merge key"):
        merge.join_fits(_catalog(), fits, ["ID"])


def test_working_wcs_from_the_reference_header_or_a_clear_error():
    from astropy.io import fits

    from phot7dt.pipelines.fitting.merge import working_wcs

    snapshot = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 10.0,
                            "CRVAL2": 20.0, "CDELT1": -1e-4, "CDELT2": 1e-4})
    reference = snapshot.copy()
    reference["CRVAL1"] = 11.0
    assert working_wcs(snapshot, None).wcs.crval[0] == 10.0
    assert working_wcs(snapshot, reference, "ref.fits").wcs.crval[0] == 11.0
    with pytest.raises(ValueError, match="merge.wcs_fits flat.fits: no celestial WCS"):
        working_wcs(snapshot, fits.Header({"NAXIS": 0}), "flat.fits")
