"""Numba kernels over flat stamp buffers (weighted Gram blocks, projections).

Stamps of source ``s`` live in ``buf[offsets[s] : offsets[s] + ncols[s]*S*S]``
as ``(ncol, S, S)`` with S = ``sizes[s]``; the stamp's pixel (0, 0) sits at
padded-image pixel ``(oy[s], ox[s])``.  All images are padded so that every
stamp lies inside them (no clipping needed).  Compiled with ``cache=True``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "add_model",
    "crop_stamps",
    "fourier_factors",
    "gram_pairs",
    "overlapping_pairs",
    "padded_data",
    "poisson_weights",
    "positive_range",
    "project",
    "self_terms",
    "weighted_residual",
]


@njit(cache=True, nogil=True, fastmath=True)
def gram_pairs(buf, offsets, sizes, ncols, ox, oy, pair_s, pair_t, w, cmax, bx, by, bs):
    """Weighted inner products of every column pair of overlapping stamps.

    The sums run over the overlap of the boxes (bx, by, bs) (origin and side
    in padded pixels, inside each stamp): full stamps for exact products, or
    smaller "core" boxes for cheap cross-source terms.

    Returns
    -------
    blocks : ndarray, shape (n_pair, cmax, cmax)
        blocks[p, i, j] = sum_pix w * col_{s,i} * col_{t,j} for pair p = (s, t).
    """
    npair = pair_s.size
    blocks = np.zeros((npair, cmax, cmax))
    for p in range(npair):
        s, t = pair_s[p], pair_t[p]
        ss, st = sizes[s], sizes[t]
        x0, x1 = max(bx[s], bx[t]), min(bx[s] + bs[s], bx[t] + bs[t])
        y0, y1 = max(by[s], by[t]), min(by[s] + bs[s], by[t] + bs[t])
        ns, nt = ncols[s], ncols[t]
        if cmax == 1 and s != t:  # flux-only: a plain weighted dot product (vectorises)
            acc = 0.0
            for yy in range(y0, y1):  # 1-d row views: ~5x faster than 2-d indexing (SIMD)
                rs = offsets[s] + (yy - oy[s]) * ss - ox[s]
                rt = offsets[t] + (yy - oy[t]) * st - ox[t]
                a_row, b_row, w_row = buf[rs + x0 : rs + x1], buf[rt + x0 : rt + x1], w[yy, x0:x1]
                for k in range(x1 - x0):
                    acc += np.float64(w_row[k]) * (np.float64(a_row[k]) * np.float64(b_row[k]))
            blocks[p, 0, 0] = acc
            continue
        if x1 <= x0:
            continue
        # row-wise: tmp_j = w * b_j over the row, then contiguous dot products (SIMD)
        width = x1 - x0
        tmp = np.empty((nt, width))
        for yy in range(y0, y1):
            rs = offsets[s] + (yy - oy[s]) * ss - ox[s] + x0
            rt = offsets[t] + (yy - oy[t]) * st - ox[t] + x0
            w_row = w[yy, x0:x1]
            for j in range(nt):
                b_row = buf[rt + j * st * st : rt + j * st * st + width]
                for k in range(width):
                    tmp[j, k] = np.float64(w_row[k]) * b_row[k]
            for i in range(ns):
                a_row = buf[rs + i * ss * ss : rs + i * ss * ss + width]
                for j in range(nt):
                    t_row = tmp[j]
                    acc = 0.0
                    for k in range(width):
                        acc += a_row[k] * t_row[k]
                    blocks[p, i, j] += acc
    return blocks


@njit(cache=True, nogil=True, fastmath=True)
def self_terms(buf, offsets, sizes, ncols, ox, oy, w, d, cmax):
    """Per-source weighted Gram blocks and projections on w*d, over whole stamps.

    Row-wise: tmp_j = w * col_j over one stamp row, then contiguous dot
    products (SIMD-friendly).

    Returns
    -------
    blocks : ndarray, shape (n_src, cmax, cmax)
    rhs : ndarray, shape (n_src, cmax)
    """
    n = sizes.size
    blocks = np.zeros((n, cmax, cmax))
    rhs = np.zeros((n, cmax))
    for s in range(n):
        ss, nc = sizes[s], ncols[s]
        plane = ss * ss
        tmp = np.empty((nc, ss))
        for yy in range(ss):
            base = offsets[s] + yy * ss
            wrow = w[oy[s] + yy, ox[s] : ox[s] + ss]
            drow = d[oy[s] + yy, ox[s] : ox[s] + ss]
            for j in range(nc):
                col = buf[base + j * plane : base + j * plane + ss]
                t_row = tmp[j]
                acc = 0.0
                for k in range(ss):
                    t_row[k] = np.float64(wrow[k]) * col[k]
                    acc += t_row[k] * np.float64(drow[k])
                rhs[s, j] += acc
            for i in range(nc):
                col = buf[base + i * plane : base + i * plane + ss]
                for j in range(i, nc):
                    t_row = tmp[j]
                    acc = 0.0
                    for k in range(ss):
                        acc += col[k] * t_row[k]
                    blocks[s, i, j] += acc
        for i in range(nc):
            for j in range(i):
                blocks[s, i, j] = blocks[s, j, i]
    return blocks, rhs


@njit(cache=True, nogil=True, fastmath=True)
def project(buf, offsets, sizes, ncols, ox, oy, image, cmax):
    """Inner products of columns with an image: out[s, i] = sum col_{s,i} * image.

    Only the first ``cmax`` columns of each source are projected.
    """
    n = sizes.size
    out = np.zeros((n, cmax))
    for s in range(n):
        ss = sizes[s]
        for i in range(min(ncols[s], cmax)):
            base = offsets[s] + i * ss * ss
            acc = 0.0
            for yy in range(ss):  # 1-d row views (SIMD)
                col = buf[base + yy * ss : base + (yy + 1) * ss]
                row = image[oy[s] + yy, ox[s] : ox[s] + ss]
                for k in range(ss):
                    acc += col[k] * row[k]
            out[s, i] = acc
    return out


@njit(cache=True, nogil=True, fastmath=True)
def add_model(buf, offsets, sizes, ox, oy, flux, model):
    """Add flux[s] * column 0 of every stamp into ``model`` (in place)."""
    for s in range(sizes.size):
        f = flux[s]
        if f == 0.0:
            continue
        ss = sizes[s]
        base = offsets[s]
        for yy in range(ss):
            col = buf[base + yy * ss : base + (yy + 1) * ss]
            row = model[oy[s] + yy, ox[s] : ox[s] + ss]
            for k in range(ss):
                row[k] += f * col[k]


@njit(cache=True, nogil=True)
def crop_stamps(image, ox, oy, size, out):
    """Copy the size x size boxes of ``image`` at origins (ox[j], oy[j]) into ``out[j]``."""
    for j in range(ox.size):
        for yy in range(size):
            row = image[oy[j] + yy, ox[j] : ox[j] + size]
            for xx in range(size):
                out[j, yy, xx] = row[xx]


@njit(cache=True, nogil=True)
def padded_data(images, invvar, pad, dtype):
    """Zero-padded data and weights (dtype ``dtype``) in one pass.

    Pixels whose image or invvar is non-finite (or invvar <= 0) get zero data
    and weight.

    Returns
    -------
    data, ivar : ndarray, shape (B, ny + 2 pad, nx + 2 pad)
    wdd : ndarray, float64, shape (B,)
        sum of w * d^2 per band.
    n_bad : int
        Number of pixels whose image or invvar is non-finite.
    """
    nb, ny, nx = images.shape
    shape = (nb, ny + 2 * pad, nx + 2 * pad)
    data, ivar = np.zeros(shape, dtype), np.zeros(shape, dtype)
    wdd = np.zeros(nb)
    n_bad = 0
    for b in range(nb):
        acc = 0.0
        for y in range(ny):
            for x in range(nx):
                d = np.float64(images[b, y, x])
                v = np.float64(invvar[b, y, x])
                if not (np.isfinite(d) and np.isfinite(v)):
                    n_bad += 1
                elif v > 0.0:
                    data[b, y + pad, x + pad] = images[b, y, x]
                    ivar[b, y + pad, x + pad] = invvar[b, y, x]
                    acc += v * d * d
        wdd[b] = acc
    return data, ivar, wdd, n_bad


@njit(cache=True, nogil=True, fastmath=True)
def weighted_residual(d, w, model):
    """w * (d - model) (dtype of ``model``) and the chi^2 change the model makes.

    The change is sum of w * model * (model - 2 d).
    """
    ny, nx = d.shape
    wr = np.empty((ny, nx), model.dtype)
    acc = 0.0
    for y in range(ny):
        for x in range(nx):
            dd, ww, m = np.float64(d[y, x]), np.float64(w[y, x]), np.float64(model[y, x])
            wr[y, x] = ww * (dd - m)
            acc += ww * m * (m - 2.0 * dd)
    return wr, acc


@njit(cache=True, nogil=True)
def positive_range(image):
    """(count, min, max) of the finite values > 0 of a 2-D array (min = max = 0 if none)."""
    n, lo, hi = 0, np.inf, -np.inf
    for y in range(image.shape[0]):
        for x in range(image.shape[1]):
            v = np.float64(image[y, x])
            if v > 0.0 and v < np.inf:
                n += 1
                lo = min(lo, v)
                hi = max(hi, v)
    return (n, lo, hi) if n else (0, 0.0, 0.0)


@njit(cache=True, nogil=True)
def poisson_weights(ivar, data, models, gain):
    """Weights 1 / (1/ivar + max(model, 0)/gain) and sum of w d^2 per band, in one pass.

    Returns
    -------
    w : ndarray, like ``ivar``
    wdd : ndarray, float64, shape (B,)
    """
    nb, ny, nx = ivar.shape
    w = np.empty_like(ivar)
    wdd = np.zeros(nb)
    for b in range(nb):
        acc = 0.0
        for y in range(ny):
            for x in range(nx):
                v = np.float64(ivar[b, y, x])
                m = models[b, y, x]
                if m > 0.0:
                    v = v / (1.0 + v * m / gain[b])
                w[b, y, x] = v
                d = np.float64(data[b, y, x])
                acc += np.float64(w[b, y, x]) * d * d
        wdd[b] = acc
    return w, wdd


@njit(cache=True, nogil=True)
def _gaussian_row(alpha, beta, gamma, out):
    """out[x] = exp(alpha x^2 + beta x + gamma), x = 0.. (alpha <= 0).

    Uses the ratio recurrence where it is safe.
    """
    n = out.size
    if gamma < -600.0 or abs(alpha) * (2 * n + 1) + abs(beta) > 600.0:
        for x in range(n):
            out[x] = np.exp(alpha * x * x + beta * x + gamma)
        return
    e, r, q = np.exp(gamma), np.exp(alpha + beta), np.exp(2.0 * alpha)
    for x in range(n):
        out[x] = e
        e *= r
        r *= q


@njit(cache=True, nogil=True, fastmath=True)
def fourier_factors(kx, ky, px, py, dpx, dpy, gal, cov, dcov, mix, ncomp, params, out):
    """Band-independent transforms of a stamp group: profile x phase and its derivative columns.

    Each mixture component is a Gaussian in k; along a row of the grid
    (k_x = x / S) it is evaluated by the ratio recurrence of
    exp(alpha x^2 + beta x + gamma), three exponentials per row.

    Parameters
    ----------
    kx, ky : (S2,), (S,) frequencies (cycles/px) of the rfft2 grid.
    px, py, dpx, dpy : (g, S2), (g, S) complex
        Shift factors along x and y and their derivatives in the sub-pixel offset.
    gal : (g,) bool
        Galaxy (else point source: profile 1).
    cov : (g, 3) ellipse covariance (xx, xy, yy); dcov : (g, 3, 3) its derivatives
        in (log r_e, ee1, ee2).
    mix : (g, 4, K) mixture amplitude, variance (r_e units folded into ``cov``),
        d amplitude / dn, d variance / dn; ``ncomp`` (g,) components used.
    params : (ncol - 1,) int, parameter index (0..5) of each derivative column.
    out : (g, ncol, S, S2) complex, filled.
    """
    c = -2.0 * np.pi**2
    g, ncol = out.shape[0], out.shape[1]
    n2 = kx.size
    step = kx[1] - kx[0] if n2 > 1 else 0.0
    prof = np.empty(n2)
    dq = np.empty(n2)
    dn = np.empty(n2)
    e = np.empty(n2)
    q = np.empty(n2)
    for i in range(g):
        for y in range(ky.size):
            ky_ = ky[y]
            if gal[i]:
                prof[:] = 0.0
                dq[:] = 0.0
                dn[:] = 0.0
                for x in range(n2):
                    q[x] = (
                        cov[i, 0] * kx[x] * kx[x]
                        + 2.0 * cov[i, 1] * kx[x] * ky_
                        + cov[i, 2] * ky_ * ky_
                    )
                for j in range(ncomp[i]):
                    a, v = mix[i, 0, j], mix[i, 1, j]
                    cv = c * v
                    _gaussian_row(
                        cv * cov[i, 0] * step * step,
                        2.0 * cv * cov[i, 1] * ky_ * step,
                        cv * cov[i, 2] * ky_ * ky_,
                        e,
                    )
                    for x in range(n2):
                        prof[x] += a * e[x]
                        dq[x] += a * cv * e[x]
                        dn[x] += (mix[i, 2, j] + c * q[x] * mix[i, 3, j] * a) * e[x]
            else:
                prof[:] = 1.0
                dq[:] = 0.0
                dn[:] = 0.0
            for x in range(n2):
                kx_ = kx[x]
                ph = px[i, x] * py[i, y]
                out[i, 0, y, x] = prof[x] * ph
                for k in range(ncol - 1):
                    p = params[k]
                    if p == 0:
                        val = prof[x] * dpx[i, x] * py[i, y]
                    elif p == 1:
                        val = prof[x] * px[i, x] * dpy[i, y]
                    elif p <= 4:
                        d = p - 2
                        val = (
                            dq[x]
                            * (
                                dcov[i, d, 0] * kx_ * kx_
                                + 2.0 * dcov[i, d, 1] * kx_ * ky_
                                + dcov[i, d, 2] * ky_ * ky_
                            )
                            * ph
                        )
                    else:
                        val = dn[x] * ph
                    out[i, 1 + k, y, x] = val


def overlapping_pairs(ox, oy, sizes):
    """All (s, t), s < t, whose boxes (origin ox, oy; side sizes) overlap.

    Returns
    -------
    pair_s, pair_t : ndarray of int64
    """
    ox, oy, sz = (np.asarray(v, np.int64) for v in (ox, oy, sizes))
    ovx = np.maximum(ox[:, None], ox[None, :]) < np.minimum(
        ox[:, None] + sz[:, None], ox[None, :] + sz[None, :]
    )
    ovy = np.maximum(oy[:, None], oy[None, :]) < np.minimum(
        oy[:, None] + sz[:, None], oy[None, :] + sz[None, :]
    )
    s, t = np.nonzero(np.triu(ovx & ovy, k=1))
    return s.astype(np.int64), t.astype(np.int64)
