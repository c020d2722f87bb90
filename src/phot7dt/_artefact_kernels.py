"""Numba pixel loops behind :mod:`phot7dt.artefacts`.

Each kernel is one pass over a (B, ny, nx) stack; numpy would need several
full-size temporaries for the same work (e.g. an 8-neighbour median through
``sliding_window_view`` is ~10x slower), and the whole detector must run in a
few tens of ms on a 40-band 250x250 patch.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def significance(images, invvar):
    """Pixel significance S = image * sqrt(invvar) (sigma units), validity, and
    the image with +inf at invalid pixels (for the sharpness test).

    Invalid pixels (invvar <= 0 or a non-finite value) get S = 0, valid = False.
    """
    nb, ny, nx = images.shape
    s = np.zeros((nb, ny, nx), np.float32)
    valid = np.zeros((nb, ny, nx), np.bool_)
    work = np.full((nb, ny, nx), np.inf, np.float32)
    for b in range(nb):
        for y in range(ny):
            for x in range(nx):
                w = invvar[b, y, x]
                v = images[b, y, x]
                if w > 0 and np.isfinite(w) and np.isfinite(v):
                    s[b, y, x] = v * np.sqrt(w)
                    valid[b, y, x] = True
                    work[b, y, x] = v
    return s, valid, work


@njit(cache=True, nogil=True)
def _median8(work, b, y, x, buf):
    """Median of the 8 neighbours; off-patch / invalid neighbours count as +inf,
    which only raises the median, i.e. makes the sharpness test more cautious."""
    nb, ny, nx = work.shape
    k = 0
    for dy in range(-1, 2):
        for dx in range(-1, 2):
            if dy == 0 and dx == 0:
                continue
            yy, xx = y + dy, x + dx
            v = np.inf
            if 0 <= yy < ny and 0 <= xx < nx:
                v = work[b, yy, xx]
            j = k  # insertion sort: 8 values, cheaper than a general sort
            while j > 0 and buf[j - 1] > v:
                buf[j] = buf[j - 1]
                j -= 1
            buf[j] = v
            k += 1
    return 0.5 * (buf[3] + buf[4])


#: Standard deviation of the median of 8 unit normals (simulated: 0.410).
MEDIAN8_NOISE = 0.41


@njit(cache=True, nogil=True)
def _ring_significance(work, b, y, x, sky):
    """Mean of the 16 pixels at Chebyshev distance 2, in units of its noise:
    an estimate of "a source is here" that the pixel and its 8 neighbours
    (a cosmic-ray track) do not enter."""
    nb, ny, nx = work.shape
    tot, k = 0.0, 0
    for yy in range(max(y - 2, 0), min(y + 3, ny)):
        for xx in range(max(x - 2, 0), min(x + 3, nx)):
            if max(abs(yy - y), abs(xx - x)) == 2 and np.isfinite(work[b, yy, xx]):
                tot += work[b, yy, xx]
                k += 1
    return tot / np.sqrt(max(k, 1) * sky) if k > 0 else 0.0


@njit(cache=True, nogil=True)
def sharp_pass(work, s, invvar, test, scale, bound, inv_gain, thresh, flag, med):
    """One L.A.Cosmic-like pass over the pixels where ``test`` is set.

    With I the pixel (flux), m the median of its 8 neighbours, a pixel is
    flagged when ``q = I - m - bound[b] * max(m - 0.41 sigma_sky, 0) > thresh * sigma``.
    ``bound`` is the largest (I - m) / m a PSF of the band can produce; it
    multiplies the part of m that is not the median's own noise (0.41 sigma),
    else positive noise next to a faint cosmic ray would hide it. Noise:
    sigma^2 = sigma_sky^2 * (1 + w * (1 + bound)^2 * 0.41^2) + Poisson, where
    w in [0, 1] rises from 0 to 1 as the ring 2 px away goes from 2 to 4
    sigma: next to a source m is signal and its noise, amplified by the bound,
    enters q (on a star's wing m can fluctuate low by 1 sigma). The Poisson
    term inv_gain[b] * (1 + bound[b]) * max(m - 0.41 sigma_sky, 0) uses the
    highest value a PSF could have there, not I, which a cosmic ray inflates.
    Pixels with significance ``s`` < thresh - 2 are skipped: they could only
    pass with m < -2 sigma (noise); skipping them is what makes the pass
    cheap. Flagged pixels get ``flag = True`` and their m in ``med``.
    """
    nb, ny, nx = work.shape
    buf = np.empty(8, np.float64)
    for b in range(nb):
        for y in range(ny):
            for x in range(nx):
                if s[b, y, x] < thresh - 2.0 or not test[b, y, x]:
                    continue
                m = _median8(work, b, y, x, buf)
                if not np.isfinite(m):
                    continue
                sky2 = scale[b] ** 2 / invvar[b, y, x]
                signal = max(m - MEDIAN8_NOISE * np.sqrt(sky2), 0.0)
                w = min(max(0.5 * _ring_significance(work, b, y, x, sky2) - 1.0, 0.0), 1.0)
                amp = (1.0 + bound[b]) * MEDIAN8_NOISE
                var = sky2 * (1.0 + w * amp * amp) + inv_gain[b] * (1.0 + bound[b]) * signal
                if work[b, y, x] - m - bound[b] * signal > thresh * np.sqrt(var):
                    flag[b, y, x] = True
                    med[b, y, x] = m


@njit(cache=True, nogil=True)
def dilate(flag, r):
    """Grow each band's flags by a (2r+1) x (2r+1) square (flags are sparse)."""
    out = flag.copy()
    nb, ny, nx = flag.shape
    for b in range(nb):
        for y in range(ny):
            for x in range(nx):
                if flag[b, y, x]:
                    for yy in range(max(y - r, 0), min(y + r + 1, ny)):
                        for xx in range(max(x - r, 0), min(x + r + 1, nx)):
                            out[b, yy, xx] = True
    return out


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def block_sums(s, valid, step, clip, along_x):
    """Sums of clip(s, -clip, clip) and valid counts over blocks of ``step``
    pixels along each column (``along_x``: along each row), shape
    (B, n_blocks, n_lines). Windows are then built from blocks: evaluating a
    48 px window at every pixel would cost ``step`` times more for nothing."""
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
                        acc += min(max(s[b, y, x], -clip), clip)  # s = 0 where invalid
                        c += valid[b, y, x]
                    tot[b, i, y] = acc
                    cnt[b, i, y] = c
            else:
                i = y // step
                for x in range(nx):
                    tot[b, i, x] += min(max(s[b, y, x], -clip), clip)
                    cnt[b, i, x] += valid[b, y, x]
    return tot, cnt


@njit(cache=True, nogil=True, fastmath=True)
def window_means(tot, cnt, wblk):
    """Mean over the window of ``wblk`` blocks centred on each block (running
    sums, shorter at the ends), and its pixel count."""
    nb, nblk, m = tot.shape
    mean = np.zeros((nb, nblk, m), np.float32)
    num = np.zeros((nb, nblk, m), np.int32)
    acc = np.zeros(m)
    c = np.zeros(m, np.int64)
    h = wblk // 2
    for b in range(nb):
        acc[:] = 0.0
        c[:] = 0
        for k in range(nblk + h):  # window of block k - h is [k - wblk, k)
            for j in range(m):
                if k < nblk:
                    acc[j] += tot[b, k, j]
                    c[j] += cnt[b, k, j]
                if k - wblk >= 0:
                    acc[j] -= tot[b, k - wblk, j]
                    c[j] -= cnt[b, k - wblk, j]
                if k - h >= 0 and c[j] > 0:
                    mean[b, k - h, j] = acc[j] / c[j]
                    num[b, k - h, j] = c[j]
    return mean, num


@njit(cache=True, nogil=True, fastmath=True)
def line_z(mean, cnt, gap, width, var1, min_count):
    """z-scores of each line's window mean against the mean of the lines on its
    left (j-gap-width+1 .. j-gap) and on its right (j+gap .. j+gap+width-1).

    ``var1`` is the variance of one clipped unit-normal pixel; windows with
    fewer than ``min_count`` valid pixels do not count. Lines without both
    sides (the outer gap + width - 1 lines of the patch) get z = 0: a one-sided
    test fires on gradients such as star wings. Returns (zl, zr, cal): cal[b]
    is the rms of zl over windows of empty sky (level within 3 standard
    errors of 0, |zl| < 4), >= 1, or 1 if fewer than 50 such windows.
    """
    nb, n, m = mean.shape
    zl = np.zeros((nb, n, m), np.float32)
    zr = np.zeros((nb, n, m), np.float32)
    cal = np.ones(nb, np.float32)
    pm = np.zeros(m + 1)  # prefix sums over lines of mean, 1/count and validity
    pv = np.zeros(m + 1)
    pk = np.zeros(m + 1)
    for b in range(nb):
        z2, nz = 0.0, 0
        for i in range(n):
            for j in range(m):
                ok = cnt[b, i, j] >= min_count
                pm[j + 1] = pm[j] + (mean[b, i, j] if ok else 0.0)
                pv[j + 1] = pv[j] + (1.0 / cnt[b, i, j] if ok else 0.0)
                pk[j + 1] = pk[j] + ok
            for j in range(gap + width - 1, m - gap - width + 1):
                kl = pk[j - gap + 1] - pk[j - gap - width + 1]
                kr = pk[j + gap + width] - pk[j + gap]
                if cnt[b, i, j] < min_count or kl == 0 or kr == 0:
                    continue
                own = 1.0 / cnt[b, i, j]
                lm = (pm[j - gap + 1] - pm[j - gap - width + 1]) / kl
                rm = (pm[j + gap + width] - pm[j + gap]) / kr
                lv = (pv[j - gap + 1] - pv[j - gap - width + 1]) / kl**2
                rv = (pv[j + gap + width] - pv[j + gap]) / kr**2
                zl[b, i, j] = z = (mean[b, i, j] - lm) / np.sqrt(var1 * (own + lv))
                zr[b, i, j] = (mean[b, i, j] - rm) / np.sqrt(var1 * (own + rv))
                if abs(mean[b, i, j]) < 3.0 * np.sqrt(var1 * own) and abs(z) < 4.0:
                    z2 += z * z
                    nz += 1
        if nz >= 50:
            cal[b] = max(np.sqrt(z2 / nz), 1.0)
    return zl, zr, cal


@njit(cache=True, nogil=True, fastmath=True)
def line_hysteresis(zl, zr, cal, hi, lo, step, along_x, out):
    """Flag runs of blocks along each line where the line beats *both* sides by
    lo * cal[b] and which contain a block beating both by hi * cal[b] (hot and
    cold alike); ``out`` (B, ny, nx) gets the runs' pixels."""
    nb, n, m = zl.shape
    npix = out.shape[2] if along_x else out.shape[1]
    for b in range(nb):
        for sign in (1.0, -1.0):
            for j in range(m):
                start, seeded = -1, False
                for i in range(n + 1):
                    z = -1.0
                    if i < n:
                        z = min(sign * zl[b, i, j], sign * zr[b, i, j]) / cal[b]
                    if z > lo:
                        if start < 0:
                            start, seeded = i, False
                        seeded = seeded or z > hi
                    elif start >= 0:
                        if seeded:
                            for p in range(start * step, min(i * step, npix)):
                                if along_x:
                                    out[b, j, p] = True
                                else:
                                    out[b, p, j] = True
                        start = -1


@njit(cache=True, nogil=True)
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
    for b in range(nb):
        for y in range(ny // 2):
            for x in range(nx // 2):
                if num[b, y, x] > 0:
                    out[b, y, x] /= np.sqrt(num[b, y, x])
    return out, num


@njit(cache=True, nogil=True)
def _select(a, n, k):
    """k-th smallest of a[:n] (Hoare selection, in place): O(n), no allocation."""
    lo, hi = 0, n - 1
    while lo < hi:
        pivot = a[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return a[k]


@njit(cache=True, nogil=True)
def _median(a, n):
    if n % 2 == 1:
        return _select(a, n, n // 2)
    hi = _select(a, n, n // 2)
    lo = a[0]
    for i in range(1, n // 2):  # after selection, a[:n//2] holds the smaller half
        lo = max(lo, a[i])
    return 0.5 * (lo + hi)


@njit(cache=True, nogil=True)
def band_reference(sb, num):
    """Per band, the median over the *other* bands (usable ones only).

    For B >= 5 the median over all bands is used instead: one band moves it by
    at most one rank, and it is computed once per pixel, not B times.
    """
    nb, ny, nx = sb.shape
    ref = np.zeros((nb, ny, nx), np.float32)
    buf = np.empty(nb)
    for y in range(ny):
        for x in range(nx):
            for b in range(nb if nb < 5 else 1):
                k = 0
                for c in range(nb):
                    if num[c, y, x] > 0 and (nb >= 5 or c != b):
                        buf[k] = sb[c, y, x]
                        k += 1
                if k == 0:
                    continue
                if nb >= 5:
                    ref[:, y, x] = _median(buf, k)
                else:
                    ref[b, y, x] = _median(buf, k)
    return ref


@njit(cache=True, nogil=True)
def box3(d):
    """3x3 box sum / 3 (unit variance for independent pixels; zero padding)."""
    nb, ny, nx = d.shape
    tmp = np.zeros_like(d)
    out = np.zeros_like(d)
    for b in range(nb):
        for y in range(ny):
            for x in range(nx):
                v = d[b, y, x]
                if x > 0:
                    v += d[b, y, x - 1]
                if x < nx - 1:
                    v += d[b, y, x + 1]
                tmp[b, y, x] = v
        for y in range(ny):
            for x in range(nx):
                v = tmp[b, y, x]
                if y > 0:
                    v += tmp[b, y - 1, x]
                if y < ny - 1:
                    v += tmp[b, y + 1, x]
                out[b, y, x] = v / 3.0
    return out
