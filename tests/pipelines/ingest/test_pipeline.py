"""The ingest pipeline: an in-memory run and a real ``kedro run --pipeline ingest``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest
from astropy.io import fits
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog, DatasetError, MemoryDataset
from kedro.runner import SequentialRunner

from phot7dt.datasets import FrameSetDataset, ImageListDataset
from phot7dt.pipelines.ingest import create_pipeline

PROJECT = Path(__file__).resolve().parents[3]
NODES = {
    "load_input_catalog",
    "prepare_frames",
    "check_frames",
    "build_white_stack",
    "flag_sources",
    "write_wcs_snapshot",
    "plot_white_stack",
    "plot_source_overlay",
}


def test_node_names_are_the_interface():
    assert {node.name for node in create_pipeline().nodes} == NODES


def test_in_memory_run(tiny_field, tmp_path, caplog):
    crop = {"margin": 4, "overlay_crop_box": [0, 30, 0, 30]}
    catalog = DataCatalog(
        {
            "input_catalog_raw": MemoryDataset(
                pd.read_csv(tiny_field.catalog_csv, dtype=str, keep_default_na=False)
            ),
            "raw_frames": ImageListDataset(filepath=str(tiny_field.image_list)),
            "frames": FrameSetDataset(filepath=str(tmp_path / "frames.json")),
            "prepared_frames": MemoryDataset(copy_mode="assign"),
            "params:input_catalog": MemoryDataset(str(tiny_field.catalog_csv)),
            "params:image_scaling": MemoryDataset({"zp_ref": 25.0}),
            "params:crop": MemoryDataset(crop),
            "params:checks": MemoryDataset({}),
            "params:source_saturation_cut": MemoryDataset({"mode": "exclude", "radius_pix": 5.0}),
            "params:performance": MemoryDataset({"white_stack_workers": 1}),
            "params:plotting": MemoryDataset({"dpi": 50}),
        }
    )
    caplog.set_level(logging.INFO, logger="kedro")
    pipeline = create_pipeline().to_nodes("flag_sources", "build_white_stack", "write_wcs_snapshot")
    outputs = SequentialRunner().run(pipeline, catalog)
    assert "Pipeline execution completed successfully" in caplog.text
    flagged = outputs["flagged_catalog"].load()
    assert flagged["ID"].tolist() == ["001", "002", "003", "004", "005", "006"]
    assert flagged["excluded_reason"].tolist() == ["", "", "", "", "crop", "saturation"]
    expected_x = tiny_field.sources["x"].to_numpy() - 4
    assert flagged["x_pix_white"].to_numpy()[:4] == pytest.approx(expected_x[:4], abs=1e-6)
    white, _ = outputs["white_stack"].load()
    assert white.shape == (56, 72)


def _outputs(work_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(work_dir)) for p in work_dir.rglob("*") if p.is_file())


def test_kedro_run_ingest_with_inputs_outside_the_repo(tiny_field, tmp_path, monkeypatch):
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "1")
    monkeypatch.chdir(PROJECT)
    work_dir = tmp_path / "out"
    runtime_params = {
        "input_catalog": str(tiny_field.catalog_csv),
        "image_list": str(tiny_field.image_list),
        "gaiaxp_synphot": str(tiny_field.gaiaxp_csv),
        "work_dir": str(work_dir),
        "crop": {"margin": 4},
        "plotting": {"dpi": 40},
    }
    bootstrap_project(PROJECT)
    with KedroSession.create(project_path=PROJECT, runtime_params=runtime_params) as session:
        session.run(pipeline_names=["ingest"])
    assert _outputs(work_dir) == [
        "02_intermediate/flagged_catalog.parquet",
        "02_intermediate/frames.json",
        "02_intermediate/input_catalog.parquet",
        "02_intermediate/wcs.fits",
        "03_primary/white_sigma.fits",
        "03_primary/white_stack.fits",
        "08_reporting/ingest/white_after_crop.png",
        "08_reporting/ingest/white_before_crop.png",
        "08_reporting/ingest/white_overlay.png",
        "run.log",
        "run_manifest.json",
    ]
    manifest = json.loads((work_dir / "run_manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["pipeline"] == "ingest"
    flagged = pd.read_parquet(work_dir / "02_intermediate/flagged_catalog.parquet")
    # fit_wings (the default): the saturated star 006 is kept and flagged, not excluded
    assert not flagged["excluded_saturation"].any()
    assert flagged["saturated_bands"].tolist() == [""] * 5 + [",".join(tiny_field.bands)]
    assert flagged["n_sat_pix_m400"].iloc[5] > 0
    assert (flagged["n_sat_pix_m400"].iloc[:4] == 0).all()
    assert pd.isna(flagged["n_sat_pix_m400"].iloc[4])  # 005 lies in the crop margin: not measured
    assert fits.getheader(work_dir / "02_intermediate/wcs.fits")["CROPX0"] == 4
    assert fits.getdata(work_dir / "03_primary/white_stack.fits").shape == (56, 72)


@pytest.mark.parametrize("key", ["input_catalog", "image_list"])
def test_missing_input_file_is_one_line_naming_it(tiny_field, tmp_path, key):
    runtime_params = {
        "input_catalog": str(tiny_field.catalog_csv),
        "image_list": str(tiny_field.image_list),
        "gaiaxp_synphot": str(tiny_field.gaiaxp_csv),
        "work_dir": str(tmp_path / "out"),
        key: str(tmp_path / "missing.file"),
    }
    bootstrap_project(PROJECT)
    with KedroSession.create(project_path=PROJECT, runtime_params=runtime_params) as session:
        with pytest.raises(DatasetError) as err:
            session.run(pipeline_names=["ingest"])
    message = str(err.value)
    assert "\n" not in message
    assert f"{tmp_path / 'missing.file'}: file not found" in message
