"""Patch tasks of a run: payload rows, region, bright-mask cut and PSFs of each patch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from phot7dt.config.ingest import SourceSaturationCutParams
from phot7dt.config.patch_run import PatchRunParams
from phot7dt.config.scene import SceneParams, SkyArtefactParams
from phot7dt.frames import FrameSet, roi_box
from phot7dt.pipelines.fitting.patch_task import FitConfig, PatchOutcome, PatchTask, run_patch_task
from phot7dt.psf_grid import PSFChoice, PSFGrid
from phot7dt.scene import FitSettings

__all__ = ["build_tasks", "detach_psfs", "fit_config", "run_detached_task"]


def fit_config(
    bands: list[str],
    key: list[str],
    run: PatchRunParams,
    engine: SceneParams,
    saturation: SourceSaturationCutParams,
    cleaning: SkyArtefactParams | None = None,
) -> FitConfig:
    """Settings shared by the patches of a run.

    The engine's :class:`~phot7dt.scene.FitSettings` take every key of ``patch_run`` and
    ``scene`` that names one of its fields (:meth:`FitSettings.from_sections`).

    In ``source_saturation_cut.mode: fit_wings`` saturated pixels are masked with
    a ring of ``saturation_core_pad_pix``; in ``exclude`` mode without one.
    ``cleaning`` (``sky_and_artefacts``) defaults to the section's defaults.
    """
    settings = FitSettings.from_sections(run.model_dump(), engine.model_dump())
    return FitConfig(
        bands=tuple(bands),
        key=tuple(key),
        settings=settings,
        r_ap=run.r_ap,
        eps_flux=run.eps_flux,
        psf_model=run.psf_model,
        gaussian_mixture_n=run.gaussian_mixture_n,
        min_epsf_nstars_for_use=run.min_epsf_nstars_for_use,
        flag_maxiter_margin=run.flag_maxiter_margin,
        source_poisson_noise=engine.source_poisson_noise,
        flux_err=engine.flux_err,
        saturation_pad_pix=(
            saturation.saturation_core_pad_pix if saturation.mode == "fit_wings" else 0
        ),
        cleaning=cleaning if cleaning is not None else SkyArtefactParams(),
    )


def _check_grid(frames: FrameSet, grid: PSFGrid) -> None:
    if tuple(grid.shape) != tuple(frames.shape):
        raise ValueError(
            f"epsf_grid: PSF grid is for a {grid.shape} frame, the frames are {frames.shape}"
        )
    missing = sorted(set(frames.bands) - set(grid.bands))
    if missing:
        raise ValueError(
            f"epsf_grid: no PSF for band(s) {missing}; grid bands are {list(grid.bands)}"
        )


def build_tasks(  # noqa: PLR0913
    patches: pd.DataFrame,
    payloads: pd.DataFrame,
    frames: FrameSet,
    bright_mask: np.ndarray | None,
    grid: PSFGrid,
    run: PatchRunParams,
    engine: SceneParams,
    saturation: SourceSaturationCutParams,
    key: list[str],
    cleaning: SkyArtefactParams | None = None,
) -> list[PatchTask]:
    """One :class:`PatchTask` per patch holding payload rows, in patch-tag order."""
    _check_grid(frames, grid)
    if bright_mask is not None and tuple(bright_mask.shape) != tuple(frames.shape):
        raise ValueError(
            f"bright_mask: shape {bright_mask.shape} differs from the working frame {frames.shape}"
        )
    config = fit_config(frames.bands, key, run, engine, saturation, cleaning)
    by_tag = patches.set_index("patch_tag")
    tasks = []
    for tag, rows in payloads.groupby("patch_tag", sort=True):
        if tag not in by_tag.index:
            raise ValueError(f"patch_payloads: patch {tag!r} is not in the patches table")
        patch = by_tag.loc[tag]
        roi = roi_box(patch)
        mask = None if bright_mask is None else np.array(bright_mask[roi.slices] > 0)
        psfs = tuple(
            grid.choice(b, int(patch["epsf_r"]), int(patch["epsf_c"])) for b in frames.bands
        )
        tasks.append(
            PatchTask(
                str(tag),
                str(patch["epsf_tag"]),
                roi,
                rows.reset_index(drop=True),
                mask,
                psfs,
                frames,
                config,
            )
        )
    return tasks


def _same(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def detach_psfs(
    tasks: list[PatchTask],
) -> tuple[list[tuple[PatchTask, str]], dict[str, tuple[PSFChoice, ...]]]:
    """Each task without its PSFs plus the key of its PSFs, and the PSFs by key.

    The key is the task's ePSF cell (the patches of a cell share their PSFs), or its
    own patch tag if its PSFs differ from the cell's (never with :func:`build_tasks`).
    The table is what a cluster receives once instead of one copy per patch.
    """
    table: dict[str, tuple[PSFChoice, ...]] = {}
    items = []
    for task in tasks:
        key = task.epsf_tag
        if not _same(table.setdefault(key, task.psfs), task.psfs):
            key = task.tag
            table[key] = task.psfs
        items.append((dataclasses.replace(task, psfs=()), key))
    return items, table


def run_detached_task(
    item: tuple[PatchTask, str], psfs_by_key: dict[str, tuple[PSFChoice, ...]]
) -> PatchOutcome:
    """:func:`~phot7dt.pipelines.fitting.patch_task.run_patch_task` of an item of
    :func:`detach_psfs`, its PSFs put back from the shared table."""
    task, key = item
    return run_patch_task(dataclasses.replace(task, psfs=psfs_by_key[key]))
