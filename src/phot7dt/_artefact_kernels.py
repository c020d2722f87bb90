"""Numba pixel loops of :mod:`phot7dt.artefacts`: one pass each over a
(B, ny, nx) stack, where numpy would need several full-size temporaries."""

from __future__ import annotations

import numpy as np
from numba import njit

#: Standard deviation of the median of 8 unit normals (simulated: 0.410).
MEDIAN8_NOISE = 0.41
_jit = njit(cache=True, nogil=True)
_inline = njit(cache=True, nogil=True, inline="always")  # no call overhead (array refcounts)


@_jit
def significance(images, invvar):
    """S = image * sqrt(invvar) (sigma units; 0 where invalid), validity (invvar > 0,
    finite), and the image padded by 2 px of +inf, which also marks invalid
    pixels: +inf only raises neighbour medians, i.e. makes tests more cautious."""
    nb, ny, nx = images.shape
    s = np.zeros((nb, ny, nx), np.float32)
    valid = np.zeros((nb, ny, nx), np.bool_)
    work = np.full((nb, ny + 4, nx + 4), np.inf, np.float32)
    for b in range(nb):
        for y in range(ny):
            for x in range(nx):
                w, v = invvar[b, y, x], images[b, y, x]
                if w > 0 and np.isfinite(w) and np.isfinite(v):
                    s[b, y, x], valid[b, y, x], work[b, y + 2, x + 2] = v * np.sqrt(w), True, v
    return s, valid, work


