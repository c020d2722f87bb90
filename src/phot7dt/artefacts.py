"""Pixels no source model can explain: cosmic rays, hot pixels, hot/cold columns
and rows, satellite trails (GitHub issue "Honest errors on real coadds").

The fitting stage calls :func:`find_artefacts` on each patch and gives the
returned pixels zero weight. A plain library: numpy / scipy / numba only.

Detectors (each works in sigma units, S = image * sqrt(invvar), after an
optional per-band rescale so that the robust scatter of S is >= 1):

* **sharp** (cosmic rays, hot pixels; van Dokkum 2001-like): with m the median
  of the 8 neighbours, flag ``I - m - k * rho_max(FWHM) * max(m, 0) > t * sigma``.
  ``rho_max`` is the largest (I - m) / m that a pixel-integrated Gaussian or
  Moffat (beta = 1.5) PSF of the band's FWHM can produce at any sub-pixel
  centre (:func:`psf_sharpness_bound`), k a safety margin for PSF ellipticity
  and FWHM errors. Two passes: flagged pixels are replaced by m and their
  neighbours re-tested (thick cosmic-ray blobs).
* **columns / rows**: the mean of S winsorised at +-c over a window of L pixels
  along each column (row) must exceed *both* the mean of columns j-4..j-2 and
  of j+2..j+4 by ``line_sigma`` standard errors (hot; cold alike), grown along
  the column through ``line_sigma_low`` (hysteresis). Winsorising bounds what
  a star can add, and a star adds almost the same to a column and its
  neighbours 2-4 px away (chords of a wide disc); a galaxy edge (a step) fails
  the both-sides test.
* **trails** (B >= 2): on 2x2-binned S, D_b = S_b - median of the other bands
  (a trail is in a subset of bands, sources are in all), pixels where the other
  bands see a source are dropped, a 3x3 box smooths D, hysteresis components
  (``trail_sigma`` seed, ``trail_sigma_low`` extent) that are long
  (>= max(trail_min_length, trail_min_length_fwhm * FWHM)) and thin
  (length >= trail_min_aspect * width, from second moments) become a
  straight band of half-width max(FWHM, width / 2) along the fitted line.

Multi-band veto: a sharp or line flag present in >= max(veto_min_bands,
veto_band_fraction * B) bands within 1 px is a real source (artefacts are per
band) and is dropped. Masks are finally grown by ``grow_radius``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage as ndi

from phot7dt import _artefact_kernels as K

__all__ = ["ArtefactMask", "ArtefactSettings", "find_artefacts", "psf_sharpness_bound"]

_PLANE8 = np.zeros((3, 3, 3), bool)
_PLANE8[1] = True  # 8-connectivity inside a band, never across bands


@dataclass(frozen=True)
class ArtefactSettings:
    """Switches and thresholds of :func:`find_artefacts` (sigma = noise units).

    Attributes
    ----------
    sharp, columns, rows, trails : bool
        Which detectors run (default all).
    sharp_sigma : float
        Excess over the 8-neighbour median, beyond what the PSF allows, in sigma (5).
    sharp_psf_margin : float
        Factor k on the PSF's largest excess/median ratio; 1.5 covers PSF
        ellipticity up to ~0.3 and a ~10 % FWHM overestimate.
    sharp_iterations : int
        Passes (2: the second re-tests neighbours of flagged pixels).
    line_sigma, line_sigma_low : float
        Seed and extent thresholds of a column/row segment, in standard errors (5, 2.5).
    line_length : int
        Window along the column/row, px (48; a 1.5 sigma offset gives z ~ 9).
    line_clip : float
        Winsorisation of S before averaging, sigma (2): bounds what a star adds.
    trail_sigma, trail_sigma_low : float
        Seed and extent thresholds on the smoothed band-excess image, sigma (5, 2.5).
    trail_min_length : float
        Minimum trail length, px (30); also >= ``trail_min_length_fwhm`` (8) FWHM.
    trail_min_aspect : float
        Minimum length / width from second moments (6).
    trail_source_sigma : float
        Pixels where the other bands' median significance exceeds this many of
        its own sigma are real sources and not trail candidates (5).
    veto_min_bands, veto_band_fraction : int, float
        Multi-band veto (3 bands, 50 %); veto_min_bands = 0 switches it off.
    grow_radius : int
        Flags are grown by a (2r+1)^2 square, px (1).
    noise_rescale : bool
        Scale sigma up (never down) to the robust scatter of S per band.
    """

    sharp: bool = True
    columns: bool = True
    rows: bool = True
    trails: bool = True
    sharp_sigma: float = 5.0
    sharp_psf_margin: float = 1.5
    sharp_iterations: int = 2
    line_sigma: float = 5.0
    line_sigma_low: float = 2.5
    line_length: int = 48
    line_clip: float = 2.0
    trail_sigma: float = 5.0
    trail_sigma_low: float = 2.5
    trail_min_length: float = 30.0
    trail_min_length_fwhm: float = 8.0
    trail_min_aspect: float = 6.0
    trail_source_sigma: float = 5.0
    veto_min_bands: int = 3
    veto_band_fraction: float = 0.5
    grow_radius: int = 1
    noise_rescale: bool = True

    def __post_init__(self):
        for name in ("sharp_sigma", "sharp_psf_margin", "line_sigma", "line_sigma_low",
                     "line_clip", "trail_sigma", "trail_sigma_low", "trail_min_aspect"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ArtefactSettings.{name} must be > 0")
        if self.line_length < 8 or self.sharp_iterations < 1 or self.grow_radius < 0:
            raise ValueError("ArtefactSettings: line_length >= 8, sharp_iterations >= 1, "
                             "grow_radius >= 0 required")


@dataclass(frozen=True, eq=False)
class ArtefactMask:
    """Result of :func:`find_artefacts`.

    Attributes
    ----------
    mask : ndarray of bool, (B, ny, nx)
        New pixels to give zero weight (grown; never an already-masked pixel).
    n_sharp, n_column, n_trail : ndarray of int, (B,)
        Flagged pixels per band and kind, before growth (columns include rows).
    """

    mask: np.ndarray
    n_sharp: np.ndarray
    n_column: np.ndarray
    n_trail: np.ndarray


def find_artefacts(images, invvar, fwhm_pix, *, settings: ArtefactSettings = ArtefactSettings(),
                   gain=None) -> ArtefactMask:
    """Find pixels of one patch that no source model can explain.

    Parameters
    ----------
    images : array (B, ny, nx)
        Sky-subtracted, aligned images on a common flux scale.
    invvar : array (B, ny, nx)
        Inverse variance per pixel, flux^-2 (0 = already masked).
    fwhm_pix : array (B,)
        PSF FWHM per band, px (>= ~2).
    settings : ArtefactSettings
    gain : float or array (B,), optional
        Electrons per image unit, as given to the fitter: adds the sources'
        Poisson variance to ``invvar`` (sky only) in the sharpness test.

    Returns
    -------
    ArtefactMask
    """
    images = np.asarray(images, np.float32)
    invvar = np.asarray(invvar, np.float32)
    fwhm = np.asarray(fwhm_pix, float).reshape(-1)
    if images.ndim != 3 or invvar.shape != images.shape or fwhm.shape != images.shape[:1]:
        raise ValueError(f"need images/invvar (B, ny, nx) and fwhm (B,); got {images.shape}, "
                         f"{invvar.shape}, {fwhm.shape}")
    if not np.all(np.isfinite(fwhm) & (fwhm > 0)):
        raise ValueError(f"fwhm_pix must be finite and > 0, got {fwhm}")
    st = settings
    s, valid, work = K.significance(images, invvar)
    scale = np.ones(len(fwhm), np.float32)
    if st.noise_rescale:
        scale = np.maximum(_robust_sigma(s, valid, lower=True), 1.0).astype(np.float32)
        s /= scale[:, None, None]
    none = np.zeros(s.shape, bool)
    line = _veto(_find_lines(s, valid, st), st) if (st.columns or st.rows) else none
    free = valid & ~line
    inv_gain = np.zeros(len(fwhm)) if gain is None else 1.0 / np.broadcast_to(
        np.asarray(gain, float), fwhm.shape)
    sharp = none
    if st.sharp:
        sharp = _veto(_find_sharp(work, s, invvar, free, scale, inv_gain, fwhm, st), st)
    trail = none
    if st.trails and len(fwhm) >= 2:
        trail = _find_trails(s, free & ~sharp, fwhm, st) & valid
    mask = K.dilate(line | sharp | trail, st.grow_radius) & valid
    count = lambda f: f.sum(axis=(1, 2))  # noqa: E731
    return ArtefactMask(mask, count(sharp), count(line), count(trail & ~sharp & ~line))


def psf_sharpness_bound(fwhm: float) -> float:
    """Largest (I - m) / m of a pixel-integrated PSF of this FWHM (px).

    I is a pixel, m the median of its 8 neighbours. The maximum is over
    sub-pixel centres, over pixels >= 1e-3 of the peak (fainter ones cannot
    reach a 5 sigma excess unless the peak is > 5000 sigma) and over a Gaussian
    and a Moffat with beta = 1.5 (the sharpest members of the Moffat family at
    small and at large FWHM). The FWHM is rounded *down* to 0.02 px for
    caching, which only raises the bound.
    """
    return _bound(math.floor(float(fwhm) * 50.0) / 50.0)


@lru_cache(maxsize=1024)
def _bound(fwhm: float) -> float:
    over, half = 9, 4  # 9x9 sub-samples per pixel: converged to < 0.3 %
    sub = (np.arange(over) + 0.5) / over - 0.5
    g = (np.arange(-half, half + 1)[:, None] + sub).ravel()
    off = np.linspace(0.0, 0.5, 4)  # by symmetry a quarter pixel suffices
    dx, dy = (a.ravel()[:, None, None] for a in np.meshgrid(off, off))
    r2 = (g[None, None, :] - dx) ** 2 + (g[None, :, None] - dy) ** 2
    n = 2 * half + 1
    best = 0.0
    for beta in (None, 1.5):
        if beta is None:
            prof = np.exp(-r2 * (4.0 * math.log(2.0) / fwhm**2))
        else:
            prof = (1.0 + r2 * (4.0 * (2.0 ** (1.0 / beta) - 1.0) / fwhm**2)) ** -beta
        img = prof.reshape(len(dx), n, over, n, over).sum(axis=(2, 4))
        img /= img.max(axis=(1, 2), keepdims=True)
        win = sliding_window_view(img, (3, 3), axis=(1, 2)).reshape(len(dx), n - 2, n - 2, 9)
        m = np.median(np.delete(win, 4, axis=-1), axis=-1)
        rho = np.where(win[..., 4] >= 1e-3, (win[..., 4] - m) / m, 0.0)
        best = max(best, float(rho.max()))
    return best


def _robust_sigma(a, ok, step=4, lower=False):
    """Per-band robust sigma of ``a`` (B, n, m) on a sparse grid of ``ok`` pixels.

    1.4826 * MAD, or with ``lower`` median(-a | a < 0) / 0.6745: on a
    sky-subtracted image only noise makes negative values, so sources
    (positive) do not inflate it. 1 for bands with < 50 pixels.
    """
    a = a[:, ::step, ::step].reshape(a.shape[0], -1).astype(np.float64)
    ok = ok[:, ::step, ::step].reshape(a.shape)
    if lower:
        ok = ok & (a < 0)
        a = -a
    else:
        a = np.abs(a - _band_median(a, ok)[:, None])
    out = _band_median(a, ok) * (1 / 0.6745 if lower else 1.4826)
    return np.where(ok.sum(axis=1) >= 50, np.maximum(out, 1e-6), 1.0)


def _band_median(a, ok):
    """Median of a[b][ok[b]] per band (lower middle value), 0 if empty; one sort."""
    n = ok.sum(axis=1)
    srt = np.sort(np.where(ok, a, np.inf), axis=1)
    return np.where(n > 0, srt[np.arange(len(n)), np.maximum(n - 1, 0) // 2], 0.0)


def _veto(flag, st):
    """Drop flags present in many bands at the same place: artefacts are per band."""
    need = max(st.veto_min_bands, math.ceil(st.veto_band_fraction * flag.shape[0]))
    if st.veto_min_bands <= 0 or flag.shape[0] < need or not flag.any():
        return flag
    return flag & (K.band_counts(flag) < need)[None]


def _find_sharp(work, s, invvar, testable, scale, inv_gain, fwhm, st):
    """Cosmic rays / hot pixels: pixels sharper than the band's PSF allows."""
    bound = np.array([st.sharp_psf_margin * psf_sharpness_bound(f) for f in fwhm])
    flag = np.zeros(work.shape, bool)
    med = np.empty(work.shape, np.float32)  # read only where flagged
    test = testable
    for _ in range(st.sharp_iterations):
        new = np.zeros(work.shape, bool)
        K.sharp_pass(work, s, invvar, test, scale, bound, inv_gain, st.sharp_sigma, new, med)
        if not new.any():
            break
        flag |= new
        # L.A.Cosmic: replace the hit by its neighbours' median, re-test around it
        work = np.where(new, med, work)
        test = K.dilate(new, 1) & testable & ~flag
    return flag


