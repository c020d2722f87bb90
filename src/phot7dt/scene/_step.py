"""Optimiser-step helpers of :class:`._engine.PatchModel` (internal).

* :class:`Adjoint`: the exact theta-gradient of ln L from residual images,
  one forward FFT per source and band instead of derivative stamps;
* :func:`fisher_band_plan`, :func:`binned_fluxes`: the representative bands
  from which a step estimates its Fisher matrix, and their fluxes;
* :class:`StampCache`: model stamps of sources frozen in an optimiser loop;
* :func:`theta_columns`, :func:`model_bases`: column bookkeeping shared
  with the engine.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from ._kernels import crop_stamps

__all__ = [
    "Adjoint",
    "StampCache",
    "binned_fluxes",
    "fisher_band_plan",
    "model_bases",
    "theta_columns",
]

#: Stamp memory a :class:`StampCache` may hold (one group in one stage).
CACHE_BYTES = 256 * 2**20


class StampCache:
    """Single-precision model stamps per (source, parameters), filled band by band.

    Lives in one :meth:`._engine.PatchModel.subset` (one group in one stage), where
    frozen sources keep their parameters, or in a forced flux solve (its Poisson
    weight refreshes); stops growing at ``budget`` bytes.  An entry serves only
    stamps of its own size (a source's stamp may grow with its solved flux).
    """

    def __init__(self, n_band, budget=CACHE_BYTES):
        self.n_band, self.budget, self.bytes = n_band, budget, 0
        self.entries = {}

    def fill(self, key, bands, out):
        """Copy the cached stamps of ``key`` in ``bands`` into ``out``; False if any is missing."""
        entry = self.entries.get(key)
        if entry is None or entry[0].shape[-1] != out.shape[-1] or not entry[1][bands].all():
            return False
        lo, hi = int(bands[0]), int(bands[-1]) + 1
        out[...] = (
            entry[0][lo:hi] if hi - lo == bands.size else entry[0][bands]
        )  # (bands: usually a range)
        return True

    def put(self, key, bands, stamps):
        entry = self.entries.get(key)
        if entry is not None and entry[0].shape[-1] != stamps.shape[-1]:
            self.bytes -= self.entries.pop(key)[0].nbytes
            entry = None
        if entry is None:
            size = stamps.shape[-1]
            nbytes = self.n_band * size * size * 4
            if self.bytes + nbytes > self.budget:
                return
            self.bytes += nbytes
            entry = self.entries[key] = (
                np.empty((self.n_band, size, size), np.float32),
                np.zeros(self.n_band, bool),
            )
        entry[0][bands] = stamps
        entry[1][bands] = True


class Adjoint:
    """Exact theta-gradient of ln L from the residual images, without derivative stamps.

    A derivative stamp of source s in band b is irfft2(P_b D_s) with D_s its
    band-independent factor (:func:`._render.base_factors`), so by Parseval

        sum_b f_sb <dU_sb, w_b r_b> = Re sum_k c_k D_s(k) Y_s(k) / S^2,
        Y_s = sum_b f_sb P_b conj(rfft2(w_b r_b on the stamp)),

    with c_k = 1 on the k_x = 0 and Nyquist columns, 2 elsewhere.  One
    forward transform per source and band replaces one inverse transform per
    derivative column and band.
    """

    def __init__(self, model, layout, bases):
        self.model = model
        self.ncols, self.cmax = layout.ncols, int(layout.ncols.max()) if layout.ncols.size else 1
        self.th = theta_columns(layout, self.cmax)
        self.crops = None
        self.parts = [
            (size, members, base[:, 1:], np.zeros((members.size, size, size // 2 + 1), complex))
            for (size, free_idx, members), base in zip(layout.groups, bases, strict=True)
            if free_idx.size
        ]

    def start(self, n):
        """Room for the residual crops of a chunk of ``n`` bands."""
        self.crops = [
            np.empty((n, members.size, size, size), np.float32)
            for size, members, _d, _a in self.parts
        ]

    def add(self, i, wr, ox, oy):
        """Crop band ``i`` of the chunk.

        ``wr`` is w (d - model) on a box, (ox, oy) the stamp origins in it.
        """
        for (size, members, _deriv, _acc), crops in zip(self.parts, self.crops, strict=True):
            crop_stamps(wr, ox[members], oy[members], size, crops[i])

    def finish(self, bands, f):
        """Accumulate the chunk's bands with fluxes ``f`` (nb, ns)."""
        for (size, members, _deriv, acc), crops in zip(self.parts, self.crops, strict=True):
            ft = np.conj(scipy.fft.rfft2(crops, workers=1))
            ft *= self.model.psf_fourier_stack(bands, size, np.complex64)[:, None]
            ft *= f[:, members, None, None].astype(np.float32)
            acc += ft.sum(axis=0)
        self.crops = None

    def gradient(self):
        """The gradient in the order of the layout's theta columns."""
        grad = np.zeros((self.ncols.size, self.cmax))
        for size, members, deriv, acc in self.parts:
            c = np.full(size // 2 + 1, 2.0)
            c[0] = c[-1] = 1.0
            grad[members, 1 : 1 + deriv.shape[1]] = (
                np.einsum("mcij,mij->mc", deriv, acc * c).real / size**2
            )
        return grad.ravel()[self.th[0]]


def model_bases(layout, bases, model_only):
    """The model columns of ``bases`` (per group of ``layout``) regrouped for ``model_only``."""
    by_size = {}
    for (size, _free, members), base in zip(layout.groups, bases, strict=True):
        by_size.setdefault(size, []).append((members, base[:, :1]))
    out = []
    for size, _free, members in model_only.groups:
        parts = by_size[size]
        src = np.concatenate([m for m, _ in parts])
        stack = np.concatenate([b for _, b in parts])
        out.append(stack[np.argsort(src)] if not np.array_equal(src, members) else stack)
    return out


def fisher_band_plan(sigma, n_fisher):
    """Representative bands for a step's Fisher matrix: (reps, edges).

    The bands are cut into ``n_fisher`` contiguous bins (band order is
    wavelength order in a 7DT image list, so PSFs change slowly within a
    bin); ``reps[k]`` stands for bands ``edges[k]:edges[k+1]``: the middle
    one, or the bin's least noisy band if the middle one has no data.
    """
    n_band = sigma.size
    edges = np.floor(np.arange(n_fisher + 1) * n_band / n_fisher).astype(np.int64)
    reps = (edges[:-1] + edges[1:]) // 2
    for k in range(n_fisher):
        if not np.isfinite(sigma[reps[k]]):
            reps[k] = edges[k] + int(np.argmin(sigma[edges[k] : edges[k + 1]]))
    return reps, edges


def binned_fluxes(fluxes, reps, edges, sigma):
    """Fluxes (n_band, ns) with each representative band holding its bin's noise-weighted RMS flux.

    Exact for a source's own Fisher block when the unit-flux terms are the same
    across a bin; the sign is that of the bin's weighted mean flux.
    """
    with np.errstate(divide="ignore"):
        w = np.where(np.isfinite(sigma), 1.0 / sigma**2, 0.0)
    out = np.zeros_like(fluxes)
    for k, rep in enumerate(reps):
        b = slice(edges[k], edges[k + 1])
        if w[rep] <= 0:
            continue
        wb = w[b, None] / w[rep]
        sign = np.where(np.sum(wb * fluxes[b], axis=0) < 0, -1.0, 1.0)
        out[rep] = sign * np.sqrt(np.sum(wb * fluxes[b] ** 2, axis=0))
    return out


def theta_columns(layout, cmax):
    """Gram-matrix column and owning source of every free nonlinear parameter."""
    cols, src = [], []
    for s in range(layout.sizes.size):
        for i in range(1, int(layout.ncols[s])):
            cols.append(s * cmax + i)
            src.append(s)
    return np.array(cols, dtype=np.int64), np.array(src, dtype=np.int64)
