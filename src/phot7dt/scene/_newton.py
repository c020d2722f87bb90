"""Gauss-Newton linear algebra of the fit: damped solves, covariances and the convergence test.

:func:`newton_test` is the per-source convergence test used by the
Levenberg-Marquardt loop (:mod:`._lm`) and by the final check
(:mod:`._schedule`); :func:`covariance` inverts a Fisher matrix for the
reported errors.
"""

from __future__ import annotations

import numpy as np

__all__ = ["covariance", "newton_test", "solve_damped"]


def solve_damped(A, g, lam):
    """Solve (A + lam diag A) delta = g, robust to a singular A; returns delta."""
    d = np.diag(A).copy()
    d = np.maximum(d, 1e-12 * max(d.max(initial=0.0), 1e-300))
    M = A + lam * np.diag(d)
    try:
        return np.linalg.solve(M, g)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(M, g, rcond=None)[0]


def covariance(A):
    """Inverse of a Fisher matrix (pseudo-inverse if singular)."""
    try:
        return np.linalg.inv(A)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(A, hermitian=True)


def newton_test(prob, params, free, A, g, tol):
    """The convergence test at one point: per-source pass, ratio and predicted gain.

    The undamped Gauss-Newton step delta = A^-1 g (components pushing a
    parameter out of a bound it is within ``tol`` sigmas of removed) must be <= ``tol`` Fisher
    sigmas for every free parameter of a source, and its predicted ln P gain
    for that source, delta_s.g_s / 2, <= dlnp_stop * max(1, |ln P|) (the
    caller compares; this returns the gain).  Also returns the mask of the
    parameters left free (the others are held on their bounds in the next step).

    Returns
    -------
    ok, ratio, gain : ndarray, shape (n,)
        Step test passed, largest |delta| / sigma, predicted ln P gain per source.
    keep : ndarray of bool, shape (n_free,)
    """
    n = params.shape[0]
    keep = np.ones(g.size, bool)
    delta = solve_damped(A, g, 0.0)
    sig = _sigmas(A, keep)
    blocked = prob.outward(params, delta, free, near=tol * sig)
    if blocked.any():
        keep = ~blocked
        delta = np.zeros_like(g)
        delta[keep] = solve_damped(A[np.ix_(keep, keep)], g[keep], 0.0)
        sig = _sigmas(A, keep)
    owner = np.nonzero(free)[0]
    ratio = np.zeros(n)
    np.maximum.at(ratio, owner, np.abs(delta) / sig)
    gain = np.zeros(n)
    np.add.at(gain, owner, 0.5 * delta * g)
    return ratio <= tol, ratio, gain, keep


def _sigmas(A, keep):
    """Fisher errors of the ``keep`` parameters given the others fixed (inf elsewhere)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.diag(covariance(A[np.ix_(keep, keep)]))
    sig = np.full(keep.size, np.inf)
    sig[keep] = np.where(var > 0, np.sqrt(np.abs(var)), np.inf)
    return sig
