"""One patch fit, as run in a worker process: cut, PSFs, initial fluxes, fit, result table.

:func:`run_patch_task` never raises: an exception becomes a failed
:class:`PatchOutcome` carrying the error and its traceback, so the other
patches of the run finish.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from typing import Any

import numpy as np
import pandas as pd
import sep

from phot7dt.config.scene import SkyArtefactParams
from phot7dt.frames import Box, FrameSet
from phot7dt.pipelines.fitting import cleaning
from phot7dt.pipelines.fitting.psf_audit import build_psfs, psf_audit
from phot7dt.pipelines.fitting.refit import model_images, refit_fluxes, run_fits
from phot7dt.pipelines.fitting.residual_sky import background_image
from phot7dt.pipelines.fitting.result_table import no_fit_table, result_table
from phot7dt.psf_grid import PSFChoice, sky_limited_fraction
from phot7dt.scene import FitSettings

__all__ = ["FitConfig", "PatchOutcome", "PatchTask", "local_psfs", "run_patch_task"]


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """Settings shared by every patch of a run (picklable, small)."""

    bands: tuple[str, ...]
    key: tuple[str, ...]
    settings: FitSettings
    r_ap: float
    eps_flux: float
    psf_model: str
    gaussian_mixture_n: int
    min_epsf_nstars_for_use: int
    flag_maxiter_margin: int
    source_poisson_noise: bool
    flux_err: str
    saturation_pad_pix: int = 0
    cleaning: SkyArtefactParams | None = None


@dataclasses.dataclass(frozen=True)
class PatchTask:
    """What a worker needs for one patch: pixel region, sources and PSFs; no pixels.

    Attributes
    ----------
    tag, epsf_tag : str
        Patch and ePSF-cell tags.
    roi : Box
        Region fitted (base box plus halo), working-frame px.
    sources : DataFrame
        Payload rows of the patch (base and halo sources).
    bright_mask : (ny, nx) bool ndarray or None
        Bright-source mask cut to ``roi``.
    psfs : tuple of PSFChoice
        PSF of each band in the patch's ePSF cell, band order of ``config.bands``.
    frames : FrameSet
        Memory-mapped frames (pickled as paths).
    config : FitConfig
    model_bands : tuple of str
        Bands whose fitted model image the outcome carries back (for the QA figures).
    """

    tag: str
    epsf_tag: str
    roi: Box
    sources: pd.DataFrame
    bright_mask: np.ndarray | None
    psfs: tuple[PSFChoice, ...]
    frames: FrameSet
    config: FitConfig
    model_bands: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class PatchOutcome:
    """Result of one patch: the base sources' table and meta, or the error.

    ``models`` maps each of the task's ``model_bands`` to the fitted model of the
    patch region, (ny, nx) float32: the fitted sources plus the background the
    fit subtracted, so ``data - model`` is the residual the fit minimised.
    """

    tag: str
    table: pd.DataFrame | None
    meta: dict[str, Any]
    error: str = ""
    traceback: str = ""
    models: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """True when the patch raised."""
        return self.table is None


def initial_fluxes(
    images: np.ndarray, invvar: np.ndarray, sources: pd.DataFrame, config: FitConfig
) -> np.ndarray:
    """Initial flux (n, B): catalog ``FLUX_{band}`` or the aperture sum, floored at ``eps_flux``.

    The aperture sum (radius ``r_ap`` px, masked pixels left out, no background
    subtraction, non-finite sums -> 0) is tract7dt's initialisation.
    """
    x = sources["x_pix_patch"].to_numpy(float)
    y = sources["y_pix_patch"].to_numpy(float)
    flux = np.column_stack([sources[f"flux_cat_{b}"].to_numpy(float) for b in config.bands])
    for b in range(len(config.bands)):
        need = ~np.isfinite(flux[:, b])
        if need.any():
            data = np.ascontiguousarray(images[b], dtype=np.float64)
            mask = np.ascontiguousarray(invvar[b] <= 0)
            total, _, _ = sep.sum_circle(data, x[need], y[need], config.r_ap, mask=mask)
            flux[need, b] = np.where(np.isfinite(total), total, 0.0)
    return np.maximum(flux, config.eps_flux)


def source_columns(sources: pd.DataFrame, flux: np.ndarray, bands: tuple[str, ...]) -> dict:
    """The engine's source mapping (see :mod:`phot7dt.scene.sources`)."""
    from phot7dt.scene import PER_SOURCE_COLUMNS  # loads the mixture tables

    cols = {
        name: sources[name].to_numpy(float) for name in PER_SOURCE_COLUMNS if name not in ("x", "y")
    }
    cols["x"] = sources["x_pix_patch"].to_numpy(float)
    cols["y"] = sources["y_pix_patch"].to_numpy(float)
    cols["type"] = sources["model_type"].to_numpy(str)
    # halo sources are reported by their own patch
    cols["target"] = ~sources["is_halo"].to_numpy(bool)
    cols["flux"] = flux
    cols["flux_err"] = np.column_stack(
        [sources[f"flux_cat_err_{b}"].to_numpy(float) for b in bands]
    )
    return cols


