"""The psf pipeline in memory (SequentialRunner), with a 2-process worker pool and QA files."""

from __future__ import annotations

import logging

import psutil
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.pandas import CSVDataset
from kedro_datasets.partitions import PartitionedDataset
from matplotlib.figure import Figure
from psf_field import EPSF_TEST_PARAMS

from phot7dt.datasets.psf_grid_dataset import PSFGridDataset
from phot7dt.parallel import shutdown_workers
from phot7dt.pipelines.psf import create_pipeline
from phot7dt.psf_grid import PSFGrid


def test_pipeline_runs_in_parallel_and_writes_qa_figures(psf_field, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    epsf = EPSF_TEST_PARAMS | {"parallel_bands": True, "max_workers": 2}
    plots = PartitionedDataset(path=str(tmp_path / "plots"),
                               dataset="matplotlib.MatplotlibDataset", filename_suffix=".png")
    catalog = DataCatalog({
        "frames": MemoryDataset(psf_field.frames, copy_mode="assign"),
        "flagged_catalog": MemoryDataset(psf_field.flagged_catalog),
        "gaiaxp_synphot": MemoryDataset(psf_field.gaiaxp),
        "params:epsf": MemoryDataset(epsf),
        "params:patch_run": MemoryDataset({"min_epsf_nstars_for_use": 3}),
        "params:moffat_psf": MemoryDataset({"beta": 3.0}),
        "params:plotting": MemoryDataset({"detail": "full"}),
        "epsf_grid": PSFGridDataset(filepath=str(tmp_path / "epsf")),
        "epsf_summary": CSVDataset(filepath=str(tmp_path / "epsf_summary.csv")),
        "epsf_plots": plots,
    })
    SequentialRunner().run(create_pipeline().from_nodes("build_epsf"), catalog)
    assert "with 2 worker(s)" in caplog.text
    workers = [p for p in psutil.Process().children(recursive=True)
               if "resource_tracker" not in " ".join(p.cmdline())]
    assert len(workers) == 2  # the pool stays up for fit_patches
    shutdown_workers()
    grid = catalog.load("epsf_grid")
    summary = catalog.load("epsf_summary")
    assert isinstance(grid, PSFGrid)
    assert len(summary) == 2 * 4
    assert list(summary["band"].unique()) == ["m500", "m650"]
    fallback = grid.choice("m650", 1, 1)
    assert fallback.model == "moffat" and fallback.fallback_level == "neighbour_stars"
    assert abs(fallback.beta - 3.0) < 0.3  # the field's m650 beta, fitted to the stars
    assert "< min_epsf_nstars_for_use=3" in fallback.reason
    names = sorted(p.stem for p in (tmp_path / "plots").glob("*.png"))
    kinds = ["growth", "residuals", "stamps", "star_cutouts", "stars"]
    assert names == sorted(f"{k}_{b}" for k in kinds for b in ("m500", "m650"))


def test_plot_node_returns_lazy_figures(psf_field):
    from phot7dt.pipelines.psf.nodes import build_epsf, plot_epsf_qa

    epsf = EPSF_TEST_PARAMS | {"save_growth_curve": False, "save_residual_diagnostics": False}
    full = {"detail": "full"}
    grid, _, qa = build_epsf(psf_field.frames, psf_field.flagged_catalog, None, epsf, {}, {}, full)
    assert all(r.thumbnail is not None for r in qa if r.status == "ok")
    figures = plot_epsf_qa(grid, qa, epsf, full)
    assert not any(k.startswith(("growth", "residuals")) for k in figures)
    assert {k.split("_")[0] for k in figures} == {"stamps", "stars", "star"}
    summary = plot_epsf_qa(grid, qa, EPSF_TEST_PARAMS, {"detail": "summary"})
    assert sorted(summary) == ["growth_m500", "growth_m650", "stamps_m500", "stamps_m650"]
    fig = figures["stamps_m500"]()
    assert isinstance(fig, Figure)
    image_axes, colorbar_axes = fig.axes  # the 2 x 2 cells in one mosaic image, one colour bar
    (image,) = image_axes.images
    side = max(grid.choice("m500", r, c).stamp.shape[0] for r in range(2) for c in range(2))
    assert image.get_array().shape == (2 * side + 1, 2 * side + 1)
    assert len(image_axes.texts) == 4
    assert colorbar_axes.get_ylabel() == "fraction of the cell's PSF peak (log)"


def test_cell_thumbnails_are_kept_only_for_a_drawn_star_selection_sheet(psf_field):
    from phot7dt.pipelines.psf.nodes import build_epsf

    for plotting, epsf_keys, kept in [({"detail": "summary"}, {}, False),
                                      ({"detail": "full"}, {}, True),
                                      ({"detail": "full"},
                                       {"save_patch_background_diagnostics": False}, False)]:
        _, _, qa = build_epsf(psf_field.frames, psf_field.flagged_catalog, None,
                              EPSF_TEST_PARAMS | epsf_keys, {}, {}, plotting)
        built = [r for r in qa if r.status == "ok"]
        assert built and all((r.thumbnail is not None) == kept for r in built)
