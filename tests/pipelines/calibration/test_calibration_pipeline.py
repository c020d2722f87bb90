"""The calibration pipeline run in memory with SequentialRunner."""

from __future__ import annotations

import logging

import numpy as np
from calibration_field import OFFSETS, frame_set, synthetic_field
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from phot7dt.pipelines.calibration import create_pipeline
from phot7dt.provenance import RunProvenance


def test_pipeline_runs_in_memory(caplog):
    merged, gaia, truth = synthetic_field(np.random.default_rng(21))
    catalog = DataCatalog({
        "merged_catalog": MemoryDataset(merged),
        "gaiaxp_synphot": MemoryDataset(gaia),
        "frames": MemoryDataset(frame_set(), copy_mode="assign"),
        "params:zp": MemoryDataset({"clip_sigma": 3.0, "zp_err_method": "bright_std"}),
        "params:image_scaling": MemoryDataset({"zp_ref": 25.0}),
        "params:plotting": MemoryDataset({"detail": "full"}),
        "run_provenance": MemoryDataset(RunProvenance("calibration", {}, [])),
    })
    caplog.set_level(logging.INFO, logger="kedro")
    out = SequentialRunner().run(create_pipeline(), catalog)
    assert "Pipeline execution completed successfully" in caplog.text
    output = out["output_catalog_fits"].load().to_pandas()  # the science table, all rows
    assert len(out["zp_band_plots"].load()) == 2 * len(OFFSETS)
    assert "zp_offset_plot" in out
    table = out["output_catalog_fits"].load()
    assert {f"FLUX_{band}_uJy" for band in OFFSETS} <= set(table.colnames)
    bright = (~truth["outlier"] & merged["fit_is_reliable"]).to_numpy()
    for band in OFFSETS:
        selected = bright & (truth[f"MAG_{band}_true"] < 16.0).to_numpy()
        residual = output[f"MAG_{band}_fit"][selected] - truth[f"MAG_{band}_true"][selected]
        assert abs(np.median(residual)) < 0.02
