"""Data, fitted model and residual of a patch region (for the plots), and which model images
``fit_patches`` keeps for them.

The model is the one the fit itself made (:class:`~phot7dt.datasets.patch_models.PatchModels`,
saved by ``fit_patches``): the patch's sources and halo sources with their
fitted parameters, rendered through the PSF model the fit used, plus the
background it subtracted. So ``data - model`` is the residual the fit
minimised, whatever ``patch_run.psf_model`` was. The markers are the merged
catalog's sources whose fitted position lies in the region.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd

from phot7dt.config.ingest import SUMMARY_PATCHES
from phot7dt.datasets.patch_models import PatchModels
from phot7dt.frames import Box, FrameSet

__all__ = ["ModelPlan", "PatchView", "patch_view", "rank_key", "summary_patches"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PatchView:
    """Per-band arrays of one region, shape (B, ny, nx), and the sources drawn in it.

    ``sources`` has ``ID``, ``x``, ``y`` (fitted, region px) and ``x0``, ``y0``
    (catalog positions, region px).
    """

    bands: tuple[str, ...]
    box: Box
    data: np.ndarray
    model: np.ndarray
    invvar: np.ndarray
    sources: pd.DataFrame
    has_model: bool = True

    @property
    def residual(self) -> np.ndarray:
        """data - model, (B, ny, nx)."""
        return self.data - self.model

    def white(self, cube: np.ndarray) -> np.ndarray:
        """Inverse-variance weighted mean over bands, (ny, nx); NaN where no band is good."""
        weight = self.invvar.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(weight > 0, (cube * self.invvar).sum(axis=0) / weight, np.nan)


def _column(merged: pd.DataFrame, name: str, band: str) -> pd.Series:
    if name in merged.columns:
        return merged[name]
    return merged[name.replace("_fit", f"_{band}_fit")]


def _sources_in(merged: pd.DataFrame, box: Box, band0: str) -> pd.DataFrame:
    x = _column(merged, "x_pix_white_fit", band0).to_numpy(float) - box.x0
    y = _column(merged, "y_pix_white_fit", band0).to_numpy(float) - box.y0
    ny, nx = box.shape
    inside = (
        np.isfinite(x) & np.isfinite(y) & (x > -0.5) & (x < nx - 0.5) & (y > -0.5) & (y < ny - 0.5)
    )
    rows = merged[inside]
    return rows.assign(_x=x[inside], _y=y[inside])


def patch_view(
    box: Box,
    tag: str,
    merged: pd.DataFrame,
    frames: FrameSet,
    bright_mask: np.ndarray | None,
    models: PatchModels,
) -> PatchView:
    """Cut ``box`` (patch ``tag``'s region) from the frames, with the fit's model of it.

    Without a saved model (a failed patch, or models not kept for it) the model is
    zero and ``has_model`` false.
    """
    bands = tuple(frames.bands)
    mask = None if bright_mask is None else np.asarray(bright_mask[box.slices] > 0)
    data, invvar, _ = frames.cutout(box, extra_mask=mask)
    cube = models.cube(tag, bands)
    if cube is not None and cube.shape != data.shape:
        raise ValueError(f"patch model of {tag}: shape {cube.shape}, region {data.shape}")
    if cube is None:
        logger.warning("patch %s: no fitted model saved; its figures show the data alone", tag)
    rows = _sources_in(merged, box, bands[0])
    sources = pd.DataFrame(
        {
            "ID": rows["ID"].astype(str) if "ID" in rows else rows.index.astype(str),
            "x": rows["_x"],
            "y": rows["_y"],
            "x0": rows["x_pix_white"] - box.x0,
            "y0": rows["y_pix_white"] - box.y0,
        }
    )
    model = np.zeros(data.shape) if cube is None else cube.astype(float)
    return PatchView(bands, box, data.astype(float), model, invvar.astype(float),
                     sources.reset_index(drop=True), cube is not None)


def rank_key(tag: str, converged: pd.Series) -> tuple[int, int, str]:
    """Order of the patches ``plotting.detail: summary`` draws: most unconverged fits first
    (a missing ``opt_converged`` counts as unconverged), then most sources, then tag."""
    ok = converged.astype("boolean").fillna(False).to_numpy(bool)
    return (-int((~ok).sum()), -len(ok), tag)


def summary_patches(merged: pd.DataFrame, tags: list[str]) -> list[str]:
    """The :data:`SUMMARY_PATCHES` first patches by :func:`rank_key`, in tag order."""
    rows = merged[merged["patch_tag"].isin(tags)]
    keys = sorted(rank_key(t, g["opt_converged"]) for t, g in rows.groupby("patch_tag"))
    chosen = sorted(k[2] for k in keys[:SUMMARY_PATCHES])
    if len(chosen) < len(tags):
        logger.info("plotting.detail summary: figures of %d of %d patches (%s); "
                    "plotting.detail: full draws all", len(chosen), len(tags), ", ".join(chosen))
    return chosen


class ModelPlan:
    """Which fitted model images ``fit_patches`` keeps for the QA figures.

    ``patch_bands``: every band of the patches the fitting figures draw -
    all patches (``keep="all"``), the :data:`SUMMARY_PATCHES` first by
    :func:`rank_key` (``"summary"``, chosen as patches finish: a patch pushed out
    loses its images) or none (``"none"``, no patch figures). ``report_band``: the
    report's residual band of every patch (None: no residual montage).

    Parameters
    ----------
    bands : tuple of str
    keep : "all", "summary" or "none"
    report_band : str or None
    """

    def __init__(self, bands: tuple[str, ...], keep: str, report_band: str | None) -> None:
        self.bands, self.keep, self.report_band = tuple(bands), keep, report_band
        self._kept: dict[str, tuple] = {}

    @property
    def task_bands(self) -> tuple[str, ...]:
        """Bands whose model every patch task brings back."""
        if self.keep != "none":
            return self.bands
        return (self.report_band,) if self.report_band in self.bands else ()

    def seen(self, tag: str, converged: pd.Series) -> None:
        """Rank a patch finished earlier (resume), so later patches compete with it."""
        if self.keep == "summary":
            self._kept[tag] = rank_key(tag, converged)
            self._trim()

    def keys(self, tag: str, converged: pd.Series | None) -> tuple[list[str], list[str]]:
        """``<tag>/<band>`` partitions to save for a finished patch, and to remove
        (of it or of a patch it pushed out of the summary set); ``converged``
        None for a failed patch."""
        if converged is None:
            return [], [f"{tag}/{b}" for b in self.bands]
        report = [b for b in self.bands if b == self.report_band]
        if self.keep in ("all", "none"):
            bands = self.bands if self.keep == "all" else report
            return [f"{tag}/{b}" for b in bands], []
        self._kept[tag] = rank_key(tag, converged)
        out = self._trim()
        drop = [f"{t}/{b}" for t in out if t != tag for b in self.bands if b not in report]
        bands = report if tag in out else self.bands
        return [f"{tag}/{b}" for b in bands], drop

    def _trim(self) -> list[str]:
        ranked = sorted(self._kept.values())
        out = [k[2] for k in ranked[SUMMARY_PATCHES:]]
        for t in out:
            del self._kept[t]
        return out
