"""Patch fits as the fitting stage runs them: one multi-band fit or one per band, and the
forced flux refit after the data were cleaned (:mod:`~phot7dt.pipelines.fitting.cleaning`)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from phot7dt.pipelines.fitting.patch_task import FitConfig

__all__ = ["model_images", "refit_fluxes", "run_fits"]


def band_sources(sources: dict, b: int) -> dict:
    """``sources`` with only band ``b``'s flux columns."""
    return {
        k: (v[:, b : b + 1] if isinstance(v, np.ndarray) and v.ndim == 2 else v)
        for k, v in sources.items()
    }


def run_fits(images, invvar, psfs, sources, cfg: FitConfig, gain, settings=None) -> list:
    """The engine's fits of the patch: one multi-band fit, or one per band in single-band mode
    (``sources``: one table, or one per band), as a list of single-fit results."""
    from phot7dt.scene import fit_patch

    result = fit_patch(images, invvar, psfs, sources, settings or cfg.settings, gain=gain)
    return list(result.fits())


def _fitted_sources(sources: dict, result) -> dict:
    """``sources`` placed at ``result``'s fitted positions and shapes (single-fit result)."""
    out = dict(sources)
    shapes = result.shape_columns()
    fitted = {"x": result.x, "y": result.y, "re_pix": shapes["Re_fit"], "ell": shapes["ELL_fit"],
              "theta_deg": shapes["THETA_fit"], "sersic_n": shapes["sersic_n_fit"]}
    for name, value in fitted.items():
        value = np.asarray(value, float).reshape(-1)
        out[name] = np.where(np.isfinite(value), value, sources[name])
    out["flux"] = np.where(np.isfinite(result.flux), result.flux, sources["flux"])
    return out


def _with_refitted_fluxes(first, forced):
    """``first`` with the fluxes of ``forced``; marginal errors keep ``first``'s position and
    shape term (``marginal**2 - conditional**2``) on top of the new conditional errors."""
    extra = np.clip(first.flux_err_marginal**2 - first.flux_err**2, 0.0, None)
    return dataclasses.replace(
        first, flux=forced.flux, flux_err=forced.flux_err,
        flux_err_marginal=np.sqrt(forced.flux_err**2 + np.nan_to_num(extra)),
        flags=first.flags | forced.flags, lnp=forced.lnp)


def refit_fluxes(data, psfs, sources: dict, results: list, cfg: FitConfig, gain) -> list:
    """Fluxes solved again on cleaned data at the first fits' positions and shapes.

    The fluxes barely move, so one refresh of the source Poisson weights from the
    model (instead of ``poisson_refine_iters``) settles them."""
    forced = cfg.settings.replace(fit_positions=False, fit_shapes=False,
                                  poisson_refine_iters=min(cfg.settings.poisson_refine_iters, 1))
    if cfg.settings.enable_multi_band_simultaneous_fitting:
        placed = _fitted_sources(sources, results[0])
        again = run_fits(data.images, data.invvar, psfs, placed, cfg, gain, forced)
        return [_with_refitted_fluxes(results[0], again[0])]
    placed = [_fitted_sources(band_sources(sources, b), first) for b, first in enumerate(results)]
    again = run_fits(data.images, data.invvar, psfs, placed, cfg, gain, forced)
    return [_with_refitted_fluxes(first, f) for first, f in zip(results, again, strict=True)]


def model_images(results: list) -> np.ndarray:
    """Fitted model of every band, (B, ny, nx) float32."""
    return np.concatenate([r.model_images() for r in results])
