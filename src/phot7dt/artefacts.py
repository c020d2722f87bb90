"""Pixels no source model can explain: cosmic rays, hot pixels, bad columns and
rows, satellite trails (issue "Honest errors on real coadds"). The fitting stage
calls :func:`find_artefacts` on each patch and gives the returned pixels zero weight.

In sigma units (S = image sqrt(invvar); sigma scaled up to the scatter of the
negative pixels, which sources do not make), with B bands:

* **sharp** (L.A.Cosmic-like): I a pixel, m the median and mu the mean of its 8
  neighbours, s the sky sigma, M = max(m - 0.41 s, 0) (0.41 s: the noise of m):
  flag ``I - m - k rho M > sharp_sigma * sigma`` and ``I - m > k rho' mu``, with
  (rho, rho') = :func:`psf_sharpness_bound` (FWHM), k = sharp_psf_margin, or 1 where
  the other bands see no source (B >= 3); sigma^2 = s^2 + (1 + k rho) M / gain +
  w (0.41 (1 + k rho))^2 (s^2 + M / gain), w -> 1 on a source (other bands, ring
  2 px out): there m's noise enters too. mu guards the edges of steep PSF wings.
* **columns / rows**: the mean of S winsorised at +-line_clip over line_length px
  beats *both* the lines j-4..j-2 and j+2..j+4 by line_sigma standard errors
  (hot or cold): a star adds about as much 2-4 px away, a galaxy edge fails one side.
* **trails** (B >= 2): D = S_b - median of the other bands (2x2 bins, where they
  see no source: a trail is in few bands), 3x3-smoothed; thin pieces are followed
  along their line; >= max(trail_min_length, trail_min_length_fwhm FWHM,
  trail_min_aspect width) is a trail, masked over max(FWHM, width / 2) each side.

A sharp or line flag in >= max(veto_min_bands, veto_band_fraction B) bands within
1 px is a real source and dropped. Flags grow by ``grow_radius``.
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

_PLANE8 = np.pad(np.ones((1, 3, 3), bool), ((1, 1), (0, 0), (0, 0)))  # never across bands


@dataclass(frozen=True)
class ArtefactSettings:
    """Switches and thresholds of :func:`find_artefacts` (sigma: noise units; lengths: px)."""

    sharp: bool = True  #: run the cosmic-ray / hot-pixel test
    columns: bool = True  #: run the bad-column test
    rows: bool = True  #: run the bad-row test
    trails: bool = True  #: run the trail search (needs >= 2 bands)
    sharp_sigma: float = 5.0  #: threshold of the sharpness statistic q, sigma
    sharp_psf_margin: float = 1.5  #: k: covers PSF ellipticity ~0.3 / a ~10 % FWHM error
    sharp_iterations: int = 3  #: passes (later ones re-test the neighbours of hits)
    line_sigma: float = 5.0  #: a bad line's seed, standard errors of the window mean
    line_sigma_low: float = 2.5  #: a bad line's extent, standard errors
    line_length: int = 64  #: window along the line, px (1.5 sigma offset: z ~ 8)
    line_clip: float = 2.0  #: winsorisation of S before averaging, sigma
    trail_sigma: float = 5.0  #: seed of a trail piece on the smoothed band excess, sigma
    trail_sigma_low: float = 2.5  #: extent of a piece / of a good segment, sigma
    trail_min_length: float = 30.0  #: minimum trail length, px
    trail_min_length_fwhm: float = 8.0  #: ... and in FWHM
    trail_min_aspect: float = 6.0  #: ... and in widths
    source_sigma: float = 3.0  #: the other bands' median above this, in its sigma: a source
    veto_min_bands: int = 3  #: a flag in this many bands (within 1 px) is a source; 0 = off
    veto_band_fraction: float = 0.5  #: ... or in this fraction of the bands, if more
    grow_radius: int = 1  #: flags grow by a (2 r + 1)^2 square, px
    noise_rescale: bool = True  #: scale sigma up (never down) to the data's scatter

    def __post_init__(self):
        if min(self.sharp_sigma, self.sharp_psf_margin, self.line_sigma, self.line_sigma_low,
               self.line_clip, self.trail_sigma, self.trail_sigma_low, self.source_sigma,
               self.sharp_iterations, self.line_length - 15, self.grow_radius + 1) <= 0:
            raise ValueError(f"ArtefactSettings: thresholds must be > 0, sharp_iterations "
                             f">= 1, line_length >= 16, grow_radius >= 0; got {self}")


@dataclass(frozen=True, eq=False)
class ArtefactMask:
    """Result of :func:`find_artefacts`; counts are pixels before growth."""

    mask: np.ndarray  #: (B, ny, nx) bool: new pixels to give zero weight, grown
    n_sharp: np.ndarray  #: (B,) int: cosmic-ray / hot pixels per band
    n_column: np.ndarray  #: (B,) int: bad column and row pixels per band
    n_trail: np.ndarray  #: (B,) int: trail pixels per band


def find_artefacts(images, invvar, fwhm_pix, *, settings: ArtefactSettings = ArtefactSettings(),
                   gain=None) -> ArtefactMask:
    """Find the pixels of one patch that no source model can explain.

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
        Electrons per flux unit, as given to the fitter: the sources' Poisson
        variance (not in ``invvar``) then enters the sharpness test.
    """
    images, invvar = np.asarray(images, np.float32), np.asarray(invvar, np.float32)
    fwhm, st, nb = np.asarray(fwhm_pix, float).reshape(-1), settings, len(images)
    if images.ndim != 3 or invvar.shape != images.shape or fwhm.shape != (nb,):
        raise ValueError(f"need images, invvar (B, ny, nx) and fwhm_pix (B,); got "
                         f"{images.shape}, {invvar.shape}, {fwhm.shape}")
    if not np.all(np.isfinite(fwhm) & (fwhm > 0)):
        raise ValueError(f"fwhm_pix must be finite and > 0, got {fwhm}")
    s, valid, work = K.significance(images, invvar)
    scale = np.ones(nb)
    if st.noise_rescale:
        scale = np.maximum(_robust_sigma(s, valid, lower=True), 1.0)
        s /= scale.astype(np.float32)[:, None, None]
    none = np.zeros(s.shape, bool)
    ref = refsig = np.zeros((nb, 1, 1), np.float32)  # other bands' median, its significance
    if nb >= 2 and (st.trails or st.sharp):
        sb, num = K.bin2(*K.bin2(s, valid))  # on 4x4 bins: smooth and cheap
        ref = K.band_reference(sb, num)
        refsig = ref / _robust_sigma(ref, num > 0, step=1).astype(np.float32)[:, None, None]
    line = _veto(_find_lines(s, valid, st), st) if st.columns or st.rows else none
    free = valid & ~line
    sharp = trail = none
    if st.sharp:
        r = refsig if nb >= 3 else np.zeros((nb, 1, 1), np.float32)
        sharp = _veto(_find_sharp(work, s, invvar, free, scale, gain, fwhm, r, st), st)
    if st.trails and nb >= 2:
        trail = _find_trails(s, free & ~sharp, ref, refsig <= st.source_sigma, fwhm, st)
    mask, n = K.finalize(line, sharp, trail, valid, st.grow_radius)
    return ArtefactMask(mask, n[:, 1], n[:, 0], n[:, 2])


def psf_sharpness_bound(fwhm: float) -> tuple[float, float]:
    """Largest (I - m) / m and (I - m) / mean of a pixel-integrated PSF of this FWHM (px):
    I a pixel >= 1e-3 of the peak (fainter ones cannot reach 5 sigma unless the peak
    is > 5000 sigma), m the median and mean the mean of its 8 neighbours; maximum
    over sub-pixel centres for a Gaussian and a Moffat with beta = 1.5 (the sharpest
    of the Moffat family at small and at large FWHM). The FWHM is rounded *down* to
    0.02 px for caching, which only raises the bounds."""
    return _bound(math.floor(float(fwhm) * 50.0) / 50.0)


@lru_cache(maxsize=1024)
def _bound(fwhm: float) -> tuple[float, float]:
    over, half, n = 9, 4, 9  # 9x9 sub-samples per pixel: converged to < 0.3 %
    g = (np.arange(-half, half + 1)[:, None] + (np.arange(over) + 0.5) / over - 0.5).ravel()
    off = np.linspace(0.0, 0.5, 4)  # by symmetry a quarter pixel suffices
    dx, dy = (a.ravel()[:, None, None] for a in np.meshgrid(off, off))
    r2 = ((g[None, None, :] - dx) ** 2 + (g[None, :, None] - dy) ** 2) / fwhm**2
    best = np.zeros(2)
    moffat15 = (1.0 + 4.0 * (2.0 ** (2 / 3) - 1.0) * r2) ** -1.5
    for prof in (np.exp(-4.0 * math.log(2.0) * r2), moffat15):
        img = prof.reshape(len(dx), n, over, n, over).sum(axis=(2, 4))
        img /= img.max(axis=(1, 2), keepdims=True)
        win = sliding_window_view(img, (3, 3), axis=(1, 2)).reshape(len(dx), n - 2, n - 2, 9)
        nbr, v = np.delete(win, 4, axis=-1), np.where(win[..., 4] >= 1e-3, win[..., 4], 0.0)
        m = np.median(nbr, axis=-1)
        best = np.maximum(best, [((v - m) / m).max(), ((v - m) / nbr.mean(axis=-1)).max()])
    return float(best[0]), float(best[1])


def _robust_sigma(a, ok, step=4, lower=False):
    """Per-band robust sigma of ``a`` (B, n, m) over the ``ok`` pixels of a sparse grid:
    1.4826 MAD, or (``lower``) median(-a | a < 0) / 0.6745, which positive sources
    do not inflate. 1 for bands with < 50 pixels."""
    a = a[:, ::step, ::step].reshape(a.shape[0], -1).astype(np.float64)
    ok = ok[:, ::step, ::step].reshape(a.shape) & ((a < 0) if lower else True)
    n = ok.sum(axis=1)

    def med(v):  # per band: the others alternately +-inf keep the median, one partition
        v = np.where(ok, v, np.where(np.cumsum(~ok, axis=1) % 2, np.inf, -np.inf))
        return np.partition(v, v.shape[1] // 2, axis=1)[:, v.shape[1] // 2]
    out = med(-a) / 0.6745 if lower else 1.4826 * med(np.abs(a - med(a)[:, None]))
    return np.where(n >= 50, np.maximum(out, 1e-6), 1.0)


def _veto(flag, st):
    """Drop flags present in many bands at one place: artefacts are per band."""
    need = max(st.veto_min_bands, math.ceil(st.veto_band_fraction * flag.shape[0]))
    if st.veto_min_bands <= 0 or flag.shape[0] < need or not flag.any():
        return flag
    return flag & (K.band_counts(flag) < need)[None]


def _find_sharp(work, s, invvar, testable, scale, gain, fwhm, refsig, st):
    """Cosmic rays / hot pixels: pixels sharper than the band's PSF allows."""
    inv_gain = 0.0 if gain is None else 1.0 / np.broadcast_to(np.asarray(gain, float), scale.shape)
    rho = st.sharp_psf_margin * np.array([psf_sharpness_bound(f) for f in fwhm])
    par = np.stack(np.broadcast_arrays(scale, rho[:, 0], rho[:, 1], inv_gain), axis=1)
    flag, med, new = np.zeros(s.shape, bool), np.zeros(s.shape, np.float32), np.zeros((0, 3), int)
    for _ in range(st.sharp_iterations):
        new = K.sharp_pass(work, s, invvar, testable, flag, new, med, par, st.sharp_psf_margin,
                           refsig, st.source_sigma, st.sharp_sigma)
        if len(new) == 0:
            break
    return flag


