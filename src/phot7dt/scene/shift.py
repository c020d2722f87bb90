"""Sub-pixel shifts in Fourier space: the one shift the engine renders with and the ePSF
builder stacks with.

A shift by ``d`` px multiplies frequency ``k`` (cycles/px) by ``exp(-2 pi i k d)``.  With
``taper`` the sub-pixel part is applied as ``1 + W(k) (exp(-2 pi i k d) - 1)``, with a
window ``W`` that is 1 below :data:`SHIFT_TAPER` ``[0]`` and falls smoothly (cos²) to 0 at
Nyquist: a pixelized PSF is not band-limited, and a sharp-edged (sinc) shift of its content
near Nyquist rings along the row and column through the source across the whole stamp.
The tapered factor is exact at ``d = 0``, keeps the flux, and is real at Nyquist (so
shifts of +-1/2 px agree).
"""

from __future__ import annotations

import numpy as np

__all__ = ["SHIFT_TAPER", "shift_factors", "shift_window"]

#: Sub-pixel shifts are tapered to zero between these frequencies (cycles/px).
SHIFT_TAPER = (0.375, 0.5)


def shift_window(k: np.ndarray) -> np.ndarray:
    """The taper ``W(k)``: 1 below ``SHIFT_TAPER[0]``, cos² down to 0 at ``SHIFT_TAPER[1]``."""
    lo, hi = SHIFT_TAPER
    x = np.clip((np.abs(k) - lo) / (hi - lo), 0.0, 1.0)
    return np.cos(0.5 * np.pi * x) ** 2


def shift_factors(
    k: np.ndarray, shift: np.ndarray, taper: bool = True, derivative: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Fourier factors moving by ``shift`` px along one axis, shape ``(len(shift), len(k))``.

    The taper acts on the whole of ``shift``: give shifts relative to a nearby whole-pixel
    anchor (at most about half a pixel), and move by whole pixels exactly elsewhere; a fixed
    anchor keeps the factors and their derivatives smooth in ``shift``.

    Parameters
    ----------
    k : array_like
        Frequencies, cycles/px (``np.fft.fftfreq`` / ``rfftfreq``).
    shift : array_like
        Shifts, px.
    taper : bool
        Taper above ``SHIFT_TAPER[0]`` (the engine's rendering); False is the exact phase ramp.
    derivative : bool
        Also return the derivative of the factors with respect to ``shift`` (per px).
    """
    k = np.ravel(k)[None, :]
    ramp = np.exp(-2j * np.pi * k * np.atleast_1d(np.asarray(shift, float))[:, None])
    window = shift_window(k) if taper else 1.0
    factors = 1.0 + window * (ramp - 1.0)
    if not derivative:
        return factors
    return factors, window * (-2j * np.pi * k) * ramp
