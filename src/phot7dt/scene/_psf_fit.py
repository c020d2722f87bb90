"""Expectation-maximisation fit of a Gaussian mixture to a PSF stamp.

Same recipe as the Tractor's ``GaussianMixturePSF.fromStamp`` (restated, not
copied): the stamp is normalised to unit sum with negative pixels set to 0,
pixel values act as sample weights at pixel centres (origin = stamp centre),
initial weights 1/N, means 0, covariances (k+1) I px**2.  Iteration stops
after ``n_iter`` steps or when the weighted log-likelihood changes by less
than 1e-12 (relative).  Deterministic.
"""

from __future__ import annotations

import numpy as np

__all__ = ["em_fit_stamp"]


def em_fit_stamp(stamp, n_components, n_iter=1000):
    """Fit ``n_components`` Gaussians to a 2-D stamp by weighted EM.

    Parameters
    ----------
    stamp : ndarray, shape (H, W)
        PSF image, centre at (W//2, H//2).
    n_components : int
        Number of Gaussians (>= 1).
    n_iter : int
        Maximum EM iterations.

    Returns
    -------
    amp : ndarray, shape (J,)
    mean : ndarray, shape (J, 2)
        (x, y) px relative to the stamp centre.
    var : ndarray, shape (J, 2, 2)
        Covariances in px**2.
    """
    img = np.where(np.isfinite(stamp), np.maximum(stamp, 0.0), 0.0)
    if not img.sum() > 0 or n_components < 1:
        msg = "EM PSF fit needs a stamp with positive flux and n_components >= 1"
        raise ValueError(msg)
    h, w = img.shape
    yy, xx = np.mgrid[:h, :w]
    keep = img.ravel() > 0
    pts = np.stack([xx.ravel() - w // 2, yy.ravel() - h // 2], 1)[keep].astype(float)
    wts = img.ravel()[keep] / img.sum()
    amp = np.full(n_components, 1.0 / n_components)
    mean = np.zeros((n_components, 2))
    var = np.array([(k + 1.0) * np.eye(2) for k in range(n_components)])
    last = -np.inf
    for _ in range(n_iter):
        resp, loglike = _e_step(pts, amp, mean, var)
        amp, mean, var = _m_step(pts, wts, resp)
        ll = float(np.sum(wts * loglike))
        if abs(ll - last) <= 1e-12 * max(1.0, abs(ll)):
            break
        last = ll
    return amp, mean, var


def _e_step(pts, amp, mean, var):
    inv = np.linalg.inv(var)
    det = np.linalg.det(var)
    d = pts[None, :, :] - mean[:, None, :]
    d2 = np.einsum("jni,jik,jnk->jn", d, inv, d)
    logp = (
        np.log(np.maximum(amp, 1e-300))[:, None]
        - 0.5 * d2
        - np.log(2 * np.pi * np.sqrt(det))[:, None]
    )
    top = logp.max(0)
    total = top + np.log(np.exp(logp - top).sum(0))
    return np.exp(logp - total), total


def _m_step(pts, wts, resp):
    r = resp * wts[None, :]
    nk = np.maximum(r.sum(1), 1e-300)
    mean = (r @ pts) / nk[:, None]
    d = pts[None, :, :] - mean[:, None, :]
    var = np.einsum("jn,jni,jnk->jik", r, d, d) / nk[:, None, None]
    var += 1e-6 * np.eye(2)  # keeps a collapsing component invertible
    return nk / nk.sum(), mean, var