def _find_lines(s, valid, st):
    """Hot/cold column and row segments, evaluated on blocks of 8 px."""
    out = np.zeros(s.shape, bool)
    step, c = 8, st.line_clip
    wblk, need = max(st.line_length // step, 2), st.line_length // 2
    var1 = (math.erf(c / math.sqrt(2)) * (1 - c * c) + c * c  # variance of winsorised N(0, 1)
            - 2 * c * math.exp(-0.5 * c * c) / math.sqrt(2 * math.pi))
    for on, along_x in ((st.columns, False), (st.rows, True)):
        if on:
            tot, cnt = K.block_sums(s, valid, step, c, along_x)
            num = np.rint(ndi.uniform_filter1d(cnt * 1.0, wblk, 1, mode="constant") * wblk)
            mean = ndi.uniform_filter1d(tot, wblk, 1, mode="constant") * wblk / np.maximum(num, 1)
            zl, zr, cal = K.line_z(mean, num.astype(np.int32), 2, 3, var1, need, st.line_sigma_low)
            K.line_hysteresis(zl, zr, cal, st.line_sigma, st.line_sigma_low, step, wblk,
                              along_x, out)
    return out


def _find_trails(s, usable, ref, quiet, fwhm, st):
    """Satellite trails: long straight features in a subset of bands (2x2-binned)."""
    sb, num = K.bin2(s, usable)
    pad = ((0, 0), (0, sb.shape[1] % 2), (0, sb.shape[2] % 2))  # 4x4 -> 2x2 bins
    ref, quiet = (np.pad(a.repeat(2, 1).repeat(2, 2), pad, mode="edge") for a in (ref, quiet))
    known = (num > 0) & quiet  # elsewhere D is a source's colour or PSF, not a trail
    d = np.where(known, sb - ref, np.float32(0.0))
    d /= _robust_sigma(d, known, step=2).astype(np.float32)[:, None, None]
    d = np.pad(d, ((0, 0), (1, 1), (1, 1)))  # 3x3 sum / 3: unit variance
    d = d[:, :-2] + d[:, 1:-1] + d[:, 2:]
    t = np.where(known, (d[:, :, :-2] + d[:, :, 1:-1] + d[:, :, 2:]) / 3.0, 0.0)
    out = np.zeros(s.shape, bool)
    gy, gx = np.ogrid[0 : s.shape[1], 0 : s.shape[2]]
    for b, cy, cx, theta, width in _pieces(t, fwhm, st):
        line = _trace(t[b], known[b], cy, cx, theta, st)
        if line is None:
            continue
        (ly, lx, uy, ux, s0, s1), f = line, fwhm[b]
        if s1 - s0 >= max(st.trail_min_length, st.trail_min_length_fwhm * f,
                          st.trail_min_aspect * width):
            a = (gy - ly) * uy + (gx - lx) * ux
            p = (gx - lx) * uy - (gy - ly) * ux
            out[b] |= (np.abs(p) <= max(f, width / 2)) & (a >= s0 - f) & (a <= s1 + f)
    return out


def _pieces(t, fwhm, st):
    """Seeded hysteresis components of ``t`` (binned) >= 3 FWHM long and >= 3x longer
    than wide: yields (band, centre y, x (bins), angle from +x, width (px))."""
    lab, n = ndi.label(t > st.trail_sigma_low, structure=_PLANE8)
    if n == 0:
        return
    bi, yi, xi = np.nonzero(lab)
    li, w = lab[bi, yi, xi] - 1, np.bincount(lab[lab > 0] - 1, minlength=n)
    seeded = np.bincount(lab[t > st.trail_sigma] - 1, minlength=n) > 0
    cy, cx, yy, xx, xy, band = (np.bincount(li, v, minlength=n) / w
                                for v in (yi, xi, yi * yi, xi * xi, xi * yi, bi))
    vyy, vxx, vxy = yy - cy**2 + 1 / 12, xx - cx**2 + 1 / 12, xy - cx * cy
    root = np.sqrt(0.25 * (vxx - vyy) ** 2 + vxy**2)
    length = 2 * np.sqrt(12 * (0.5 * (vxx + vyy) + root))  # a uniform strip; 2 px bins
    width = 2 * np.sqrt(12 * np.maximum(0.5 * (vxx + vyy) - root, 0.0))
    band = np.rint(band).astype(int)
    theta = 0.5 * np.arctan2(2 * vxy, vxx - vyy)
    for k in np.flatnonzero(seeded & (length >= 3 * fwhm[band]) & (length >= 3 * width)):
        yield band[k], cy[k], cx[k], theta[k], width[k]


def _trace(t, known, cy, cx, theta, st, seg=6):
    """Follow a piece's line (angle +-0.1 rad, offset +-3 bins: max of the sum of ``t``
    capped at 2 trail_sigma, so a bright blob cannot pull it) across the binned patch
    in segments: good (median > trail_sigma_low), unknown (mostly unknown: bridged
    between good ones) or bad. Returns (y, x, uy, ux, s0, s1) of the run around the
    piece in patch px, or None if fewer than half of its segments are good."""
    ny, nx = t.shape
    n = int(math.hypot(ny, nx)) + 1
    s = np.arange(-n, n + 1)
    th = theta + np.linspace(-0.1, 0.1, 21)[:, None, None]
    off = np.arange(-3, 4)[None, :, None]
    yi = np.rint(cy + s * np.sin(th) + off * np.cos(th)).astype(int)
    xi = np.rint(cx + s * np.cos(th) - off * np.sin(th)).astype(int)
    inside = (yi >= 0) & (yi < ny) & (xi >= 0) & (xi < nx)
    kn = inside & known[yi.clip(0, ny - 1), xi.clip(0, nx - 1)]
    v = np.where(kn, t[yi.clip(0, ny - 1), xi.clip(0, nx - 1)], 0.0)
    a, o = np.unravel_index(np.minimum(v, 2 * st.trail_sigma).sum(axis=-1).argmax(), v.shape[:2])
    k = len(s) // seg
    kn, v, ins = (q[a, o, : k * seg].reshape(k, seg) for q in (kn, v, inside))
    cnt = kn.sum(axis=1)
    med = np.sort(np.where(kn, v, np.inf))[np.arange(k), (cnt - 1).clip(0) // 2]
    good = med > st.trail_sigma_low
    state = np.where(ins.sum(axis=1) < seg / 2, -1, np.where(cnt < seg / 2, 0, 2 * good - 1))
    c, ok = n // seg, state >= 0  # the run of good / unknown segments around the piece
    hi = c + np.argmin(np.append(ok[c:], False)) - 1
    lo = c - np.argmin(np.append(ok[c::-1], False)) + 1
    good = np.flatnonzero(state[lo : hi + 1] == 1)  # unknown ends are not bridged
    if len(good) == 0 or 2 * len(good) < good[-1] - good[0] + 1:
        return None
    lo, hi = lo + good[0], lo + good[-1]
    tha, o = theta + (a - 10) * 0.01, o - 3
    y0, x0 = cy + o * math.cos(tha), cx - o * math.sin(tha)
    return (2 * y0 + 0.5, 2 * x0 + 0.5, math.sin(tha), math.cos(tha),
            2.0 * (lo * seg - n), 2.0 * ((hi + 1) * seg - n))
