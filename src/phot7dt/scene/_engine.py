"""Per-patch evaluation: render, solve fluxes exactly, build the reduced Fisher system.

For given nonlinear parameters theta (positions, shapes, n) the model of band b
is sum_s f_sb U_sb(theta_s).  One :meth:`PatchModel.evaluate` call, band by band:

1. renders every source's unit-flux stamp (and derivative stamps) in Fourier space;
2. forms weighted inner products of all overlapping stamp columns (numba);
3. solves the band's fluxes exactly from H_ff f = r (+ Gaussian flux priors);
4. optionally accumulates the Gauss-Newton system for theta with the fluxes
   profiled out (variable projection): S = sum_b H_tt,b - H_tf,b H_ff,b^-1 H_ft,b
   and gradient g = sum_b J_t,b^T W (d - m_b).

Steps 2-4 are :func:`._band_solve.solve_chunk`, per block of bands.

Optimiser steps (``fisher_bands``) render derivative stamps in a few
representative bands only: fluxes, ln P and the gradient stay exact over all
bands (the gradient by the adjoint of the rendering, see :class:`._step.Adjoint`),
while S is estimated from the representative bands, each standing for a
contiguous bin of bands with its fluxes replaced by the bin's noise-weighted
RMS flux (S is a sum of f_s f_t times unit-flux terms that change slowly with
the band's PSF; see :func:`fisher_band_plan`).

chi^2 is computed from the inner products (sum w d^2 - 2 f.r + f H f), so no
residual image is needed.  Non-finite pixels get zero weight.  With a gain the
weights are 1/(1/invvar + max(model, 0)/gain) (source Poisson noise, refreshed
from the current model by :meth:`PatchModel.set_model_weights`).
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

from ._band_solve import SPARSE_RHO, solve_chunk
from ._evaluation import Accumulator, Geometry
from ._kernels import padded_data, poisson_weights
from ._noise import noise_sigma
from ._render import STAMP_CHUNK_BYTES, base_factors, stamps_in_bands
from ._step import Adjoint, StampCache, binned_fluxes, fisher_band_plan, model_bases, theta_columns
from .psf import FourierStacks

__all__ = ["SPARSE_RHO", "PatchModel"]


class PatchModel:
    """Data, weights and PSFs of one patch, padded so stamps never clip.

    Parameters
    ----------
    images, invvar : ndarray, shape (n_band, ny, nx)
    psfs : sequence of PSF objects, length n_band
    kinds : sequence of str, length n_src
    flux_prior : tuple of ndarray
        (mean, sigma), each (n_src, n_band); sigma NaN = no prior.
    gain : ndarray, shape (n_band,), optional
        Electrons per image unit for the source Poisson term.
    pad : int
    sigma : ndarray, shape (n_band,), optional
        :func:`noise_sigma` of ``invvar`` when the caller has it already.
    """

    def __init__(self, images, invvar, psfs, kinds, flux_prior, gain=None, pad=0, sigma=None):
        self.n_band = images.shape[0]
        self.pad = int(pad)
        images, invvar = np.asarray(images), np.asarray(invvar)
        exact32 = (
            images.dtype == np.float32 and invvar.dtype == np.float32
        )  # no rounding: keep float32
        self.data, self.ivar, wdd, self.n_bad_pixels = padded_data(
            images, invvar, self.pad, np.float32 if exact32 else np.float64
        )
        self.ny, self.nx = images.shape[1], images.shape[2]
        self.psfs = list(psfs)
        self.kinds = list(kinds)
        self.gain = None if gain is None else np.asarray(gain, float)
        mu, sig = flux_prior
        self.prior_prec = np.where(
            np.isfinite(sig) & (sig > 0), 1.0 / np.where(sig > 0, sig, 1.0) ** 2, 0.0
        ).T
        self.prior_mean = np.where(self.prior_prec > 0, np.asarray(mu).T, 0.0)
        self._psf_ft = FourierStacks(self.psfs)
        self.w, self.wdd = self.ivar, wdd
        self._sigma = None if sigma is None else np.asarray(sigma, float)
        self._stamps = None

    def subset(self, idx):
        """A view of the same data and weights for the sources ``idx`` only (shared arrays)."""
        self.noise_sigma()  # (computed once, shared by every subset)
        sub = copy.copy(self)
        sub.kinds = [self.kinds[i] for i in idx]
        sub.prior_prec = self.prior_prec[:, idx]
        sub.prior_mean = self.prior_mean[:, idx]
        sub._stamps = StampCache(self.n_band)  # an optimiser loop re-renders its frozen sources
        return sub

    def set_model_weights(self, models):
        """Poisson-aware weights from model images (no-op without a gain)."""
        if self.gain is None or models is None:
            return
        self.w, self.wdd = poisson_weights(self.ivar, self.data, models, self.gain)

    def with_stamp_cache(self):
        """A view of this model (shared arrays) that keeps the single-precision model
        stamps of sources whose parameters it has seen, so repeated evaluations at the
        same parameters render nothing again (a :class:`._step.StampCache`)."""
        out = copy.copy(self)
        out._stamps = StampCache(self.n_band)
        return out

    def noise_sigma(self):
        """Typical per-pixel noise sigma of each band, shape (n_band,) (computed once)."""
        if self._sigma is None:
            self._sigma = noise_sigma(self.ivar)
        return self._sigma

    def fisher_plan(self, n_fisher):
        """:func:`fisher_band_plan` for this patch, or None if every band is needed."""
        if n_fisher <= 0 or n_fisher >= self.n_band:
            return None
        return fisher_band_plan(self.noise_sigma(), n_fisher)

    def psf_fourier_stack(self, bands, size, dtype=np.complex128):
        """PSF transforms of several bands on a size x size grid, (nb, S, S//2+1).

        See :class:`.psf.FourierStacks`.
        """
        return self._psf_ft.get(bands, size, dtype)

    def evaluate(
        self,
        params,
        layout,
        *,
        derivs=False,
        want_model=False,
        single=False,
        sparse=False,
        fisher_bands=None,
    ):
        """Fluxes, ln-likelihood (incl. flux priors) and, if asked, the reduced system.

        Parameters
        ----------
        params : ndarray, shape (n_src, 6)
        layout : Layout
            Stamp sizes, core boxes and which derivative columns to render.
        derivs : bool
            Build the theta Fisher matrix, gradient and flux-theta coupling.
        want_model : bool
            Also return the model images (padded).
        single : bool
            Render stamps in single precision (sums stay float64): for
            flux-only solves and optimiser steps, where ~1e-7 relative errors
            of the stamps are far below the noise (ln P changes by ~1e-3 on a
            crowded 40-band patch, against a dlnp tolerance of ~0.3) and the
            line search compares evaluations of the same precision.
        sparse : bool
            Approximate Fisher matrix for optimiser steps: derivative cross
            terms only between sources whose unit models overlap by more than
            :data:`SPARSE_RHO` (normalised inner product in some band).
            Fluxes, ln P and the gradient stay exact (the gradient is
            projected on the residual image).
        fisher_bands : tuple, optional
            A :func:`fisher_band_plan` (with ``derivs``): the Fisher matrix is
            estimated from its representative bands (sparse, as above), while
            fluxes, ln P and the gradient stay exact over every band.  The
            returned ``z_blocks`` then cover the representative bands only.
        """
        if derivs and fisher_bands is not None:
            return self._evaluate_step(params, layout, fisher_bands, single)
        return self._run(
            params,
            layout,
            np.arange(self.n_band),
            derivs=derivs,
            want_model=want_model,
            single=single,
            sparse=sparse,
            frozen=layout.ncols == 1,
        )

    def _evaluate_step(self, params, layout, plan, single):
        reps, edges = plan
        od = layout.origins(params[:, 0], params[:, 1])
        bases = base_factors(layout, self.kinds, params, od)
        model_only = layout.model_only()
        adjoint = Adjoint(self, layout, bases)
        frozen = layout.ncols == 1
        ev = self._run(
            params,
            model_only,
            np.arange(self.n_band),
            derivs=False,
            single=single,
            adjoint=adjoint,
            bases=model_bases(layout, bases, model_only),
            frozen=frozen,
        )
        rep_flux = binned_fluxes(ev.fluxes, reps, edges, self.noise_sigma())
        ev_rep = self._run(
            params,
            layout,
            reps,
            derivs=True,
            single=single,
            sparse=True,
            fisher_flux=rep_flux,
            bases=bases,
            frozen=frozen,
        )
        return dataclasses.replace(
            ev, fisher=ev_rep.fisher, grad=adjoint.gradient(), z_blocks=ev_rep.z_blocks
        )

    def _run(
        self,
        params,
        layout,
        bands,
        *,
        derivs=False,
        want_model=False,
        single=False,
        sparse=False,
        adjoint=None,
        fisher_flux=None,
        bases=None,
        frozen=None,
    ):
        """Evaluate over ``bands`` in chunks (see :meth:`evaluate`).

        ``frozen`` marks sources whose parameters stay fixed over the
        evaluations of an optimiser loop: their single-precision model
        stamps are kept (in a :meth:`subset`) and not rendered again.
        """
        geo = Geometry(self, params, layout)
        if bases is None:
            bases = base_factors(layout, self.kinds, params, geo.od)
        th = theta_columns(layout, geo.cmax)
        out = Accumulator(self.n_band, geo.ns, th[0].size, derivs, want_model, self.data.shape[1:])
        out.sparse = sparse and derivs
        out.adjoint, out.fisher_flux = adjoint, fisher_flux
        keys = self._cache_keys(params, frozen, single)
        per_band = max(layout.total, 1) * (4 if single else 8) * 3
        step = int(max(1, min(self.n_band, STAMP_CHUNK_BYTES // per_band)))
        for lo in range(0, bands.size, step):
            chunk = bands[lo : lo + step]
            buf = self._render(chunk, layout, bases, single, keys)
            solve_chunk(self, chunk, buf, geo, th, out)
        return out.finish()

    def _cache_keys(self, params, frozen, single):
        """Per source, the stamp-cache key of its model column (None: not cached)."""
        if self._stamps is None or frozen is None or not single or not frozen.any():
            return None
        return [(s, params[s].tobytes()) if frozen[s] else None for s in range(params.shape[0])]

    def _render(self, bands, layout, bases, single=False, keys=None):
        """Stamps of every column; derivative columns always in single precision.

        Column 0 (the model, which sets the fluxes and ln P compared by the
        line search) is double unless ``single``; derivative columns only
        enter the Fisher matrix and gradient, where ~1e-7 relative errors are
        irrelevant.  Stamps of one size are transformed together (the groups
        of a size are contiguous in the buffer).  ``keys`` (per source, see
        :meth:`_cache_keys`) take model-only stamps from the stamp cache.
        """
        buf = np.empty((bands.size, layout.total), np.float32 if single else np.float64)
        runs, start = {}, 0
        for (size, _free, members), base in zip(layout.groups, bases, strict=True):
            runs.setdefault(size, []).append((start, base, members))
            start += base.shape[0] * base.shape[1] * size * size
        for size, parts in runs.items():
            s0 = parts[0][0]
            if single:
                stack = np.concatenate([b.reshape((-1,) + b.shape[2:]) for _, b, _ in parts])
                rows = (
                    None
                    if keys is None
                    else [
                        keys[m] if b.shape[1] == 1 else None
                        for _, b, members in parts
                        for m in members
                        for _ in range(b.shape[1])
                    ]
                )
                dest = buf[:, s0 : s0 + stack.shape[0] * size * size].reshape(
                    bands.size, -1, size, size
                )
                self._render_cached(stack, bands, size, rows, dest)
                continue
            model = self._irfft(
                np.concatenate([b[:, 0] for _, b, _ in parts]), bands, size, np.complex128
            )
            derivs = [b[:, 1:].reshape((-1,) + b.shape[2:]) for _, b, _ in parts if b.shape[1] > 1]
            if derivs:
                derivs = self._irfft(np.concatenate(derivs), bands, size, np.complex64)
            i = j = 0
            for start, b, _members in parts:
                m, ncol = b.shape[:2]
                view = buf[:, start : start + m * ncol * size * size].reshape(
                    bands.size, m, ncol, size, size
                )
                view[:, :, 0] = model[:, i : i + m]
                if ncol > 1:
                    view[:, :, 1:] = derivs[:, j : j + m * (ncol - 1)].reshape(
                        bands.size, m, ncol - 1, size, size
                    )
                i, j = i + m, j + m * (ncol - 1)
        return buf

    def _render_cached(self, stack, bands, size, keys, dest):
        """Single-precision stamps of ``stack`` rows into ``dest`` (nb, n, S, S).

        Rows with a key are copied from the stamp cache when it holds them,
        and stored there after their transform otherwise.
        """
        if keys is None:
            dest[...] = self._irfft(stack, bands, size, np.complex64)
            return
        cache = self._stamps
        miss = np.array(
            [k is None or not cache.fill(k, bands, dest[:, r]) for r, k in enumerate(keys)]
        )
        if miss.all():
            dest[...] = self._irfft(stack, bands, size, np.complex64)
        elif miss.any():
            dest[:, miss] = self._irfft(stack[miss], bands, size, np.complex64)
        for r in np.flatnonzero(miss):
            if keys[r] is not None:
                cache.put(keys[r], bands, dest[:, r])

    def _irfft(self, base, bands, size, ctype):
        """Inverse transforms of ``base`` (n, S, S//2+1) times each band's PSF -> (nb, n, S, S)."""
        return stamps_in_bands(base, self.psf_fourier_stack(bands, size, ctype), size, ctype)