def local_psfs(task: PatchTask) -> tuple[PSFChoice, ...]:
    """The band PSFs at the centre of the patch's region: each cell choice's stamp with
    its moment field applied there (:meth:`~phot7dt.psf_grid.PSFChoice.stamp_at`)."""
    x = (task.roi.x0 + task.roi.x1 - 1) / 2.0
    y = (task.roi.y0 + task.roi.y1 - 1) / 2.0
    return tuple(
        c if c is None or c.moment_field is None
        else dataclasses.replace(c, stamp=c.stamp_at(x, y), moment_field=None)
        for c in task.psfs
    )


def _usable_psfs(psfs: list, invvar: np.ndarray) -> list:
    """Bands without a PSF get zero weight and, as a placeholder, another band's PSF."""
    stand_in = next(p for p in psfs if p is not None)
    for b, psf in enumerate(psfs):
        if psf is None:
            invvar[b] = 0.0
    return [stand_in if p is None else p for p in psfs]


def _gain(task: PatchTask) -> np.ndarray | None:
    """Electrons per common-scale count per band, or None without source Poisson noise."""
    if not task.config.source_poisson_noise:
        return None
    return np.array([task.frames.frame(b).egain / task.frames.frame(b).scale
                     for b in task.config.bands])


def _fit(task: PatchTask, meta: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    cfg = task.config
    mask = None if task.bright_mask is None else task.bright_mask.astype(bool)
    images, invvar, saturated = task.frames.cutout(
        task.roi, bands=cfg.bands, extra_mask=mask, saturation_pad_pix=cfg.saturation_pad_pix
    )
    here = local_psfs(task)
    psfs, missing = build_psfs(here, cfg)
    meta.update(psf_audit(task.psfs, psfs, cfg, missing))
    meta["n_saturated_pixels"] = int(saturated.sum())
    if len(missing) == len(cfg.bands):
        return no_fit_table(task, meta), {}
    psfs = _usable_psfs(psfs, invvar)
    gain = _gain(task)
    flux0 = initial_fluxes(images, invvar, task.sources, cfg)
    fwhm = _fwhm(task)
    clean = cfg.cleaning or SkyArtefactParams()
    data = cleaning.prepare(images, invvar, task.sources, flux0, fwhm, gain, clean)
    sources = source_columns(task.sources, flux0, cfg.bands)
    results = run_fits(data.images, data.invvar, psfs, sources, cfg, gain)
    if clean.clip_residuals or clean.local_sky != "none":
        again = cleaning.refine(data, model_images(results), gain, clean,
                                lambda d: refit_fluxes(d, psfs, sources, results, cfg, gain))
        results = again or results
    meta["optimizer"] = [
        _optimizer_summary(band, r) for band, r in zip(_fit_names(cfg), results, strict=True)
    ]
    meta["sky"] = _sky_meta(data, cfg.bands)
    base = ~task.sources["is_halo"].to_numpy(bool)
    xy = (task.sources["x_pix_patch"].to_numpy(float), task.sources["y_pix_patch"].to_numpy(float))
    stamps = [None if c is None else c.stamp for c in here]
    masked = cleaning.masked_psf_fraction(data.invvar, stamps, xy[0][base], xy[1][base])
    kappa = _sky_limited(stamps, np.concatenate([r.flux for r in results], axis=1)[base],
                         data.invvar, gain)
    table = result_table(task, results, meta, _psf_error_lever(kappa, masked))
    radius = cleaning.source_radii(task.sources, fwhm, 2.0)  # 2 FWHM + 3 Re
    table["n_artefact_pix"] = cleaning.masked_pixels_per_source(data.artefacts, *xy, radius)[base]
    return table, _models(task, results, data)


def _models(task: PatchTask, results: list, data: cleaning.Cleaned) -> dict[str, np.ndarray]:
    """The fitted model of each of ``task.model_bands``: sources plus subtracted background."""
    if not task.model_bands:
        return {}
    model = model_images(results) + background_image(data.sky, data.images.shape[1:])
    index = {b: i for i, b in enumerate(task.config.bands)}
    return {b: np.ascontiguousarray(model[index[b]], np.float32)
            for b in task.model_bands if b in index}


def _psf_error_lever(kappa: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """Factor on the PSF-model error, (n, B): ``kappa`` for a fully seen source, rising to
    ``1 / (1 - m)`` as the masked fraction ``m`` of its PSF grows (a source fitted from its
    wings depends on the model's wing fraction, whatever its photon noise); ``m`` <= 0.99."""
    m = np.clip(masked, 0.0, 0.99)
    return (kappa + m * (1.0 - kappa)) / (1.0 - m)


def _sky_limited(stamps: list, flux: np.ndarray, invvar: np.ndarray, gain) -> np.ndarray:
    """How sky-limited each source's PSF fit is, per band, (n, B): ``kappa`` of
    :func:`~phot7dt.psf_grid.sky_limited_fraction` for a point source of its flux
    on the band's median sky noise (1 without source Poisson noise)."""
    from phot7dt.scene import noise_sigma
    kappa = np.ones(flux.shape)
    if gain is None:
        return kappa
    sigma = noise_sigma(invvar)
    for b, stamp in enumerate(stamps):
        if stamp is None or not np.isfinite(sigma[b]):
            continue
        sky_var = float(sigma[b]) ** 2
        f = np.nan_to_num(np.abs(flux[:, b]))[:, None, None]
        weight = 1.0 / (sky_var + f * np.clip(stamp, 0.0, None)[None] / gain[b])
        kappa[:, b] = sky_limited_fraction(weight, np.full(weight.shape, 1.0 / sky_var), stamp)
    return kappa


def _fwhm(task: PatchTask) -> np.ndarray:
    """FWHM per band of the patch's PSFs, px (the header FWHM, 3.5 px, where unknown)."""
    out = []
    for band, choice in zip(task.config.bands, task.psfs, strict=True):
        value = choice.fwhm_pix if choice is not None else float("nan")
        if not (np.isfinite(value) and value > 0):
            value = task.frames.frame(band).fwhm_pix
        out.append(value if np.isfinite(value) and value > 0 else 3.5)
    return np.asarray(out, float)


def _sky_meta(data, bands) -> dict[str, Any]:
    """Background per band (image units at the patch centre, slopes per px), its error,
    pixels clipped as artefacts, and whether the fluxes were solved again."""
    return {
        "level": dict(zip(bands, data.sky.coef[:, 0].round(6).tolist(), strict=True)),
        "slope_x": dict(zip(bands, data.sky.coef[:, 1].round(8).tolist(), strict=True)),
        "slope_y": dict(zip(bands, data.sky.coef[:, 2].round(8).tolist(), strict=True)),
        "error": dict(zip(bands, data.sky.error.round(6).tolist(), strict=True)),
        "artefact_pixels": dict(zip(bands, data.artefacts.sum(axis=(1, 2)).tolist(), strict=True)),
        "refitted": bool(data.refitted),
    }


def _fit_names(cfg: FitConfig) -> list[str]:
    return ["all"] if cfg.settings.enable_multi_band_simultaneous_fitting else list(cfg.bands)


def _optimizer_summary(name: str, result) -> dict[str, Any]:
    stages = result.stages[0]
    return {
        "bands": name,
        "lnp": float(result.lnp[0]),
        "n_bad_pixels": int(result.n_bad_pixels),
        "n_converged": int(result.converged.sum()),
        "stages": [
            {
                "stage": s.name,
                "niters": int(s.niters),
                "converged": bool(s.converged),
                "last_dlnp": float(s.last_dlnp),
                "hit_max_iters": bool(s.hit_max_iters),
                "stalled": bool(s.stalled),
            }
            for s in stages
        ],
    }


def run_patch_task(task: PatchTask) -> PatchOutcome:
    """Fit one patch; errors are returned in the outcome, never raised."""
    start = time.perf_counter()
    settings = task.config.settings
    meta: dict[str, Any] = {
        "patch_tag": task.tag,
        "epsf_tag": task.epsf_tag,
        "roi_bbox": [task.roi.x0, task.roi.x1, task.roi.y0, task.roi.y1],
        "n_sources": int((~task.sources["is_halo"]).sum()),
        "n_halo_sources": int(task.sources["is_halo"].sum()),
        "enable_multi_band_simultaneous_fitting": settings.enable_multi_band_simultaneous_fitting,
    }
    try:
        table, models = _fit(task, meta)
    except Exception as exc:  # noqa: BLE001 - a failing patch must not stop the others
        meta["seconds"] = round(time.perf_counter() - start, 3)
        return PatchOutcome(
            task.tag, None, meta, f"{type(exc).__name__}: {exc}", traceback.format_exc()
        )
    meta["seconds"] = round(time.perf_counter() - start, 3)
    return PatchOutcome(task.tag, table, meta, models=models)
