"""Model images of sources with given parameters and fluxes: :func:`render_model`."""

from __future__ import annotations

import numpy as np

from ._extent import stamp_sizes
from ._kernels import add_model
from ._render import Layout, base_factors, render_band
from .settings import FitSettings

__all__ = ["render_model"]


def render_model(shape, psfs, kinds, params, fluxes, *, settings=None):
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

    Returns
    -------
    ndarray, float64, shape (B, ny, nx)
    """
    settings = settings or FitSettings()
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
    ny, nx = shape
    out = np.zeros((len(psfs), ny, nx))
    for b, psf in enumerate(psfs):
        big = np.zeros((ny + 2 * pad, nx + 2 * pad))
        buf, _ = render_band(layout, bases, psf.fourier)
        add_model(buf, layout.offsets, layout.sizes, od[0], od[1], fluxes[:, b].copy(), big)
        out[b] = big[pad : pad + ny, pad : pad + nx]
    return out
