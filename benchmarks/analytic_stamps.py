"""Analytic unit-flux stamps for the synthetic tile: pixel-integrated Moffat and Sersic profiles.

Profiles are evaluated on a ``SUBSAMPLE x SUBSAMPLE`` grid inside each pixel and
averaged (pixel integration). Positions are offsets ``(dx, dy)`` of the source from
the stamp's centre pixel; stamps are ``(n, 2 half + 1, 2 half + 1)`` float32.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SUBSAMPLE = 3
GALAXY_TRUNCATION_RE = 8.0
#: Largest number of sub-sampled pixels evaluated at once (memory bound of the renderer).
CHUNK_PIXELS = 2.0e7


def _subpixel_grid(half: int, dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-sampled offsets ``(n, S, S)`` from each source centre, S = SUBSAMPLE (2 half + 1)."""
    step = (np.arange((2 * half + 1) * SUBSAMPLE) + 0.5) / SUBSAMPLE - half - 0.5
    return step[None, None, :] - dx[:, None, None], step[None, :, None] - dy[:, None, None]


def _bin(fine: np.ndarray) -> np.ndarray:
    n, s = fine.shape[0], fine.shape[1] // SUBSAMPLE
    return fine.reshape(n, s, SUBSAMPLE, s, SUBSAMPLE).mean(axis=(2, 4)).astype(np.float32)


def moffat_stamps(half: int, dx, dy, fwhm, beta: float) -> np.ndarray:
    """Pixel-integrated unit-flux Moffat stamps ``(n, 2 half + 1, 2 half + 1)``."""
    gx, gy = _subpixel_grid(half, np.asarray(dx, float), np.asarray(dy, float))
    alpha = np.asarray(fwhm, float)[:, None, None] / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    fine = (beta - 1.0) / (np.pi * alpha**2) * (1.0 + (gx**2 + gy**2) / alpha**2) ** (-beta)
    return _bin(fine)


def sersic_stamps(half: int, dx, dy, gal: pd.DataFrame) -> np.ndarray:
    """Unit-sum Sersic stamps (truncated at 8 Re, Re along the major axis), ``(n, S, S)``."""
    gx, gy = _subpixel_grid(half, np.asarray(dx, float), np.asarray(dy, float))
    n_ser = gal["sersic_n"].to_numpy()[:, None, None]
    re = gal["re_pix"].to_numpy()[:, None, None]
    q = 1.0 - gal["ell"].to_numpy()[:, None, None]
    th = np.deg2rad(gal["theta_deg"].to_numpy())[:, None, None]
    major, minor = gx * np.cos(th) + gy * np.sin(th), -gx * np.sin(th) + gy * np.cos(th)
    r = np.hypot(major, minor / q) / re
    b_n = 2.0 * n_ser - 1.0 / 3.0 + 4.0 / (405.0 * n_ser) + 46.0 / (25515.0 * n_ser**2)
    fine = np.where(r <= GALAXY_TRUNCATION_RE, np.exp(-b_n * (r ** (1.0 / n_ser) - 1.0)), 0.0)
    stamps = _bin(fine)
    return stamps / stamps.sum(axis=(1, 2), keepdims=True)


def chunks(n: int, half: int) -> list[slice]:
    per = max(1, int(CHUNK_PIXELS // ((2 * half + 1) * SUBSAMPLE) ** 2))
    return [slice(i, min(i + per, n)) for i in range(0, n, per)]
