"""Public entry points: :func:`fit_patch` and :func:`render_model`."""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np

from ._coarse import coarse_pass, use_coarse
from ._engine import PatchModel
from ._extent import stamp_sizes
from ._model_image import render_model
from ._newton import covariance
from ._noise import noise_sigma
from ._problem import make_problem
from ._render import FFT_SIZES
from ._schedule import fit_scene
from .flags import flag_bit
from .result import FitResult
from .settings import FitSettings
from .sources import SourceTable

__all__ = ["fit_patch", "render_model"]  # (render_model is defined in ._model_image)

logger = logging.getLogger(__name__)


def _validate(images, invvar, psfs, gain):
    images = np.asarray(images)
    invvar = np.asarray(invvar)
    if images.ndim != 3 or invvar.shape != images.shape:
        msg = (
            "images and invvar must both be (n_band, ny, nx); "
            f"got {images.shape} and {invvar.shape}"
        )
        raise ValueError(msg)
    if len(psfs) != images.shape[0]:
        msg = f"need one PSF per band: {len(psfs)} PSFs for {images.shape[0]} bands"
        raise ValueError(msg)
    if gain is not None:
        gain = np.broadcast_to(np.asarray(gain, float), (images.shape[0],)).copy()
        if not np.all(gain > 0):
            msg = f"gain must be positive per band, got {gain!r}"
            raise ValueError(msg)
    return images, invvar, gain


def _needed_pad(prob, sizes, shape):
    ny, nx = shape
    half = sizes // 2
    lo = np.floor(prob.lo[:, :2] + 0.5)
    hi = np.floor(prob.hi[:, :2] + 0.5)
    need = [
        half - lo[:, 0],
        hi[:, 0] + sizes - half - nx,
        half - lo[:, 1],
        hi[:, 1] + sizes - half - ny,
    ]
    return int(max(0, np.max(need, initial=0))) + 1


def _capped_size_fn(model, table, psfs, settings, prob, sigma):
    allowed = [s for s in FFT_SIZES if settings.min_stamp_size <= s <= settings.max_stamp_size]

    def size_fn(params, fluxes):
        kinds = table.type.tolist()
        sizes = stamp_sizes(kinds, params, fluxes, sigma, psfs, settings)
        for s in range(sizes.size):
            while (
                sizes[s] > allowed[0]
                and _needed_pad(_Row(prob, s), sizes[s : s + 1], (model.ny, model.nx)) > model.pad
            ):
                sizes[s] = max(a for a in allowed if a < sizes[s])
        if (
            settings.cross_trunc_frac <= settings.model_trunc_frac
        ):  # core boxes are the whole stamps
            return sizes, sizes.copy()
        core = stamp_sizes(
            kinds, params, fluxes, sigma, psfs, settings, frac=settings.cross_trunc_frac
        )
        return sizes, np.minimum(core, sizes)

    return size_fn


class _Row:
    def __init__(self, prob, s):
        self.lo, self.hi = prob.lo[s : s + 1], prob.hi[s : s + 1]


def _fit_one(images, invvar, psfs, table, settings, gain):
    shape = images.shape[1:]
    prob = make_problem(table, shape, settings)
    sigma = noise_sigma(invvar)
    sizes0 = stamp_sizes(
        table.type.tolist(), prob.mu, np.full(table.flux.shape, np.nan), sigma, psfs, settings
    )
    model = PatchModel(
        images,
        invvar,
        psfs,
        table.type.tolist(),
        table.flux_prior(),
        gain,
        pad=_needed_pad(prob, sizes0, shape),
        sigma=sigma,
    )
    size_fn = _capped_size_fn(model, table, psfs, settings, prob, sigma)
    start = None
    if prob.free_all.any() and use_coarse(settings, sigma):
        start = coarse_pass(images, invvar, psfs, table, settings, gain, sigma, model.pad, size_fn)
    return fit_scene(model, table, settings, prob, size_fn, start=start)


class _Outputs(NamedTuple):
    """The reported errors and flags of one fit (n sources, B bands).

    ``params_err`` (n, 6) in the units of the parameters; ``flux_err`` and
    ``flux_err_marginal`` (n, B) in flux units; ``converged`` (n,) bool;
    ``flags`` (n,) int64 bits of :data:`.flags.FLAGS`.
    """

    params_err: np.ndarray
    flux_err: np.ndarray
    flux_err_marginal: np.ndarray
    converged: np.ndarray
    flags: np.ndarray


def _outputs(fit):
    """Errors (from the final Fisher system) and flags of one :class:`._records.SceneFit`."""
    ev, prob, free, params = fit.ev, fit.prob, fit.free, fit.params
    cov = covariance(ev.fisher + np.diag(prob.prec[free]))
    perr = np.full(params.shape, np.nan)
    perr[free] = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
    marg = ev.flux_var.copy()
    if ev.z_blocks:
        Z = np.stack(ev.z_blocks)  # (band, source, theta)
        marg += np.sum((Z @ cov) * Z, axis=-1)
    return _Outputs(
        perr, np.sqrt(ev.flux_var.T), np.sqrt(marg.T), fit.record.converged, _flags(fit)
    )


