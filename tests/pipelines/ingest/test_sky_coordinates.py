"""Catalog coordinates out of range: one line naming file, column, row and ID, before any work."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phot7dt.pipelines.ingest.nodes import load_input_catalog

PROJECT = Path(__file__).resolve().parents[3]
PATH = "/data/tile/catalog.csv"


def _raw(**columns) -> pd.DataFrame:
    return pd.DataFrame({k: pd.Series(v, dtype="str") for k, v in columns.items()})


@pytest.mark.parametrize("dec", ["95", "-90.0001", "1e3"])
def test_declination_outside_the_sphere_names_file_column_row_and_id(dec):
    raw = _raw(ID=["a", "b", "c"], RA=["150", "150", "150"], DEC=["2", dec, "2"])
    with pytest.raises(ValueError) as err:
        load_input_catalog(raw, PATH)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"input catalog {PATH}: column 'DEC' must be within [-90, 90] deg")
    assert f"first bad value {float(dec)!r} (data row 1, ID 'b'; 1 bad value(s) in all)" in message


def test_declination_on_the_poles_and_missing_values_are_accepted():
    raw = _raw(ID=["n", "s", "m", "i"], RA=["10", "20", "", "30"], DEC=["90", "-90", "nan", "inf"])
    cat = load_input_catalog(raw, PATH)
    assert cat["DEC"].tolist()[:2] == [90.0, -90.0]
    assert np.isnan(cat["RA"][2]) and np.isnan(cat["DEC"][2]) and np.isinf(cat["DEC"][3])


def test_right_ascension_is_wrapped_into_0_360_with_a_warning(caplog):
    raw = _raw(ID=["p", "q", "r", "s"], RA=["-0.5", "360", "725.25", "359.5"], DEC=["1"] * 4)
    with caplog.at_level(logging.WARNING):
        cat = load_input_catalog(raw, PATH)
    assert cat["RA"].tolist() == [359.5, 0.0, 5.25, 359.5]
    assert "column 'RA' outside [0, 360) deg, wrapped modulo 360" in caplog.text
    assert "first wrapped value -0.5 (data row 0, ID 'p'; 3 wrapped value(s) in all)" in caplog.text


def test_tiny_negative_right_ascension_wraps_to_zero_not_360():
    cat = load_input_catalog(_raw(ID=["t"], RA=["-1e-15"], DEC=["0"]), PATH)
    assert 0.0 <= cat["RA"][0] < 360.0


def test_kedro_run_stops_before_any_work(tiny_field, tmp_path):
    catalog = pd.read_csv(tiny_field.catalog_csv, dtype=str, keep_default_na=False)
    catalog.loc[3, "DEC"] = "95"
    bad = tmp_path / "bad_catalog.csv"
    catalog.to_csv(bad, index=False)
    work_dir = tmp_path / "out"
    params = (
        f"input_catalog={bad},image_list={tiny_field.image_list},"
        f"gaiaxp_synphot={tiny_field.gaiaxp_csv},work_dir={work_dir}"
    )
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg",
           "KEDRO_LOGGING_CONFIG": str(PROJECT / "conf" / "logging.yml")}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("kedro")), "run", "--pipeline", "full",
         "--params", params],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode != 0
    expected = (
        f"input catalog {bad}: column 'DEC' must be within [-90, 90] deg; first bad value 95.0 "
        "(data row 3, ID '004'; 1 bad value(s) in all)"
    )
    assert expected in result.stdout + result.stderr
    # no node output (frames, white stack, catalogs, plots live in the numbered data layers);
    # run records such as run.log or run_manifest.json may exist
    written = [str(p.relative_to(work_dir)) for p in work_dir.rglob("*") if p.is_file()]
    assert [p for p in written if p[:2].isdigit()] == [], written
