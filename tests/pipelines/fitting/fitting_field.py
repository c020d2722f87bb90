"""The small simulated field, taken through ingest, gaia_augment and masking, for the fitting tests.

The PSF grid is built from the simulator's own PSF model (Moffat FWHM at each
cell centre), so these tests measure the fitting stages alone; the psf stage
has its own recovery tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner

from phot7dt.datasets import FITSImageDataset, FrameSetDataset
from phot7dt.datasets.patch_models import PatchModelsDataset
from phot7dt.datasets.patch_results_dataset import PatchResultsDataset
from phot7dt.frames import FrameSet
from phot7dt.pipelines.calibration import create_pipeline as calibration_pipeline
from phot7dt.pipelines.fitting import create_pipeline as fitting_pipeline
from phot7dt.pipelines.gaia_augment import create_pipeline as gaia_augment_pipeline
from phot7dt.pipelines.ingest import create_pipeline as ingest_pipeline
from phot7dt.pipelines.masking import create_pipeline as masking_pipeline
from phot7dt.pipelines.patching import create_pipeline as patching_pipeline
from phot7dt.pipelines.simulate import create_pipeline as simulate_pipeline
from phot7dt.pipelines.simulate.render import true_psf_image
from phot7dt.pipelines.simulate.sky import moffat_fwhm_at
from phot7dt.psf_grid import PSFChoice, PSFGrid, cell_boxes

PROJECT = Path(__file__).resolve().parents[3]
#: ePSF grid and patches per cell axis of the tests: 2x2 cells of 180 px, 4 patches each.
EPSF_PARAMS = {"epsf_ngrid": 2, "ngrid": 2, "skip_empty_epsf_patches": True, "final_psf_size": 55}


@dataclasses.dataclass(frozen=True)
class UpstreamField:
    """Products of the stages before patching, plus the simulator's truth."""

    raw: Path
    work: Path
    frames: FrameSet
    active_catalog: pd.DataFrame
    bright_mask: tuple
    wcs_snapshot: tuple
    epsf_grid: PSFGrid
    truth: pd.DataFrame


def truth_psf_grid(frames: FrameSet, truth_bands: pd.DataFrame, ngrid: int) -> PSFGrid:
    """The simulator's exact PSF (FWHM, beta and shear) at each cell centre."""
    choices = {}
    for _, band in truth_bands.iterrows():
        for (r, c), box in cell_boxes(frames.shape, ngrid).items():
            xc = (box.x0 + box.x1 - 1) / 2 + frames.crop.x0
            yc = (box.y0 + box.y1 - 1) / 2 + frames.crop.y0
            fwhm = float(moffat_fwhm_at(band, xc, yc))
            stamp = true_psf_image(band, xc, yc, 51)
            choices[(band["band"], r, c)] = PSFChoice(
                "epsf", stamp, fwhm, band["moffat_beta"], 30, "simulated PSF"
            )
    return PSFGrid(frames.shape, ngrid, tuple(frames.bands), choices)


def run_project_pipeline(pipeline: Pipeline, runtime_params: dict[str, Any]) -> None:
    """Run ``pipeline`` with the project's ``sample`` configuration (catalog and parameters)."""
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT / "conf"),
        base_env="base",
        default_run_env="sample",
        runtime_params=runtime_params,
        merge_strategy={"parameters": "soft"},
    )
    catalog = DataCatalog.from_config(loader["catalog"])
    for name, value in loader["parameters"].items():
        catalog[f"params:{name}"] = MemoryDataset(value)
    SequentialRunner().run(pipeline, catalog)


def build_upstream(root: Path, simulate: dict[str, Any] | None = None) -> UpstreamField:
    """Simulate the small preset (``simulate``: overrides) under ``root`` and run ingest,
    gaia_augment and masking on it."""
    raw, work = root / "raw", root / "work"
    params = {
        "sample_dir": str(raw),
        "work_dir": str(work),
        "simulate": {"preset": "small", **(simulate or {})},
        "input_catalog": str(raw / "catalog.csv"),
        "image_list": str(raw / "image_list.txt"),
        "gaiaxp_synphot": str(raw / "gaiaxp_synphot.csv"),
    }
    run_project_pipeline(
        simulate_pipeline().to_nodes(
            "simulate_field", "build_sim_truth", "build_sim_catalog", "build_sim_gaiaxp"
        ),
        params,
    )
    upstream = ingest_pipeline() + gaia_augment_pipeline() + masking_pipeline()
    run_project_pipeline(
        upstream.to_nodes("flag_bright_mask_sources", "write_wcs_snapshot"), params
    )
    truth_bands = pd.read_csv(raw / "truth_bands.csv")
    return load_upstream(
        raw,
        work,
        pd.read_csv(raw / "truth.csv", dtype={"ID": str}),
        lambda frames: truth_psf_grid(frames, truth_bands, EPSF_PARAMS["epsf_ngrid"]),
    )


