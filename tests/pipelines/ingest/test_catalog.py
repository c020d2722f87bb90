"""load_input_catalog: tract7dt's catalog rules and every bad-input case of input-catalog.md."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from phot7dt.pipelines.ingest.nodes import load_input_catalog

PATH = "/data/tile/catalog.csv"


def _raw(**columns) -> pd.DataFrame:
    return pd.DataFrame({k: pd.Series(v, dtype="str") for k, v in columns.items()})


def test_ids_types_and_numbers():
    raw = _raw(
        ID=["00019", "my_star", "7"],
        RA=["150.1", "150.2", "150.3"],
        DEC=["2.1", "2.2", "2.3"],
        TYPE=["star", " Exp ", ""],
        FLUX_m400=["10.5", "", "nan"],
        FLUX_m400_ERR=["1", "2", "3"],
        Re=["3", "", "4.5"],
        NOTE=["a", "b", "c"],
    )
    cat = load_input_catalog(raw, PATH)
    assert cat["ID"].tolist() == ["00019", "my_star", "7"]
    assert cat["TYPE"].tolist() == ["STAR", "EXP", ""]
    assert cat["RA"].dtype == np.float64 and cat["RA"].tolist() == [150.1, 150.2, 150.3]
    np.testing.assert_array_equal(cat["FLUX_m400"], [10.5, np.nan, np.nan])
    assert cat["FLUX_m400_ERR"].tolist() == [1.0, 2.0, 3.0]
    assert cat["NOTE"].tolist() == ["a", "b", "c"]  # unknown columns kept as text
    assert cat["row_index"].tolist() == [0, 1, 2]


def test_lower_case_coordinates_warn(caplog):
    raw = _raw(ID=["1"], ra=["150.1"], Dec=["2.0"])
    with caplog.at_level(logging.WARNING):
        cat = load_input_catalog(raw, PATH)
    assert {"RA", "DEC"} <= set(cat.columns)
    assert "uses column 'ra' for RA" in caplog.text and "'Dec' for DEC" in caplog.text


def test_missing_ra_dec_is_an_error():
    with pytest.raises(
        ValueError, match=r"input catalog /data/tile/catalog\.csv: must have RA/DEC columns"
    ):
        load_input_catalog(_raw(ID=["1"], RA=["150.0"], DECL=["2.0"]), PATH)


def test_ambiguous_coordinate_columns():
    with pytest.raises(ValueError, match=r"columns \['ra', 'Ra'\] all match 'RA'"):
        load_input_catalog(_raw(ra=["1"], Ra=["1"], DEC=["2"]), PATH)


def test_missing_id_uses_the_row_number(caplog):
    with caplog.at_level(logging.WARNING):
        cat = load_input_catalog(_raw(RA=["150.0", "150.1"], DEC=["2.0", "2.1"]), PATH)
    assert cat["ID"].tolist() == ["0", "1"]
    assert cat["TYPE"].tolist() == ["", ""]
    assert "no ID column" in caplog.text


def test_duplicate_ids_are_listed():
    raw = _raw(ID=["a", "b", "a", "c", "c"], RA=["1"] * 5, DEC=["1"] * 5)
    with pytest.raises(
        ValueError, match=r"catalog\.csv: column 'ID' must be unique; 2 IDs repeat: 'a', 'c'"
    ):
        load_input_catalog(raw, PATH)


def test_blank_id_is_an_error():
    with pytest.raises(ValueError, match=r"column 'ID' is empty in 1 rows \(data rows \[1\]\)"):
        load_input_catalog(_raw(ID=["a", " "], RA=["1", "2"], DEC=["1", "2"]), PATH)


def test_non_numeric_value_names_column_and_value():
    raw = _raw(
        ID=["1", "2", "3"],
        RA=["150", "150", "150"],
        DEC=["2", "2", "2"],
        FLUX_m412=["1", "2", "abc"],
    )
    with pytest.raises(
        ValueError,
        match=r"column 'FLUX_m412' must be numeric; first bad value 'abc' \(data row 2, ID '3'",
    ):
        load_input_catalog(raw, PATH)


def test_non_numeric_coordinate():
    with pytest.raises(
        ValueError, match=r"column 'DEC' must be numeric; first bad value '\+02:00:00'"
    ):
        load_input_catalog(_raw(ID=["1"], RA=["150"], DEC=["+02:00:00"]), PATH)


def test_empty_catalog():
    with pytest.raises(ValueError, match=r"catalog\.csv: no rows \(empty catalog\)"):
        load_input_catalog(_raw(ID=[], RA=[], DEC=[]), PATH)


def test_nan_coordinates_are_kept():
    cat = load_input_catalog(_raw(ID=["1", "2"], RA=["", "150"], DEC=["nan", "2"]), PATH)
    assert len(cat) == 2 and np.isnan(cat["RA"][0]) and np.isnan(cat["DEC"][0])