def _flags(fit):
    """Flag bits (n,) int64 of one fit: optimiser outcome, parameters on bounds, missing data."""
    ev, rec = fit.ev, fit.record
    flags = np.zeros(fit.params.shape[0], np.int64)
    conv = rec.converged
    bits = {
        "not_converged": ~conv,
        "hit_max_iters": ~conv & rec.hit_max,
        "stalled": ~conv & rec.stalled,
        "early_stage_not_converged": rec.early_bad,
        "shape_unconstrained": rec.shape_frozen,
        "sersic_n_unconstrained": rec.n_frozen,
        "re_runaway": rec.runaway,
    }
    for name, on in bits.items():
        flags |= np.where(on, flag_bit(name), 0)
    for name, on in zip(
        ("pos_at_bound", "re_at_bound", "ell_at_bound", "sersic_n_at_bound"),
        fit.prob.at_bounds(fit.params, fit.free),
        strict=True,
    ):
        flags |= np.where(on, flag_bit(name), 0)
    nodata = ~np.isfinite(ev.flux_var.T)
    flags |= np.where(nodata.any(1), flag_bit("no_data"), 0)
    flags |= np.where(nodata.all(1), flag_bit("fully_masked"), 0)
    if ev.singular:
        flags |= flag_bit("singular_fisher")
    return flags


def fit_patch(images, invvar, psfs, sources, settings=None, *, gain=None):
    """Fit every source of a patch (forced multi-band photometry).

    Parameters
    ----------
    images : ndarray, shape (B, ny, nx)
        Pixel data on a common flux scale (any float dtype; NaN allowed).
    invvar : ndarray, shape (B, ny, nx)
        Inverse variance (sky noise); 0 on masked pixels.  Pixels where the
        image or invvar is non-finite are given zero weight.
    psfs : sequence of PSF, length B
        :class:`PixelizedPSF`, :class:`MoffatPSF`, :class:`GaussianMixturePSF`, ...
    sources : mapping or structured ndarray or SourceTable, or a sequence of B of them
        Source columns (see :mod:`phot7dt.scene.sources`).  In single-band mode
        (``enable_multi_band_simultaneous_fitting: false``) a sequence gives each band
        its own one-band table (e.g. each band's own fitted positions for a forced refit).
    settings : FitSettings or dict, optional
        Dicts go through :meth:`FitSettings.from_mapping` (unknown keys raise).
    gain : float or array_like of shape (B,), optional
        Electrons per image unit; adds the source Poisson variance model/gain.

    Returns
    -------
    FitResult
    """
    if not isinstance(settings, FitSettings):
        settings = FitSettings.from_mapping(settings)
    images, invvar, gain = _validate(images, invvar, psfs, gain)
    if settings.enable_multi_band_simultaneous_fitting:
        table = _table(sources, images.shape[0])
        fit = _fit_one(images, invvar, psfs, table, settings, gain)
        return _result(fit, table, psfs, images.shape[1:])
    parts = []
    for b, band_table in enumerate(_band_tables(sources, images.shape[0])):
        band_gain = None if gain is None else gain[b : b + 1]
        fit = _fit_one(
            images[b : b + 1], invvar[b : b + 1], [psfs[b]], band_table, settings, band_gain
        )
        parts.append(_result(fit, band_table, [psfs[b]], images.shape[1:]))
    return _joined(parts)


def _table(sources, n_band: int) -> SourceTable:
    return sources if isinstance(sources, SourceTable) else SourceTable(sources, n_band)


def _band_tables(sources, n_band: int) -> list[SourceTable]:
    """One one-band table per band: band ``b`` of ``sources``, or the ``b``-th of a sequence."""
    if isinstance(sources, (list, tuple)):
        if len(sources) != n_band:
            raise ValueError(f"sources: {len(sources)} per-band tables for {n_band} bands")
        return [_table(s, 1) for s in sources]
    table = _table(sources, n_band)
    return [table.band(b) for b in range(n_band)]


def _joined(parts: list[FitResult]) -> FitResult:
    """Single-band mode: the per-band results as one (F = B fits); ``fits()`` returns them."""
    first = parts[0]

    def cat(name: str, axis: int) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts], axis=axis)

    return FitResult(
        kinds=first.kinds,
        params=cat("params", 0),
        params_err=cat("params_err", 0),
        flux=cat("flux", 1),
        flux_err=cat("flux_err", 1),
        flux_err_marginal=cat("flux_err_marginal", 1),
        converged=np.logical_and.reduce([p.converged for p in parts]),
        flags=np.bitwise_or.reduce([p.flags for p in parts]),
        stages=tuple(p.stages[0] for p in parts),
        src_niters=cat("src_niters", 0),
        src_last_dlnp=cat("src_last_dlnp", 0),
        lnp=cat("lnp", 0),
        psfs=tuple(p.psfs[0] for p in parts),
        image_shape=first.image_shape,
        n_bad_pixels=sum(p.n_bad_pixels for p in parts),
        parts=tuple(parts),
    )


def _result(fit, table, psfs, shape):
    """The :class:`FitResult` of one fit (F = 1) of the bands of ``psfs``."""
    out = _outputs(fit)
    flux = np.where(np.isfinite(out.flux_err), fit.ev.fluxes.T, np.nan)
    if fit.n_bad_pixels:
        logger.info("%d non-finite pixels were given zero weight", fit.n_bad_pixels)
    return FitResult(
        kinds=np.asarray(table.type),
        params=fit.params[None],
        params_err=out.params_err[None],
        flux=flux,
        flux_err=out.flux_err,
        flux_err_marginal=out.flux_err_marginal,
        converged=out.converged,
        flags=out.flags,
        stages=(fit.stages,),
        src_niters=fit.record.niters[None],
        src_last_dlnp=fit.record.last_dlnp[None],
        lnp=np.array([fit.lnp]),
        psfs=tuple(psfs),
        image_shape=tuple(shape),
        n_bad_pixels=fit.n_bad_pixels,
    )