def load_upstream(
    raw: Path, work: Path, truth: pd.DataFrame, psf_grid: Callable[[FrameSet], PSFGrid]
) -> UpstreamField:
    """The products of ingest, gaia_augment and masking under ``work``, and a PSF grid."""
    frames = FrameSetDataset(str(work / "02_intermediate/frames.json")).load()
    return UpstreamField(
        raw=raw,
        work=work,
        frames=frames,
        active_catalog=pd.read_parquet(work / "03_primary/active_catalog.parquet"),
        bright_mask=FITSImageDataset(str(work / "03_primary/bright_mask.fits")).load(),
        wcs_snapshot=FITSImageDataset(str(work / "02_intermediate/wcs.fits")).load(),
        epsf_grid=psf_grid(frames),
        truth=truth,
    )


class KeptDataset(MemoryDataset):
    """A MemoryDataset the runner does not release, so tests can read intermediate products."""

    def _release(self) -> None:
        pass


KEPT = (
    "patches",
    "patch_payloads",
    "fit_run_report",
    "merged_catalog",
    "fit_status_counts",
)


def run_stages(
    field: UpstreamField,
    results_dir: Path,
    *,
    patch_run: dict | None = None,
    inputs: dict[str, Any] | None = None,
    calibration: dict[str, Any] | None = None,
    sky_and_artefacts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run patching + fitting in memory with the SequentialRunner; returns the kept products.

    ``inputs`` may give ``patches`` and ``patch_payloads``; the run then starts at ``fit_patches``.
    ``calibration`` (``gaiaxp_synphot`` and ``params:zp``) adds the calibration stage; the
    result then also holds ``output_catalog``, ``zp_summary``, the ``pipeline`` run and the
    ``catalog`` (for the end-of-run hook).
    """
    values = {
        "active_catalog": field.active_catalog,
        "frames": field.frames,
        "bright_mask": field.bright_mask,
        "wcs_snapshot": field.wcs_snapshot,
        "epsf_grid": field.epsf_grid,
        "params:epsf": EPSF_PARAMS,
        "params:patches": {},
        "params:patch_inputs": {},
        "params:patch_run": {"max_workers": 2, **(patch_run or {})},
        "params:scene": {},
        "params:source_saturation_cut": {},
        "params:sky_and_artefacts": sky_and_artefacts or {},
        "params:merge": {},
        "params:plotting": {"detail": "full"},  # fitted models of every patch are kept
        "params:report": {},
        "wcs_reference": None,
        **(inputs or {}),
        **(calibration or {}),
    }
    pipeline = patching_pipeline() + fitting_pipeline()
    kept = list(KEPT)
    if calibration:
        pipeline += calibration_pipeline()
        kept += ["output_catalog", "zp_summary"]
    if inputs:
        pipeline = pipeline.from_nodes("fit_patches")
    catalog = DataCatalog({k: MemoryDataset(v, copy_mode="assign") for k, v in values.items()})
    catalog["patch_results"] = PatchResultsDataset(str(results_dir))
    catalog["previous_patch_results"] = PatchResultsDataset(str(results_dir))
    catalog["patch_models"] = PatchModelsDataset(str(models_dir(results_dir)))
    for name in kept:
        if name not in values:
            catalog[name] = KeptDataset(copy_mode="assign")
    SequentialRunner().run(pipeline, catalog)
    out = {name: catalog.load(name) for name in kept}
    out["patch_models"] = catalog.load("patch_models")
    return {**out, "pipeline": pipeline, "catalog": catalog} if calibration else out


def models_dir(results_dir: Path) -> Path:
    """Where :func:`run_stages` keeps the patch models of the results in ``results_dir``."""
    return Path(results_dir).with_name(Path(results_dir).name + "_models")


def drive_fit_patches(fit_patches: Callable, *args, results_dir: Path) -> dict[str, Any]:
    """Run the ``fit_patches`` generator as kedro does, saving every chunk as it comes into
    ``results_dir`` (and its models folder); returns the final run report."""
    results = PatchResultsDataset(str(results_dir))
    models = PatchModelsDataset(str(models_dir(results_dir)))
    chunk = ({}, {}, None)
    for chunk in fit_patches(*args):
        results.save(chunk[0])
        models.save(chunk[1])
    return chunk[2]
