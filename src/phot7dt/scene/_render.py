"""Fourier-space rendering of unit-flux source stamps and their derivatives.

A source with profile mixture (a_j, v_j), ellipse covariance C and position
(x, y) has, on a square stamp of even size S whose pixel (S//2, S//2) sits at
image pixel round(x, y), the transform

    U(k) = P(k) * sum_j a_j exp(-2 pi^2 v_j k^T C k) * exp(-2 pi i k.(S//2 + d))

with d = (x, y) - round(x, y) and P the band's PSF transform on that grid.
The inverse rfft2 gives the unit-flux model sampled at pixel centres.  A point
source is the delta mixture (G = 1), so it is the PSF Fourier-shifted to its
sub-pixel position (band-limited sinc interpolation, not Lanczos-3).

Derivatives are exact in Fourier space: d/dx = -2 pi i k_x U; for a shape
parameter p, dG/dp = dG/dQ * k^T (dC/dp) k with Q = k^T C k; for the Sersic
index, d/dn acts on the interpolated a_j(n), v_j(n).  Batches of stamps of one
size are transformed together with ``numpy.fft.irfft2``.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from ._kernels import fourier_factors
from .ellipse import shape_covariance
from .mixtures import profile_mixture
from .shift import shift_factors

__all__ = [
    "FFT_SIZES",
    "PARAM_NAMES",
    "STAMP_CHUNK_BYTES",
    "Layout",
    "base_factors",
    "fft_size_at_least",
    "stamps_in_bands",
]

#: Stamp memory rendered at once: bands are transformed in blocks of about this many bytes.
STAMP_CHUNK_BYTES = 48 * 2**20

#: Nonlinear parameter slots of a source, in column order.
PARAM_NAMES = ("x", "y", "logre", "ee1", "ee2", "sersic_n")
#: Allowed stamp (FFT) sizes: even 7-smooth numbers.
FFT_SIZES = (
    16,
    20,
    24,
    28,
    32,
    40,
    48,
    56,
    64,
    80,
    96,
    112,
    128,
    160,
    192,
    224,
    256,
    320,
    384,
    448,
    512,
)


def fft_size_at_least(n, min_size=16, max_size=256):
    """Smallest allowed FFT size >= n, clipped to [min_size, max_size]."""
    for s in FFT_SIZES:
        if s >= max(n, min_size):
            return min(s, max_size)
    return max_size


class Layout:
    """How the sources of one patch are cut into stamp groups.

    Parameters
    ----------
    sizes : ndarray of int, shape (n_src,)
        Stamp size S of each source.
    free : ndarray of bool, shape (n_src, 6)
        Which of :data:`PARAM_NAMES` get a derivative column.
    pad : int
        Margin added around the image so every stamp fits.
    core : ndarray of int, shape (n_src,), optional
        Side of the centred box used for cross-source inner products
        (default: the whole stamp).
    anchors : ndarray of float, shape (n_src, 2), optional
        Integer pixel (x, y) on which each stamp is centred.  Default: the
        source position rounded.  A fit keeps them fixed within a stage so
        the model is a smooth function of position (a stamp that jumps by a
        pixel when a source crosses a half-pixel changes the truncated light).
    """

    def __init__(self, sizes, free, pad, core=None, anchors=None):
        self.anchors = None if anchors is None else np.asarray(anchors, float)
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.core = (
            self.sizes if core is None else np.minimum(np.asarray(core, np.int64), self.sizes)
        )
        self.free = np.asarray(free, dtype=bool)
        self.pad = int(pad)
        self.ncols = 1 + self.free.sum(1).astype(np.int64)
        keys = {}
        for s in range(self.sizes.size):
            keys.setdefault((int(self.sizes[s]), tuple(self.free[s])), []).append(s)
        self.groups = [
            (key[0], np.flatnonzero(key[1]), np.array(members))
            for key, members in sorted(keys.items())
        ]
        self.order = (
            np.concatenate([g[2] for g in self.groups]) if self.groups else np.zeros(0, int)
        )
        per_src = self.ncols * self.sizes**2
        offsets = np.zeros(self.sizes.size, dtype=np.int64)
        offsets[self.order] = (
            np.concatenate([[0], np.cumsum(per_src[self.order])[:-1]]) if self.order.size else []
        )
        self.offsets = offsets
        self.total = int(per_src.sum())

    def model_only(self):
        """The same stamps without derivative columns."""
        return Layout(
            self.sizes, np.zeros_like(self.free), self.pad, core=self.core, anchors=self.anchors
        )

    def origins(self, x, y):
        """Integer stamp origins (ox, oy) in padded-image pixels, and sub-pixel offsets."""
        if self.anchors is None:
            ix, iy = np.floor(np.asarray(x) + 0.5), np.floor(np.asarray(y) + 0.5)
        else:
            ix, iy = self.anchors[:, 0], self.anchors[:, 1]
        ox = (ix - self.sizes // 2 + self.pad).astype(np.int64)
        oy = (iy - self.sizes // 2 + self.pad).astype(np.int64)
        return ox, oy, np.asarray(x) - ix, np.asarray(y) - iy


def _frequencies(size):
    return np.fft.rfftfreq(size)[None, :], np.fft.fftfreq(size)[:, None]


def _shift_phase(k, centre, frac):
    """1-D shift factors and their derivatives in ``frac``, shape (g, len(k)).

    The integer part ``centre`` is an exact circular shift; the sub-pixel part ``frac`` is
    the tapered shift of :func:`.shift.shift_factors`, whose derivative is exact.
    """
    whole = np.exp(-2j * np.pi * np.ravel(k)[None, :] * centre)
    factors, derivative = shift_factors(k, frac, derivative=True)
    return whole * factors, whole * derivative


def _profiles(kinds, params):
    """Per source: galaxy?, covariance (xx, xy, yy), its derivatives, mixture (4, K), components."""
    n = len(kinds)
    gal = np.array([k != "STAR" for k in kinds], dtype=bool)
    cov3 = np.zeros((n, 3))
    dcov3 = np.zeros((n, 3, 3))
    mixes = [profile_mixture(kinds[i], params[i, 5]) if gal[i] else None for i in range(n)]
    ncomp = np.array([0 if m is None else len(m) for m in mixes], dtype=np.int64)
    table = np.zeros((n, 4, max(int(ncomp.max(initial=0)), 1)))
    if gal.any():
        cov, dcov = shape_covariance(params[gal, 2], params[gal, 3], params[gal, 4])
        cov3[gal] = cov.reshape(-1, 4)[:, [0, 1, 3]]
        dcov3[gal] = dcov.reshape(-1, 3, 4)[:, :, [0, 1, 3]]
        for i in np.flatnonzero(gal):
            m = mixes[i]
            table[i, :, : len(m)] = (m.amp, m.var, m.damp_dn, m.dvar_dn)
    return gal, cov3, dcov3, table, ncomp


def base_factors(layout, kinds, params, ox_oy_d):
    """Band-independent transforms of every stamp group (profile x phase x derivative).

    Parameters
    ----------
    layout : Layout
    kinds : sequence of str, length n_src
    params : ndarray, shape (n_src, 6)
        Current (x, y, logre, ee1, ee2, n) per source.
    ox_oy_d : tuple
        Output of :meth:`Layout.origins`.

    Returns
    -------
    list of ndarray, complex, shape (g, ncol, S, S//2 + 1), one per ``layout.groups`` entry
    """
    gal, cov, dcov, table, ncomp = _profiles(kinds, np.asarray(params, float))
    out = []
    for size, free_idx, members in layout.groups:
        kx, ky = _frequencies(size)
        c = size // 2
        px, dpx = _shift_phase(kx, c, ox_oy_d[2][members])
        py, dpy = _shift_phase(ky, c, ox_oy_d[3][members])
        base = np.empty((members.size, 1 + free_idx.size, size, size // 2 + 1), complex)
        fourier_factors(
            kx.ravel(),
            ky.ravel(),
            px,
            py,
            dpx,
            dpy,
            gal[members],
            cov[members],
            dcov[members],
            table[members],
            ncomp[members],
            free_idx.astype(np.int64),
            base,
        )
        out.append(base)
    return out


def stamps_in_bands(base, psf_stack, size, ctype):
    """Inverse transforms of ``base`` (n, S, S//2+1) times each band's PSF transform
    ``psf_stack`` (nb, S, S//2+1): the stamps (nb, n, S, S), in the real type of ``ctype``."""
    prod = base.astype(ctype, copy=False)[None] * psf_stack[:, None]
    return scipy.fft.irfft2(prod, s=(size, size), workers=1, overwrite_x=True)
