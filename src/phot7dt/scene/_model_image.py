"""Model images of sources with given parameters and fluxes: :func:`render_model`."""

from __future__ import annotations

import numpy as np

from ._extent import stamp_sizes
from ._kernels import add_model
from ._render import STAMP_CHUNK_BYTES, Layout, base_factors, stamps_in_bands
from .psf import FourierStacks
from .settings import FitSettings

__all__ = ["render_model"]


def render_model(shape, psfs, kinds, params, fluxes, *, settings=None, dtype=np.float64):
    """Render the model of every band.

    Parameters
    ----------
    shape : tuple of int
        (ny, nx) of the output.
    psfs : sequence of PSF, length B
    kinds : sequence of str, length n
    params : ndarray, shape (n, 6)
        (x, y, log r_e, ee1, ee2, n) per source (shape entries ignored for stars).
    fluxes : ndarray, shape (n, B)
    settings : FitSettings, optional
        Only the stamp-size limits are used; stamps hold the full PSF and a
        4-sigma galaxy extent.
    dtype : numpy dtype, optional
        float64 (default) or float32: the precision of the stamps and of the
        output (float32 stamps are good to ~1e-7 of a source's peak, the
        engine's optimiser precision, and render about twice as fast).

    Returns
    -------
    ndarray, ``dtype``, shape (B, ny, nx)
    """
    settings = settings or FitSettings()
    dtype = np.dtype(dtype)
    ctype = np.complex64 if dtype == np.float32 else np.complex128
    params = np.asarray(params, float).reshape(-1, 6)
    fluxes = np.asarray(fluxes, float).reshape(params.shape[0], len(psfs))
    kinds = list(kinds)
    sizes = stamp_sizes(
        kinds, params, np.full(fluxes.shape, np.nan), np.ones(len(psfs)), psfs, settings
    )
    pad = int(sizes.max(initial=0)) + int(np.ceil(np.abs(params[:, :2]).max(initial=0))) + 2
    layout = Layout(sizes, np.zeros((len(kinds), 6), bool), pad)
    od = layout.origins(params[:, 0], params[:, 1])
    bases = base_factors(layout, kinds, params, od)
    stacks = FourierStacks(list(psfs))
    ny, nx = shape
    out = np.zeros((len(psfs), ny, nx), dtype)
    step = int(max(1, STAMP_CHUNK_BYTES // max(layout.total * dtype.itemsize, 1)))
    for lo in range(0, len(psfs), step):
        bands = np.arange(lo, min(lo + step, len(psfs)))
        buf = _stamps(layout, bases, stacks, bands, ctype, dtype)
        for i, b in enumerate(bands):
            big = np.zeros((ny + 2 * pad, nx + 2 * pad), dtype)
            add_model(buf[i], layout.offsets, layout.sizes, od[0], od[1], fluxes[:, b].copy(), big)
            out[b] = big[pad : pad + ny, pad : pad + nx]
    return out


def _stamps(layout, bases, stacks, bands, ctype, dtype):
    """Unit-flux stamps of every source in ``bands``, (nb, layout.total), one batched
    inverse transform per stamp size (stamps stored per source at ``layout.offsets``)."""
    buf = np.empty((bands.size, layout.total), dtype)
    start = 0
    for (size, _free, _members), base in zip(layout.groups, bases, strict=True):
        n = base.shape[0] * base.shape[1] * size * size
        flat = base.reshape((-1,) + base.shape[2:])  # (sources x columns, S, S//2+1)
        stamps = stamps_in_bands(flat, stacks.get(bands, size, ctype), size, ctype)
        buf[:, start : start + n] = stamps.reshape(bands.size, n)
        start += n
    return buf
