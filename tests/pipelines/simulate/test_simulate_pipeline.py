"""The simulate pipeline end to end: in memory with SequentialRunner, and its catalog entries."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.pandas import CSVDataset
from pandas.testing import assert_frame_equal

from phot7dt.datasets import ImageListDataset
from phot7dt.pipelines.simulate import create_pipeline, nodes

PROJECT = Path(__file__).resolve().parents[3]
TABLES = ("sim_truth_bands", "sim_truth", "sim_catalog", "sim_gaiaxp", "sim_truth_defects")
BANDS = ["m400", "m475", "m550", "m625"]


class KeptDataset(MemoryDataset):
    """A MemoryDataset the runner does not empty after its last consumer, to inspect it."""

    def _release(self) -> None:
        pass


def _run(params: dict, folder: Path) -> DataCatalog:
    catalog = DataCatalog(
        {
            "params:simulate": MemoryDataset(params),
            "sim_images": ImageListDataset(filepath=str(folder / "image_list.txt")),
            "sim_sources": MemoryDataset(copy_mode="assign"),
            **{name: KeptDataset(copy_mode="assign") for name in (*TABLES, "sim_quicklook")},
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    return catalog


def test_small_preset_runs_in_seconds_and_writes_the_tile(small_params, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="kedro")
    start = time.perf_counter()
    catalog = _run(small_params, tmp_path / "a")
    elapsed = time.perf_counter() - start
    assert "Pipeline execution completed successfully" in caplog.text
    assert elapsed < 30.0, f"small preset took {elapsed:.1f} s"
    lines = (tmp_path / "a" / "image_list.txt").read_text().splitlines()
    assert [n for n in lines if not n.startswith("#")] == [f"{b}.fits" for b in BANDS]
    frames = ImageListDataset(filepath=str(tmp_path / "a" / "image_list.txt")).load()
    assert [f.header["FILTER"] for f in frames] == BANDS
    truth = catalog.load("sim_truth")
    assert truth["ID"].is_unique and (~truth["in_catalog"]).sum() == 2
    assert catalog.load("sim_quicklook").axes[0].get_xlabel() == "x [pixel]"
    # Deterministic: a second run writes the same tables and pixels.
    again = _run(small_params, tmp_path / "b")
    for name in TABLES:
        assert_frame_equal(catalog.load(name), again.load(name))
    for path in (tmp_path / "a").glob("*.fits"):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()


def test_catalog_entries_follow_sample_dir_and_work_dir(tmp_path):
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT / "conf"),
        base_env="base",
        default_run_env="local",
        runtime_params={"sample_dir": str(tmp_path / "s"), "work_dir": str(tmp_path / "w")},
    )
    entries = loader["catalog"]
    assert entries["sim_images"]["type"] == "phot7dt.datasets.ImageListDataset"
    assert entries["sim_images"]["filepath"] == f"{tmp_path}/s/image_list.txt"
    for name, file in [
        ("sim_catalog", "catalog.csv"),
        ("sim_gaiaxp", "gaiaxp_synphot.csv"),
        ("sim_truth", "truth.csv"),
        ("sim_truth_bands", "truth_bands.csv"),
        ("sim_truth_defects", "truth_defects.csv"),
    ]:
        assert entries[name]["filepath"] == f"{tmp_path}/s/{file}"
    assert entries["sim_quicklook"]["filepath"].startswith(f"{tmp_path}/w/08_reporting/simulate/")
    assert loader["parameters"]["simulate"]["preset"] in {"small", "medium", "large"}


def test_truth_csv_round_trip_keeps_text_ids(small_params, tmp_path):
    catalog = _run(small_params, tmp_path)
    truth = catalog.load("sim_truth")
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT / "conf"),
        base_env="base",
        default_run_env="local",
        runtime_params={"sample_dir": str(tmp_path)},
    )
    config = loader["catalog"]["sim_truth"]
    dataset = CSVDataset(
        filepath=config["filepath"], load_args=config["load_args"], save_args=config["save_args"]
    )
    dataset.save(truth)
    back = dataset.load()
    assert back["ID"].tolist() == truth["ID"].tolist()
    assert back["ID"].str.startswith("0").any()
    gaia = back["gaia_source_id"].fillna("")
    assert (gaia == truth["gaia_source_id"]).all()
    assert pd.api.types.is_bool_dtype(back["in_catalog"])


def test_defects_survive_the_csv_round_trip(small_params, tmp_path):
    defects = {"hot_pixels": 3, "hot_columns": 1, "cosmic_rays": 4, "satellite_trails": 1}
    params = {**small_params, "noise": False, "defects": defects}
    catalog = _run(params, tmp_path)
    table = catalog.load("sim_truth_defects")
    assert len(table) == 4 * (3 + 1 + 4) + 1
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT / "conf"),
        base_env="base",
        default_run_env="local",
        runtime_params={"sample_dir": str(tmp_path)},
    )
    config = loader["catalog"]["sim_truth_defects"]
    dataset = CSVDataset(
        filepath=config["filepath"], load_args=config["load_args"], save_args=config["save_args"]
    )
    dataset.save(table)
    back = dataset.load()
    assert_frame_equal(back, table, check_exact=False, rtol=1e-14)
    bands = catalog.load("sim_truth_bands")
    sources = nodes.draw_sim_sources(bands, params)
    written = ImageListDataset(filepath=str(tmp_path / "image_list.txt")).load()
    again = nodes.simulate_field(sources, bands, params, back)
    for frame in written:
        band = frame.header["FILTER"]
        np.testing.assert_allclose(np.asarray(frame.data), again[band][0], rtol=1e-6, atol=1e-4)