@_inline
def _sharp_test(work, invvar, par, k, refsig, src, thresh, b, y, x, buf):
    """Cosmic-ray test of pixel (y, x) (``work`` is padded: y + 2, x + 2); formula in
    the ``artefacts`` docstring. par[b] = (noise scale, k rho_median, k rho_mean,
    1 / gain); refsig: the other bands' median in its sigma (4x4 bins; (B, 1, 1):
    none). Returns m, or nan (the pixel can be a source)."""
    sky2 = par[b, 0] ** 2 / invvar[b, y, x]
    sky = np.sqrt(sky2)
    v, lo, tot, n = work[b, y + 2, x + 2], np.inf, 0.0, 0
    for yy in range(y + 1, y + 4):
        for xx in range(x + 1, x + 4):
            if yy != y + 2 or xx != x + 2:
                lo, buf[n], n = min(lo, work[b, yy, xx]), work[b, yy, xx], n + 1
                tot += work[b, yy, xx] if work[b, yy, xx] < np.inf else 0.0
    kr, km = par[b, 1] / k, par[b, 2] / k
    # m >= min(neighbours) and the test falls with m: a cheap rejection
    if v - lo - kr * max(lo - MEDIAN8_NOISE * sky, 0.0) <= thresh * sky:
        return np.nan
    m = _sorted(buf, 8)[3:5].mean()
    n = 0  # ring at Chebyshev distance 2: its median (a CR track crosses it twice)
    for yy in range(y, y + 5):
        for xx in range(x, x + 5, 1 if yy == y or yy == y + 4 else 4):
            buf[8 + n], n = work[b, yy, xx], n + 1
    w = min(max(_sorted(buf[8:], 16)[7:9].mean() / (sky * 0.31) / 2.0 - 1.0, 0.0), 1.0)
    r = refsig[b, min(y // 4, refsig.shape[1] - 1), min(x // 4, refsig.shape[2] - 1)]
    if refsig.shape[1] == 1 or r > src:  # no other bands, or they see a source:
        kr, km = par[b, 1], par[b, 2]  # the full margin
    if refsig.shape[1] > 1:
        w = max(w, min(max(r - src + 1.0, 0.0), 1.0))  # 0 at src - 1 sigma, 1 at src
    signal = max(m - MEDIAN8_NOISE * sky, 0.0)
    amp = (1.0 + kr) * MEDIAN8_NOISE
    # the pixel's noise, at most a PSF's peak (not I: a CR would inflate it), and m's
    poisson = par[b, 3] * signal
    var = sky2 + (1.0 + par[b, 1] / k) * poisson + w * amp * amp * (sky2 + poisson)
    return m if (m < np.inf and v - m - kr * signal > thresh * np.sqrt(var)
                 and v - m > km * max(tot / 8.0, 0.0)) else np.nan


@_inline
def _sorted(a, n):
    """Insertion sort of a[:n] in place (n <= 16: cheaper than a general sort)."""
    for i in range(1, n):
        u, j = a[i], i
        while j > 0 and a[j - 1] > u:
            a[j] = a[j - 1]
            j -= 1
        a[j] = u
    return a[:n]


@_jit
def sharp_pass(work, s, invvar, test, flag, seeds, med, par, k, refsig, src, thresh):
    """Pass 1 (no ``seeds``): test the ``test`` pixels with s >= thresh - 2 (fainter
    ones would need m < -2 sigma: noise). Later passes: replace the seeds (n, 3)
    in ``work`` by their ``med`` (L.A.Cosmic) and test their neighbours.
    Sets ``flag`` and ``med``; returns the new flags' (b, y, x)."""
    nb, ny, nx = s.shape
    cand = [(0, 0, 0)][:0]
    for i in range(len(seeds)):
        b, y, x = seeds[i, 0], seeds[i, 1], seeds[i, 2]
        work[b, y + 2, x + 2] = med[b, y, x]
        for yy in range(max(y - 1, 0), min(y + 2, ny)):
            for xx in range(max(x - 1, 0), min(x + 2, nx)):
                cand.append((b, yy, xx))
    for b in range(nb if len(seeds) == 0 else 0):
        for y in range(ny):
            for x in range(nx):
                if s[b, y, x] >= thresh - 2.0 and test[b, y, x]:
                    cand.append((b, y, x))
    buf = np.empty(24)
    out = np.empty((len(cand), 3), np.int64)
    n = 0
    for b, y, x in cand:
        if test[b, y, x] and not flag[b, y, x]:
            m = _sharp_test(work, invvar, par, k, refsig, src, thresh, b, y, x, buf)
            if m == m:  # not nan
                flag[b, y, x], med[b, y, x] = True, m
                out[n, 0], out[n, 1], out[n, 2] = b, y, x
                n += 1
    return out[:n]


@_jit
def band_counts(flag):
    """Number of bands with a flag inside the 3x3 box around each pixel (ny, nx)."""
    nb, ny, nx = flag.shape
    count = np.zeros((ny, nx), np.int32)
    last = np.full((ny, nx), -1, np.int32)  # counts each band once per pixel
    for b in range(nb):
        for y in range(ny):
            for x in range(nx):
                if flag[b, y, x]:
                    for yy in range(max(y - 1, 0), min(y + 2, ny)):
                        for xx in range(max(x - 1, 0), min(x + 2, nx)):
                            if last[yy, xx] != b:
                                last[yy, xx] = b
                                count[yy, xx] += 1
    return count


@_jit
def finalize(line, sharp, trail, valid, r):
    """Union of the flags grown by a (2r+1)^2 square, on valid pixels only, and
    per-band pixel counts (B, 3) of each kind before growth (line > sharp > trail)."""
    nb, ny, nx = valid.shape
    mask = np.zeros((nb, ny, nx), np.bool_)
    counts = np.zeros((nb, 3), np.int64)
    for b in range(nb):
        for y in range(ny):
            for x in range(nx):
                kind = 0 if line[b, y, x] else 1 if sharp[b, y, x] else 2 if trail[b, y, x] else 3
                if kind == 3:
                    continue
                counts[b, kind] += 1
                for yy in range(max(y - r, 0), min(y + r + 1, ny)):
                    for xx in range(max(x - r, 0), min(x + r + 1, nx)):
                        mask[b, yy, xx] = valid[b, yy, xx]
    return mask, counts


@_jit
def block_sums(s, valid, step, clip, along_x):
    """Sums of clip(s, -clip, clip) (s = 0 where invalid) and valid counts over
    blocks of ``step`` px along each column (``along_x``: row): (B, blocks, lines)."""
    nb, ny, nx = s.shape
    n, m = (nx, ny) if along_x else (ny, nx)
    tot = np.zeros((nb, (n + step - 1) // step, m), np.float32)
    cnt = np.zeros((nb, (n + step - 1) // step, m), np.int32)
    for b in range(nb):
        for y in range(ny):
            if along_x:  # accumulate a block in registers, one write
                for i in range(tot.shape[1]):
                    acc, c = np.float32(0.0), 0
                    for x in range(i * step, min(i * step + step, nx)):
                        acc += min(max(s[b, y, x], -clip), clip)
                        c += valid[b, y, x]
                    tot[b, i, y], cnt[b, i, y] = acc, c
            else:
                for x in range(nx):
                    tot[b, y // step, x] += min(max(s[b, y, x], -clip), clip)
                    cnt[b, y // step, x] += valid[b, y, x]
    return tot, cnt


@_jit
def line_z(mean, cnt, gap, width, var1, min_count, lo):
    """z of each line's window mean against the mean of the lines j-gap-width+1..j-gap
    (left) and j+gap..j+gap+width-1 (right); windows with < min_count pixels do not count.

    var1 is the variance of one clipped unit normal. Lines without both sides
    get 0 (a one-sided test fires on star wings), and so do lines whose |z| < lo
    or whose sides differ in sign. Returns (zl, zr, cal), cal[b] = rms of zl
    (>= 1) over empty-sky windows of every 4th row (line and both sides within
    2.5 standard errors of 0, |zl| < 4), or 1 if fewer than 50 of them.
    """
    nb, n, m = mean.shape
    zl = np.zeros((nb, n, m), np.float32)
    zr = np.zeros((nb, n, m), np.float32)
    cal = np.ones(nb, np.float32)
    pm, pv, pk = np.zeros(m + 1), np.zeros(m + 1), np.zeros(m + 1)  # prefix sums
    for b in range(nb):
        z2, nz = 0.0, 0
        for i in range(n):
            for j in range(m):
                ok = cnt[b, i, j] >= min_count
                pm[j + 1] = pm[j] + (mean[b, i, j] if ok else 0.0)
                pv[j + 1] = pv[j] + (1.0 / cnt[b, i, j] if ok else 0.0)
                pk[j + 1] = pk[j] + ok
            for j in range(gap + width - 1, m - gap - width + 1):
                a, c = j - gap - width + 1, j + gap
                kl, kr = pk[j - gap + 1] - pk[a], pk[c + width] - pk[c]
                if cnt[b, i, j] < min_count or kl == 0 or kr == 0:
                    continue
                own = 1.0 / cnt[b, i, j]
                lm, rm = (pm[j - gap + 1] - pm[a]) / kl, (pm[c + width] - pm[c]) / kr
                dl, dr = mean[b, i, j] - lm, mean[b, i, j] - rm
                se2 = var1 * own  # |z| < |d| / se: skip what cannot reach lo (but sample cal)
                if i % 4 and (min(dl * dl, dr * dr) < lo * lo * se2 or dl * dr <= 0):
                    continue
                zl[b, i, j] = z = dl / np.sqrt(se2 + var1 * (pv[j - gap + 1] - pv[a]) / kl**2)
                zr[b, i, j] = dr / np.sqrt(se2 + var1 * (pv[c + width] - pv[c]) / kr**2)
                if max(abs(mean[b, i, j]), abs(lm), abs(rm)) < 2.5 * np.sqrt(se2) and abs(z) < 4:
                    z2, nz = z2 + z * z, nz + 1
        if nz >= 50:
            cal[b] = max(np.sqrt(z2 / nz), 1.0)
    return zl, zr, cal


@_jit
def line_hysteresis(zl, zr, cal, hi, lo, step, bridge, along_x, out):
    """Flag runs of blocks where a line beats *both* sides by lo * cal[b] and that
    hold a block beating both by hi * cal[b] (hot or cold); runs < ``bridge``
    blocks apart are joined (a star on a bad column hides the offset, not the
    damage). Sets the runs' pixels in ``out`` (B, ny, nx)."""
    nb, n, m = zl.shape
    npix = out.shape[2] if along_x else out.shape[1]
    for b in range(nb):
        for sign in (1.0, -1.0):
            for j in range(m):
                start, seeded, last = -1, False, -(10**9)
                for i in range(n + 1):
                    z = min(sign * zl[b, i, j], sign * zr[b, i, j]) / cal[b] if i < n else -1.0
                    if z > lo:
                        if start < 0:
                            start, seeded = i, False
                        seeded = seeded or z > hi
                    elif start >= 0:
                        if seeded:
                            for p in range((last if start - last <= bridge else start) * step,
                                           min(i * step, npix)):
                                if along_x:
                                    out[b, j, p] = True
                                else:
                                    out[b, p, j] = True
                            last = i
                        start = -1


@_jit
def bin2(s, usable):
    """2x2-binned significance (sum / sqrt(n_usable): unit variance) and counts."""
    nb, ny, nx = s.shape
    out = np.zeros((nb, ny // 2, nx // 2), np.float32)
    num = np.zeros((nb, ny // 2, nx // 2), np.int32)
    for b in range(nb):
        for y in range(ny // 2 * 2):
            for x in range(nx // 2 * 2):
                if usable[b, y, x]:
                    out[b, y // 2, x // 2] += s[b, y, x]
                    num[b, y // 2, x // 2] += 1
    return out / np.sqrt(np.maximum(num, 1)).astype(np.float32), num


@_jit
def band_reference(sb, num):
    """Per band, the median over the *other* bands with data; for B >= 5 the median
    over all bands (one band moves it by at most one rank; computed once per pixel)."""
    nb, ny, nx = sb.shape
    ref = np.zeros((nb, ny, nx), np.float32)
    buf = np.empty(nb, np.float32)
    for y in range(ny):
        for x in range(nx):
            for b in range(nb if nb < 5 else 1):
                k = 0
                for c in range(nb):
                    if num[c, y, x] > 0 and (nb >= 5 or c != b):
                        buf[k] = sb[c, y, x]
                        k += 1
                if k > 0 and nb >= 5:
                    ref[:, y, x] = np.median(buf[:k])
                elif k > 0:
                    ref[b, y, x] = np.median(buf[:k])
    return ref
