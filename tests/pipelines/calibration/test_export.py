"""The science catalog: µJy fluxes from the zero points, units, descriptions, provenance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phot7dt.output_columns import column_info, undocumented
from phot7dt.pipelines.calibration.export import export_catalog, microjansky_columns
from phot7dt.pipelines.calibration.nodes import apply_zero_points
from phot7dt.provenance import RunProvenance


def _catalog():
    return pd.DataFrame({
        "ID": ["a", "b", "c", "d"],
        "FLUX_m400_fit": [1000.0, -50.0, np.nan, 10.0],
        "FLUXERR_m400_fit": [10.0, 20.0, np.nan, 5.0],
        "FLUX_g_fit": [200.0, 1.0, 3.0, 4.0],
        "FLUXERR_g_fit": [2.0, 1.0, 1.0, 1.0],
        "opt_converged": [True, False, "", True],
    })


def _zp():
    return pd.DataFrame({"band": ["m400", "g"], "zp_median": [24.87, 25.31],
                         "zp_err": [0.004, 0.01]})


def test_microjansky_fluxes_match_the_ab_magnitudes_and_keep_negative_values():
    catalog = apply_zero_points(_catalog(), _zp())
    ujy = microjansky_columns(catalog, _zp())
    # 1000 counts at ZP 24.87 is AB 17.37 = 10**(-0.4 (17.37 - 23.9)) µJy = 409.26 µJy
    assert ujy.loc[0, "FLUX_m400_uJy"] == pytest.approx(10 ** (-0.4 * (17.37 - 23.9)), rel=1e-12)
    assert ujy.loc[1, "FLUX_m400_uJy"] == pytest.approx(-50 * 10 ** (0.4 * (23.9 - 24.87)))
    assert np.isnan(ujy.loc[2, "FLUX_m400_uJy"])
    positive = ujy["FLUX_g_uJy"] > 0
    mags = 23.9 - 2.5 * np.log10(ujy.loc[positive, "FLUX_g_uJy"])
    np.testing.assert_allclose(mags, catalog.loc[positive, "MAG_g_fit"], atol=1e-12)
    np.testing.assert_allclose(ujy["FLUXERR_g_uJy"] / catalog["FLUXERR_g_fit"],
                               10 ** (0.4 * (23.9 - 25.31)))


def test_the_export_carries_units_descriptions_and_the_provenance(tmp_path):
    image = tmp_path / "m400.fits"
    image.write_bytes(b"x" * 1000)
    catalog = apply_zero_points(_catalog(), _zp())
    record = RunProvenance("full", {"zp": {"clip_sigma": 3.0}}, [("image", str(image))])
    table, same, provenance, parameters = export_catalog(catalog, _zp(), record, {"zp_ref": 25.0})
    assert same is table and parameters == {"zp": {"clip_sigma": 3.0}}
    assert str(table["FLUX_m400_uJy"].unit) == "uJy" and str(table["MAG_g_fit"].unit) == "mag"
    assert table["FLUX_m400_fit"].unit is None  # scaled counts: dimensionless, said in TCOMM
    assert "zp_ref" in table["FLUX_m400_fit"].description
    assert table.meta["INBYT001"] == 1000 and len(table.meta["INSHA001"]) == 64
    assert table.meta["ZPBND001"] == "m400" and table.meta["ZPMED001"] == 24.87
    assert provenance["zero_points"]["g"]["zp_err"] == 0.01
    assert provenance["inputs"][0]["sha256"] == table.meta["INSHA001"]
    assert table["opt_converged"].dtype == bool  # flags typed again after the CSV round trip
    assert list(table["opt_converged"].mask) == [False, False, True, False]


def test_every_column_pattern_resolves_to_the_intended_entry():
    assert column_info("FLUX_m400").pattern == "FLUX_{band}"
    assert column_info("FLUX_m400_fit").pattern == "FLUX_{band}_fit"
    assert column_info("FLUXERR_m400_uJy").unit == "uJy"
    assert column_info("psf_fallback_bands").pattern == "psf_{audit}"
    assert undocumented(["ID", "RA_fit", "made_up_column"]) == ["made_up_column"]
