"""Star centres and fluxes re-fitted against a stack, all stars at once.

Each used star's flux and centre are fitted to its pixels within ``fit_radius``
of its current centre (bad pixels left out) by ``STAR_FIT_STEPS``
Gauss-Newton steps, weighting pixels by sky plus the model's photon noise and
moving the centre by at most half a pixel per step. The model is the stack
moved by the fitter's Fourier shift (:func:`phot7dt.scene.shift_factors`); it is
needed only near each star, so the inverse transform is evaluated on a small
window per star as two matrix products (the shift is separable), batched over
stars. The values equal the full ``irfft2`` on those pixels to rounding.
"""

from __future__ import annotations

import math

import numpy as np

from phot7dt.scene import shift_factors

__all__ = ["MAX_SHIFT_PIX", "STAR_FIT_STEPS", "refit_stars"]

#: Gauss-Newton steps per star and stack iteration.
STAR_FIT_STEPS = 3
#: A star whose fitted centre leaves its initial position by more than this is dropped, pixels.
MAX_SHIFT_PIX = 2.0


class _StampSpectrum:
    """The real FFT of one stamp, for shifted copies and their derivatives on windows."""

    def __init__(self, stamp: np.ndarray):
        n = stamp.shape[0]
        self.spectrum = np.fft.rfft2(stamp) / n**2
        self.kx, self.ky = np.fft.rfftfreq(n), np.fft.fftfreq(n)
        # Hermitian weights of the half spectrum along x (n odd: no Nyquist column).
        self.weight_x = np.where(np.arange(len(self.kx)) == 0, 1.0, 2.0)
        # phase ramps of whole-pixel positions, looked up instead of recomputed
        pixels = np.arange(n)[:, None]
        self.ramp_y = np.exp(2j * np.pi * self.ky * pixels)
        self.ramp_x = np.exp(2j * np.pi * self.kx * pixels) * self.weight_x

    def windows(self, dx: np.ndarray, dy: np.ndarray, rows: np.ndarray, cols: np.ndarray):
        """The stamp moved by ``(dx[s], dy[s])`` and its derivatives in ``dx`` and ``dy`` on
        the pixels ``rows[s] x cols[s]`` (integer pixel indices): three ``(S, R, C)`` arrays."""
        fy, dfy = shift_factors(self.ky, dy, derivative=True)
        fx, dfx = shift_factors(self.kx, dx, derivative=True)
        ey = self.ramp_y[rows] * fy[:, None, :]
        ex_t = (self.ramp_x[cols] * fx[:, None, :]).transpose(0, 2, 1)
        dex_t = (self.ramp_x[cols] * dfx[:, None, :]).transpose(0, 2, 1)
        left = ey @ self.spectrum
        model = (left @ ex_t).real
        grad_x = (left @ dex_t).real
        grad_y = (((self.ramp_y[rows] * dfy[:, None, :]) @ self.spectrum) @ ex_t).real
        return model, grad_x, grad_y


def _solve(normal: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched solves; steps (S, 3) and a mask of the systems that could be solved."""
    try:
        return np.linalg.solve(normal, rhs[..., None])[..., 0], np.ones(len(rhs), bool)
    except np.linalg.LinAlgError:
        steps, ok = np.zeros_like(rhs), np.ones(len(rhs), bool)
        for s in range(len(rhs)):
            try:
                steps[s] = np.linalg.solve(normal[s], rhs[s])
            except np.linalg.LinAlgError:
                ok[s] = False
        return steps, ok


def _windows(stars, idx: np.ndarray, cx: np.ndarray, cy: np.ndarray, fit_radius: float):
    """Pixel rows and columns of a square window around each star holding its fit region."""
    n = stars.data.shape[1]
    size = min(2 * (math.ceil(fit_radius) + 1) + 1, n)
    first = np.arange(size)
    row0 = np.clip(np.floor(cy + 0.5).astype(int) - size // 2, 0, n - size)
    col0 = np.clip(np.floor(cx + 0.5).astype(int) - size // 2, 0, n - size)
    rows, cols = row0[:, None] + first, col0[:, None] + first
    pick = (idx[:, None, None], rows[:, :, None], cols[:, None, :])
    return rows, cols, stars.data[pick], stars.bad[pick]


def _fit(stars, idx, start, spectrum: _StampSpectrum, noise, fit_radius):
    """Fitted ``(cx, cy, flux)`` of the stars ``idx`` and a mask of the fits that worked."""
    sky_var, gain = noise
    cx, cy, flux = (v[idx].copy() for v in start)
    c = (stars.data.shape[1] - 1) / 2
    rows, cols, data, bad = _windows(stars, idx, cx, cy, fit_radius)
    region = (np.hypot(cols[:, None, :] - cx[:, None, None], rows[:, :, None] - cy[:, None, None])
              <= fit_radius) & ~bad
    ok = region.any(axis=(1, 2))  # no pixel to fit: the normal equations are singular
    for _ in range(STAR_FIT_STEPS):
        model, gx, gy = spectrum.windows(cx - c, cy - c, rows, cols)
        f = flux[:, None, None]
        w = np.where(region, 1.0 / (sky_var + np.clip(f * model, 0.0, None) / gain), 0.0)
        design = np.stack([model, f * gx, f * gy], axis=1).reshape(len(idx), 3, -1)
        weighted = design * w.reshape(len(idx), 1, -1)
        resid = (data - f * model).reshape(len(idx), -1)
        normal = weighted @ design.transpose(0, 2, 1)
        normal[~ok] = np.eye(3)
        step, solved = _solve(normal, np.einsum("sip,sp->si", weighted, resid))
        ok &= solved
        flux += step[:, 0]
        cx += np.clip(step[:, 1], -0.5, 0.5)
        cy += np.clip(step[:, 2], -0.5, 0.5)
    return cx, cy, flux, ok & np.isfinite(flux) & (flux > 0)


def refit_stars(stars, used, cx, cy, flux, stamp, noise, fit_radius) -> float:
    """Re-fit the used stars in place; drop failures; return the largest relative centre move.

    Parameters
    ----------
    stars : StarCutouts
        The cell's star cutouts.
    used : (S,) bool ndarray
        Stars in the stack (updated: failed or runaway stars are dropped).
    cx, cy, flux : (S,) float64 ndarrays
        Current centres (cutout pixels) and fluxes (updated for the used stars).
    stamp : (n, n) ndarray
        The stack, unit sum, centred on the cutouts' central pixel.
    noise : (float, float)
        Sky variance per pixel and electrons per count.
    fit_radius : float
        Radius of each star's fitted pixels, pixels.
    """
    idx = np.nonzero(used)[0]
    if not idx.size:
        return 0.0
    new_cx, new_cy, new_flux, ok = _fit(stars, idx, (cx, cy, flux), _StampSpectrum(stamp), noise,
                                        fit_radius)
    ok &= np.hypot(new_cx - stars.cx[idx], new_cy - stars.cy[idx]) <= MAX_SHIFT_PIX
    used[idx[~ok]] = False
    if not ok.any():
        return 0.0
    keep = idx[ok]
    moves = np.column_stack([new_cx[ok] - cx[keep], new_cy[ok] - cy[keep]])
    cx[keep], cy[keep], flux[keep] = new_cx[ok], new_cy[ok], new_flux[ok]
    return float(np.abs(moves - moves.mean(axis=0)).max())
