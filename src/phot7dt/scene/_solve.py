"""Band-batched flux solves and reduced Fisher systems (internal to ``_engine``).

Inputs per chunk of bands (nb): self Gram blocks ``blocks`` (nb, ns, C, C),
projections on w*d ``rhs`` (nb, ns, C) and, for the general path, the dense
Gram matrices ``gram`` (nb, ns*C, ns*C).  Column 0 of every source is its
unit-flux model; columns 1.. are its free nonlinear-parameter derivatives.

* :func:`separable` handles patches whose stamps do not overlap at all: every
  source is independent, so all solves are elementwise and the Fisher matrix
  is block diagonal (one block per source).
* :func:`general` handles overlapping stamps with dense per-band matrices,
  batched across bands.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Separable", "general", "separable"]


class Separable(NamedTuple):
    """Flux solve (and reduced system) of bands whose stamps do not overlap.

    ``f``, ``var`` (nb, ns): fluxes and their variances; ``chi2`` (nb,);
    with derivatives ``fisher`` (nth, nth), ``grad`` (nth,) and ``z``
    (nb, ns, nth), the flux response H_ff^-1 H_ft.
    """

    f: np.ndarray
    var: np.ndarray
    chi2: np.ndarray
    fisher: np.ndarray | None = None
    grad: np.ndarray | None = None
    z: np.ndarray | None = None


def separable(blocks, rhs, wdd, prec, mu, th, derivs, f_fisher=None):
    """Flux solve and reduced system when no two stamps overlap.

    ``f_fisher`` (nb, ns), optional: fluxes to weight the Fisher matrix with
    instead of the solved ones (the gradient and z then follow them too).

    Returns
    -------
    Separable
        With ``fisher``, ``grad`` and ``z`` only if ``derivs``.
    """
    G00, r0 = blocks[..., 0, 0], rhs[..., 0]
    Hp = G00 + prec
    active = Hp > 0
    safe = np.where(active, Hp, 1.0)
    f = np.where(active, (r0 + prec * mu) / safe, 0.0)
    out = Separable(
        f,
        np.where(active, 1.0 / safe, np.inf),
        wdd - 2.0 * np.sum(f * r0, axis=1) + np.sum(f * f * G00, axis=1),
    )
    if not derivs:
        return out
    cols, src = th
    ns, C = blocks.shape[1], blocks.shape[2]
    f = f if f_fisher is None else f_fisher
    Gi0 = blocks[..., 1:, 0]
    f2 = (f * f)[..., None, None]
    inv_hp = np.where(active, 1.0 / safe, 0.0)[..., None, None]
    per_src = np.sum(
        f2 * (blocks[..., 1:, 1:] - Gi0[..., :, None] * Gi0[..., None, :] * inv_hp), axis=0
    )
    full = np.zeros((ns, C, C))
    full[:, 1:, 1:] = per_src
    big = np.zeros((ns * C, ns * C))
    idx = np.arange(ns)[:, None, None] * C
    ar = np.arange(C)
    big[idx + ar[None, :, None], idx + ar[None, None, :]] = full
    grad = np.zeros((ns, C))
    grad[:, 1:] = np.sum(f[..., None] * (rhs[..., 1:] - f[..., None] * Gi0), axis=0)
    zf = np.zeros(rhs.shape)
    zf[..., 1:] = f[..., None] * Gi0 * inv_hp[..., 0]
    z = np.zeros((rhs.shape[0], ns, cols.size))
    z[:, src, np.arange(cols.size)] = zf.reshape(rhs.shape[0], -1)[:, cols]
    return out._replace(fisher=big[np.ix_(cols, cols)], grad=grad.ravel()[cols], z=z)


def flux_solve(gram, rhs, prec, mu, C):
    """Batched exact flux solve from dense Gram matrices.

    Returns
    -------
    H (nb, ns, ns), hinv (nb, ns, ns) with zeros for sources without data,
    f (nb, ns), active (nb, ns) bool, singular (bool).
    """
    nb, ns = rhs.shape[:2]
    u = np.arange(ns) * C
    H = gram[:, u][:, :, u]
    Hp = H + prec[:, :, None] * np.eye(ns)
    active = np.diagonal(Hp, axis1=1, axis2=2) > 0
    mask = active[:, :, None] & active[:, None, :]
    Hp = np.where(mask, Hp, 0.0) + np.where(active, 0.0, 1.0)[:, :, None] * np.eye(ns)
    singular = False
    try:
        hinv = np.linalg.inv(Hp)
    except np.linalg.LinAlgError:
        hinv, singular = np.linalg.pinv(Hp, hermitian=True), True
    hinv = np.where(mask, hinv, 0.0)
    b = np.where(active, rhs[..., 0] + prec * mu, 0.0)
    f = np.einsum("bij,bj->bi", hinv, b)
    return H, hinv, f, active, singular


def general(gram, hinv, f, rhs, th, resid_proj=None, prec=None, mu=None):
    """Reduced Fisher matrix, gradient and flux-theta coupling for overlapping stamps.

    Parameters
    ----------
    gram : ndarray (nb, ns*C, ns*C)
    hinv, f : from :func:`flux_solve` (possibly refined fluxes)
    rhs : ndarray (nb, ns, C)
    th : (cols, src) of the free parameters
    resid_proj : ndarray (nb, ns, C), optional
        Exact projections of every column on w*(d - model) (used when the
        cross terms in ``gram`` were cut to core boxes).

    Returns
    -------
    fisher (nth, nth), grad (nth,), z (nb, ns, nth)
    """
    cols, src = th
    nb, ns, C = rhs.shape
    u = np.arange(ns) * C
    fs = f[:, src]
    G_tu = gram[:, cols][:, :, u]
    H_tf = G_tu * fs[..., None]
    z = hinv @ H_tf.transpose(0, 2, 1)
    G_tt = gram[:, cols][:, :, cols]
    nth = cols.size
    # sum over bands of f_i f_j G_ij - H_tf z, the second as one matrix product over (band, source)
    fisher = np.einsum("bi,bij->ij", fs, G_tt * fs[:, None, :]) - H_tf.transpose(1, 0, 2).reshape(
        nth, nb * ns
    ) @ z.reshape(nb * ns, nth)
    if resid_proj is None:
        grad = np.sum(
            fs * (rhs.reshape(nb, -1)[:, cols] - np.einsum("bij,bj->bi", G_tu, f)), axis=0
        )
    else:
        g_f = resid_proj[..., 0] - prec * (f - mu)
        grad = np.sum(fs * resid_proj.reshape(nb, -1)[:, cols], axis=0) - np.einsum(
            "bij,bi->j", z, g_f
        )
    return fisher, grad, z
