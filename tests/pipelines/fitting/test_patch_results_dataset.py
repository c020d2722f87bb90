"""PatchResultsDataset: per-patch round trip, atomic writes, tags, discard."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.io import DatasetError

from phot7dt.datasets.patch_results_dataset import PatchResultsDataset


def test_round_trip_tags_and_discard(tmp_path):
    store = PatchResultsDataset(str(tmp_path / "patches")).load()
    table = pd.DataFrame({"ID": ["a", "b"], "FLUX_g_fit": [1.0, 2.0]})
    store.write("r00_c00_pr00_pc01", table, {"seconds": 1.5, "n_sources": 2})
    PatchResultsDataset(str(tmp_path / "patches")).save({"r00_c00_pr00_pc00": (table, {"n": 1})})
    assert store.tags() == ["r00_c00_pr00_pc00", "r00_c00_pr00_pc01"]
    pd.testing.assert_frame_equal(store.read_table("r00_c00_pr00_pc01"), table)
    assert store.read_meta("r00_c00_pr00_pc01") == {"n_sources": 2, "seconds": 1.5}
    store.discard("r00_c00_pr00_pc00")
    assert store.tags() == ["r00_c00_pr00_pc01"]


def test_a_failed_write_leaves_no_result_behind(tmp_path):
    store = PatchResultsDataset(str(tmp_path)).load()

    class Unwritable(pd.DataFrame):
        def to_parquet(self, *args, **kwargs):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        store.write("p1", Unwritable({"ID": ["a"]}), {"n": 1})
    assert not store.has("p1") and store.tags() == []
    assert sorted(p.name for p in (tmp_path / "p1").iterdir()) == ["meta.json"]


def test_bad_tag_and_unreadable_table(tmp_path):
    store = PatchResultsDataset(str(tmp_path)).load()
    with pytest.raises(ValueError, match="patch tag '../x'"):
        store.has("../x")
    (tmp_path / "p2").mkdir()
    (tmp_path / "p2" / "p2_cat_fit.parquet").write_text("not parquet")
    with pytest.raises(DatasetError, match="p2_cat_fit.parquet: cannot read"):
        store.read_table("p2")


def test_read_tables_keeps_the_order_asked_for_and_reports_a_bad_table(tmp_path):
    store = PatchResultsDataset(str(tmp_path)).load()
    tags = [f"p{i:02d}" for i in range(12)]
    for i, tag in enumerate(tags):
        store.write(tag, pd.DataFrame({"ID": [f"s{i}"], "FLUX_g_fit": [float(i)]}), {"n": 1})
    order = tags[::-1]
    got = store.read_tables(order, threads=4)
    assert [t["ID"].iloc[0] for t in got] == [f"s{int(t[1:])}" for t in order]
    (tmp_path / "p05" / "p05_cat_fit.parquet").write_text("not parquet")
    with pytest.raises(DatasetError, match="p05_cat_fit.parquet: cannot read"):
        store.read_tables(tags, threads=4)
