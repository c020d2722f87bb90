"""The one record a patch fit returns: :class:`FitResult`.

Shapes: n = sources, B = bands, F = independent fits (1 in multi-band mode,
B in single-band mode).  Per-fit arrays keep the F axis; the convenience
properties drop it in multi-band mode.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .ellipse import soft_to_columns
from .flags import decode_flags, flag_bit

__all__ = ["FitResult"]

_STYPE = {"STAR": "star", "EXP": "exp", "DEV": "dev", "SERSIC": "sersic"}


@dataclasses.dataclass(frozen=True, eq=False)
class FitResult:
    """Fitted parameters, errors and convergence of one patch.

    Attributes
    ----------
    kinds : ndarray of str, shape (n,)
        STAR / EXP / DEV / SERSIC.
    params, params_err : ndarray, shape (F, n, 6)
        (x, y [px], log r_e [ln px], ee1, ee2, sersic_n) and their errors from
        the inverse of the full nonlinear Fisher matrix (fluxes profiled out,
        neighbours included); NaN where a parameter was not free.
    flux, flux_err : ndarray, shape (n, B)
        Fluxes and errors from the inverse of each band's flux Fisher block
        (at the fitted positions/shapes; blended neighbours included).
    flux_err_marginal : ndarray, shape (n, B)
        Flux errors that also include the uncertainty of positions/shapes.
    converged : ndarray of bool, shape (n,)
        Per-source convergence (see :mod:`._lm`), AND over fits.
    flags : ndarray of int64, shape (n,)
        OR of :data:`phot7dt.scene.flags.FLAGS` bits.
    stages : tuple of tuple of StageInfo
        Per fit, the stages run (the last one gives the ``opt_*`` numbers).
    lnp : ndarray, shape (F,)
        Final ln posterior of each fit.
    psfs : tuple
        The PSFs used (for :meth:`model_images`).
    image_shape : tuple of int
        (ny, nx) of the patch.
    n_bad_pixels : int
        Non-finite pixels that were given zero weight.
    src_niters : ndarray of int, shape (F, n), optional
        LM iterations of each source's group in the last stage it took part in
        (0 for forced fits).
    src_last_dlnp : ndarray, shape (F, n), optional
        Last accepted ln P gain of each source's group in that stage.
    parts : tuple of FitResult
        Single-band mode: the result of each band's own fit (:meth:`fits`); empty otherwise.
    """

    kinds: np.ndarray
    params: np.ndarray
    params_err: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray
    flux_err_marginal: np.ndarray
    converged: np.ndarray
    flags: np.ndarray
    stages: tuple
    lnp: np.ndarray
    psfs: tuple
    image_shape: tuple
    n_bad_pixels: int = 0
    src_niters: np.ndarray | None = None
    src_last_dlnp: np.ndarray | None = None
    parts: tuple = ()

    def fits(self) -> tuple[FitResult, ...]:
        """The independent fits: this result (multi-band mode), or one per band, each with its
        own convergence, flags, stages and bad-pixel count (single-band mode)."""
        return self.parts or (self,)

    @property
    def multi_band(self):
        """True when one set of positions/shapes is shared by all bands."""
        return self.params.shape[0] == 1

    def _per_fit(self, arr):
        return arr[0] if self.multi_band else np.moveaxis(arr, 0, -1)

    @property
    def x(self):
        """Fitted x (px, patch frame); shape (n,) or (n, B) in single-band mode."""
        return self._per_fit(self.params[..., 0])

    @property
    def y(self):
        """Fitted y (px, patch frame); shape (n,) or (n, B)."""
        return self._per_fit(self.params[..., 1])

    @property
    def x_err(self):
        return self._per_fit(self.params_err[..., 0])

    @property
    def y_err(self):
        return self._per_fit(self.params_err[..., 1])

    def _last(self, attr, default):
        return np.array([getattr(st[-1], attr) if st else default for st in self.stages])

    @property
    def opt_niters(self):
        """Iterations of the last stage, per fit: the largest over groups (``opt_niters``)."""
        return self._last("niters", 0)

    @property
    def opt_converged(self):
        """Whole-scene convergence of the last stage, per fit."""
        return self._last("converged", True)

    @property
    def opt_last_dlnp(self):
        """Last accepted ln P gain of the last stage, per fit."""
        return self._last("last_dlnp", 0.0)

    @property
    def source_niters(self):
        """Per source: iterations of its group's last stage, max over fits; shape (n,)."""
        if self.src_niters is None:
            return np.broadcast_to(self.opt_niters.max(), self.kinds.shape)
        return self.src_niters.max(axis=0)

    @property
    def source_last_dlnp(self):
        """Per source: last accepted ln P gain of its group, max over fits; shape (n,)."""
        if self.src_last_dlnp is None:
            return np.broadcast_to(self.opt_last_dlnp.max(), self.kinds.shape)
        return self.src_last_dlnp.max(axis=0)

    @property
    def opt_hit_max_iters(self):
        """Per source: the last stage ran out of iterations and the source had not converged."""
        return (self.flags & flag_bit("hit_max_iters")) != 0

    def shape_columns(self):
        """tract7dt shape columns; each (n,) or (n, B), NaN for stars.

        Keys: re_pix_fit, ab_fit, phi_deg_fit, ELL_fit, Re_fit, THETA_fit, sersic_n_fit.
        """
        p = self.params
        cols = soft_to_columns(p[..., 2], p[..., 3], p[..., 4])
        cols["sersic_n_fit"] = np.where(self.kinds == "SERSIC", p[..., 5], np.nan)
        star = self.kinds == "STAR"
        return {k: self._per_fit(np.where(star, np.nan, v)) for k, v in cols.items()}

    def columns(self, band_names=None, flux_err="marginal"):
        """Output columns with tract7dt names.

        In single-band mode positions and shapes get tract7dt's per-band names
        (``x_pix_patch_{b}_fit``, ``re_pix_{b}_fit``, ``THETA_{b}_fit`` ...).

        Parameters
        ----------
        band_names : sequence of str, optional
            Names used in ``FLUX_{band}_fit``; defaults to "0", "1", ...
        flux_err : {"marginal", "conditional"}
            ``FLUXERR_*`` source: :attr:`flux_err_marginal` (default; includes the
            position/shape uncertainty, equal to the conditional error when
            nothing nonlinear was fitted) or :attr:`flux_err` (flux block only).

        Returns
        -------
        dict of ndarray, each of length n
        """
        if flux_err not in ("marginal", "conditional"):
            msg = f"flux_err must be 'marginal' or 'conditional', got {flux_err!r}"
            raise ValueError(msg)
        err = self.flux_err_marginal if flux_err == "marginal" else self.flux_err
        names = list(band_names or [str(b) for b in range(self.flux.shape[1])])
        out = {"stype_fit": np.array([_STYPE[k] for k in self.kinds])}
        geometry = {"x_pix_patch_fit": self.x, "y_pix_patch_fit": self.y, **self.shape_columns()}
        for key, val in geometry.items():
            if self.multi_band:
                out[key] = val
            else:
                for b, name in enumerate(names):
                    out[key.replace("_fit", f"_{name}_fit")] = val[:, b]
        for b, name in enumerate(names):
            out[f"FLUX_{name}_fit"] = self.flux[:, b]
            out[f"FLUXERR_{name}_fit"] = err[:, b]
        out["opt_converged"] = self.converged
        out["opt_niters"] = self.source_niters
        out["opt_last_dlnp"] = self.source_last_dlnp
        out["opt_hit_max_iters"] = self.opt_hit_max_iters
        out["fit_flags"] = self.flags
        return out

    def flag_names(self, index):
        """Names of the flags set for source ``index``."""
        return decode_flags(self.flags[index])

    def model_images(self):
        """Model of every band, shape (B, ny, nx), float32 (loads the numba kernels on use)."""
        from ._model_image import render_model

        fits = self.params.shape[0]
        if fits == 1:  # one layout and one set of source profiles serve every band
            flux = np.nan_to_num(self.flux)
            return render_model(
                self.image_shape, list(self.psfs), self.kinds, self.params[0], flux,
                dtype=np.float32,
            )
        out = np.zeros((self.flux.shape[1],) + tuple(self.image_shape), np.float32)
        for b in range(self.flux.shape[1]):
            p = self.params[0 if fits == 1 else b]
            flux = np.nan_to_num(self.flux[:, b : b + 1])
            out[b] = render_model(
                self.image_shape, [self.psfs[b]], self.kinds, p, flux, dtype=np.float32
            )[0]
        return out

    def residuals(self, images):
        """images - model, shape (B, ny, nx), float32."""
        return (np.asarray(images, np.float32) - self.model_images()).astype(np.float32)