def _clipped_var(c):
    """Variance of a unit normal winsorised at +-c."""
    phi = math.exp(-0.5 * c * c) / math.sqrt(2 * math.pi)
    inside = math.erf(c / math.sqrt(2))
    return inside - 2 * c * phi + c * c * (1 - inside)


def _find_lines(s, valid, st):
    """Hot/cold column and row segments, evaluated on blocks of 4 px."""
    out = np.zeros(s.shape, bool)
    step = 4
    wblk = max(st.line_length // step, 2)
    need = wblk * step // 2  # at least half of the window valid
    var1 = _clipped_var(st.line_clip)
    for on, along_x in ((st.columns, False), (st.rows, True)):
        if not on:
            continue
        tot, cnt = K.block_sums(s, valid, step, st.line_clip, along_x)
        mean, num = K.window_means(tot, cnt, wblk)
        # cal: correlated noise would inflate z; calibrated on empty-sky windows
        zl, zr, cal = K.line_z(mean, num, 2, 3, var1, need)
        K.line_hysteresis(zl, zr, cal, st.line_sigma, st.line_sigma_low, step, along_x, out)
    return out


def _find_trails(s, usable, fwhm, st):
    """Satellite trails: long thin features in a subset of bands."""
    sb, num = K.bin2(s, usable)
    ok = num > 0
    ref = K.band_reference(sb, num)
    d = np.where(ok, sb - ref, 0.0).astype(np.float32)
    d /= _robust_sigma(d, ok, step=2).astype(np.float32)[:, None, None]
    source = ref > st.trail_source_sigma * _robust_sigma(ref, ok, step=2)[:, None, None]
    d[source] = 0.0  # where the other bands see a source, D is colour, not a trail
    t = K.box3(d)
    t[source] = 0.0
    return _elongated(t, fwhm, st, s.shape)


def _elongated(t, fwhm, st, shape):
    """Paint the long, thin hysteresis components of ``t`` (binned) at full resolution."""
    out = np.zeros(shape, bool)
    lab, n = ndi.label(t > st.trail_sigma_low, structure=_PLANE8)
    if n == 0:
        return out
    seeded = np.zeros(n, bool)
    seeded[lab[t > st.trail_sigma] - 1] = True
    bi, yi, xi = np.nonzero(lab)
    li = lab[bi, yi, xi] - 1
    y, x = 2.0 * yi + 0.5, 2.0 * xi + 0.5  # binned-pixel centres in patch pixels
    w = np.bincount(li, minlength=n).astype(float)
    mom = [np.bincount(li, v, minlength=n) / w for v in (y, x, y * y, x * x, x * y)]
    cy, cx = mom[0], mom[1]
    vyy, vxx, vxy = mom[2] - cy**2 + 1 / 3, mom[3] - cx**2 + 1 / 3, mom[4] - cx * cy
    root = np.sqrt(0.25 * (vxx - vyy) ** 2 + vxy**2)
    length = np.sqrt(12 * (0.5 * (vxx + vyy) + root))
    width = np.sqrt(12 * np.maximum(0.5 * (vxx + vyy) - root, 0.0))
    band = np.rint(np.bincount(li, bi, minlength=n) / w).astype(int)
    need = np.maximum(st.trail_min_length, st.trail_min_length_fwhm * fwhm[band])
    good = seeded & (length >= need) & (length >= st.trail_min_aspect * width)
    theta = 0.5 * np.arctan2(2 * vxy, vxx - vyy)
    gy, gx = np.mgrid[0 : shape[1], 0 : shape[2]]
    for k in np.flatnonzero(good):
        ux, uy = math.cos(theta[k]), math.sin(theta[k])
        sel = li == k
        along = (y[sel] - cy[k]) * uy + (x[sel] - cx[k]) * ux
        pad = 1.0 + fwhm[band[k]]
        a = (gy - cy[k]) * uy + (gx - cx[k]) * ux
        p = -(gy - cy[k]) * ux + (gx - cx[k]) * uy
        hw = max(fwhm[band[k]], 0.5 * width[k])
        out[band[k]] |= (np.abs(p) <= hw) & (a >= along.min() - pad) & (a <= along.max() + pad)
    return out
