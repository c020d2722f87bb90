"""Typical pixel noise of each band: :func:`noise_sigma`."""

from __future__ import annotations

import numpy as np

from ._kernels import positive_range

__all__ = ["noise_sigma"]


def noise_sigma(invvar):
    """Median per-pixel noise sigma of each band.

    Parameters
    ----------
    invvar : ndarray, shape (B, ny, nx)
        Inverse variance per pixel (image units**-2); pixels <= 0 or non-finite are masked.

    Returns
    -------
    ndarray, shape (B,)
        1 / sqrt(median positive invvar) in image units; inf for a band with no valid pixel.
    """
    out = np.empty(invvar.shape[0])
    for b in range(invvar.shape[0]):
        n, lo, hi = positive_range(invvar[b])
        if n == 0:
            out[b] = np.inf
        elif lo == hi:  # (sky-only noise: one value per band)
            out[b] = 1.0 / np.sqrt(lo)
        else:
            v = invvar[b][np.isfinite(invvar[b]) & (invvar[b] > 0)]
            out[b] = 1.0 / np.sqrt(np.median(v))
    return out
