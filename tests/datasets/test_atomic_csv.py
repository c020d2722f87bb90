"""AtomicCSVDataset: round trip, and a failed save leaves the previous file intact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kedro.io import DatasetError

from phot7dt.datasets.atomic_csv import AtomicCSVDataset


def test_round_trip_and_exists(tmp_path):
    dataset = AtomicCSVDataset(filepath=str(tmp_path / "out" / "table.csv"),
                               load_args={"dtype": {"ID": str}})
    assert not dataset.exists()
    table = pd.DataFrame({"ID": ["007", "010"], "MAG_r_fit": [18.5, float("nan")]})
    dataset.save(table)
    assert dataset.exists()
    loaded = dataset.load()
    assert list(loaded["ID"]) == ["007", "010"] and loaded["MAG_r_fit"].isna()[1]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["table.csv"]


def test_failed_save_keeps_previous_file(tmp_path):
    path = tmp_path / "table.csv"
    dataset = AtomicCSVDataset(filepath=str(path))
    dataset.save(pd.DataFrame({"a": [1, 2]}))

    class Unwritable(pd.DataFrame):
        def to_csv(self, *args, **kwargs):
            raise OSError("disk full")

    with pytest.raises(DatasetError, match="table.csv: could not write"):
        dataset.save(Unwritable({"a": [3]}))
    assert list(pd.read_csv(path)["a"]) == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DatasetError, match="missing.csv"):
        AtomicCSVDataset(filepath=str(tmp_path / "missing.csv")).load()


def test_optional_dataset_reads_none_as_no_file(tmp_path):
    assert AtomicCSVDataset(filepath="None", optional=True).load() is None
    with pytest.raises(DatasetError, match="gaia.csv: file not found; set it to none"):
        AtomicCSVDataset(filepath=str(tmp_path / "gaia.csv"), optional=True).load()


def test_saved_files_are_world_readable(tmp_path):
    path = tmp_path / "table.csv"
    AtomicCSVDataset(filepath=str(path)).save(pd.DataFrame({"a": [1]}))
    assert path.stat().st_mode & 0o044 == 0o044


def test_arrow_writer_reads_back_as_the_pandas_writer(tmp_path):
    frame = pd.DataFrame({
        "ID": ["007", "a,b", 'say "hi"'],
        "FLUX_g_fit": [1.5, np.nan, 1e-300],
        "MAG_g_fit": [21.123456789012345, -0.0, np.inf],
        "opt_converged": [True, False, True],
        "flag": pd.array([True, None, False], dtype="boolean"),
        "n": pd.array([1, None, 3], dtype="Int64"),
        "reason": ["", "crop+saturation", "{\"m400\": \"few stars\"}"],
    })
    load_args = {"dtype": {"ID": str}, "keep_default_na": False, "na_values": [""]}
    tables = {}
    for writer in ("pandas", "arrow"):
        ds = AtomicCSVDataset(filepath=str(tmp_path / f"{writer}.csv"), writer=writer,
                              load_args=load_args)
        ds.save(frame)
        tables[writer] = ds.load()
    pd.testing.assert_frame_equal(tables["arrow"], tables["pandas"])
    assert tables["arrow"]["ID"].tolist() == ["007", "a,b", 'say "hi"']
    assert (tmp_path / "arrow.csv").read_text().splitlines()[0].startswith('"ID","FLUX_g_fit"')


def test_arrow_writer_refuses_save_args_and_unknown_writers(tmp_path):
    with pytest.raises(DatasetError, match="writer 'arrow' takes no save_args"):
        AtomicCSVDataset(filepath=str(tmp_path / "a.csv"), writer="arrow",
                         save_args={"float_format": "%.3f"})
    with pytest.raises(DatasetError, match="writer must be 'pandas' or 'arrow'"):
        AtomicCSVDataset(filepath=str(tmp_path / "a.csv"), writer="polars")


def test_arrow_writer_leaves_tables_it_cannot_write_to_pandas(tmp_path):
    frame = pd.DataFrame({"ID": ["a", "b"], "bands": [["m400", "m412"], []]})
    ds = AtomicCSVDataset(filepath=str(tmp_path / "t.csv"), writer="arrow")
    ds.save(frame)
    assert (tmp_path / "t.csv").read_text().splitlines() == ["ID,bands", "a,\"['m400', 'm412']\"",
                                                            "b,[]"]
