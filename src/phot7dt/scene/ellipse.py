"""The Tractor's soft ellipse (log r_e, ee1, ee2) in patch-pixel coordinates.

Conventions (pixel frame, arrays indexed ``[y, x]``, pixel centres at integers):

* ``THETA`` (catalog, SExtractor ``THETA_IMAGE``) is the position angle of the
  major axis in degrees, counter-clockwise from the image +x axis.
* ``Re`` (catalog, px) is the half-light radius *along the major axis* of the
  nominal profile (the mixtures' own half-light radius is 0.77-1.0 r_e).
* ``ELL`` = 1 - b/a, q = b/a.
* Soft ellipticity: e = (1-q)/(1+q), |ee| = -ln(1-e), ee1 = -|ee| cos 2THETA,
  ee2 = +|ee| sin 2THETA, log r_e = ln Re.  (Equivalent to the Tractor's
  ``EllipseESoft.fromRAbPhi(Re, q, THETA - 90)`` with a NullWCS of 1 px scale.)
* Profile component k of variance v_k (r_e**2 units) has pixel covariance
  v_k * C with C = r_e**2 (u u^T + q**2 w w^T), u = (cos THETA, sin THETA),
  w = (-sin THETA, cos THETA).  q is floored at 1e-3 (the Tractor's a/b cap).

Output columns follow tract7dt (``_get_shape_params``): ``re_pix_fit`` =
``Re_fit`` = r_e, ``ab_fit`` = q, ``phi_deg_fit`` = (-theta_t deg) mod 180 with
theta_t = atan2(ee2, ee1)/2, ``ELL_fit`` = 1 - q, ``THETA_fit`` = phi - 90 in
[-90, 90) (a round source gives -90).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "Q_MIN",
    "catalog_to_soft",
    "shape_covariance",
    "soft_prior_sigmas",
    "soft_to_columns",
    "soft_to_q_theta",
]

#: Smallest axis ratio the ellipse can express (the Tractor caps a/b at 1000).
Q_MIN = 1e-3
_E_TINY = 1e-10


def catalog_to_soft(re_pix, ell, theta_deg):
    """Convert catalog (Re, ELL, THETA) to soft-ellipse parameters.

    Parameters
    ----------
    re_pix : array_like
        Major-axis half-light radius (px), > 0.
    ell : array_like
        Ellipticity 1 - b/a in [0, 1).
    theta_deg : array_like
        Major-axis angle (deg, CCW from +x).

    Returns
    -------
    logre, ee1, ee2 : ndarray
        Soft-ellipse parameters (ln px, dimensionless).
    """
    re_pix, ell, theta = np.broadcast_arrays(
        *(np.asarray(v, float) for v in (re_pix, ell, theta_deg))
    )
    q = np.clip(1.0 - ell, Q_MIN, 1.0)
    e = (1.0 - q) / (1.0 + q)
    ee = -np.log1p(-e)
    two_theta = np.deg2rad(2.0 * theta)
    return np.log(re_pix), -ee * np.cos(two_theta), ee * np.sin(two_theta)


def soft_to_q_theta(ee1, ee2):
    """Axis ratio q and major-axis angle THETA (deg, CCW from +x, [-90, 90)).

    A round ellipse (ee1 = ee2 = 0) returns THETA = -90, as tract7dt does.
    """
    ee1, ee2 = np.asarray(ee1, float), np.asarray(ee2, float)
    e = -np.expm1(-np.hypot(ee1, ee2))
    q = np.maximum((1.0 - e) / (1.0 + e), Q_MIN)
    phi = np.mod(-np.rad2deg(0.5 * np.arctan2(ee2, ee1)), 180.0)
    return q, phi - 90.0


def soft_to_columns(logre, ee1, ee2):
    """tract7dt's shape output columns from soft-ellipse parameters.

    Returns
    -------
    dict of ndarray
        ``re_pix_fit``, ``Re_fit`` (px), ``ab_fit`` (b/a), ``ELL_fit``,
        ``phi_deg_fit`` (deg, [0, 180)), ``THETA_fit`` (deg, [-90, 90)).
    """
    re = np.exp(np.asarray(logre, float))
    q, theta = soft_to_q_theta(ee1, ee2)
    return {
        "re_pix_fit": re,
        "ab_fit": q,
        "phi_deg_fit": theta + 90.0,
        "ELL_fit": 1.0 - q,
        "Re_fit": re.copy(),
        "THETA_fit": theta,
    }


def _q_and_derivative(E):
    t = np.exp(-E)
    q = t / (2.0 - t)
    dq = -2.0 * t / (2.0 - t) ** 2
    capped = q < Q_MIN
    return np.where(capped, Q_MIN, q), np.where(capped, 0.0, dq)


def shape_covariance(logre, ee1, ee2):
    """Unit covariance C (px**2) of the ellipse and its parameter derivatives.

    Parameters
    ----------
    logre, ee1, ee2 : array_like, shape (n,)
        Soft-ellipse parameters.

    Returns
    -------
    cov : ndarray, shape (n, 2, 2)
        C = r_e**2 (u u^T + q**2 w w^T), ordered [[xx, xy], [xy, yy]].
    dcov : ndarray, shape (n, 3, 2, 2)
        dC/d(logre, ee1, ee2).  At |ee| = 0 the (non-differentiable) cone is
        given its zero subgradient in the |ee| direction.
    """
    logre, ee1, ee2 = (np.atleast_1d(np.asarray(v, float)) for v in (logre, ee1, ee2))
    E = np.hypot(ee1, ee2)
    q, dq = _q_and_derivative(E)
    A, dA = 0.5 * (1.0 + q * q), q * dq
    B, dB = 0.5 * (1.0 - q * q), -q * dq
    small = E < _E_TINY
    Es = np.where(small, 1.0, E)
    g = np.where(small, 2.0, B / Es)
    dg = np.where(small, 0.0, (dB * Es - B) / Es**2)
    n1 = np.where(small, 0.0, ee1 / Es)
    n2 = np.where(small, 0.0, ee2 / Es)
    r2 = np.exp(2.0 * logre)
    eye = np.eye(2)
    M = np.stack([np.stack([-ee1, ee2], -1), np.stack([ee2, ee1], -1)], -2)
    cov = r2[:, None, None] * (A[:, None, None] * eye + g[:, None, None] * M)
    J1 = np.array([[-1.0, 0.0], [0.0, 1.0]])
    J2 = np.array([[0.0, 1.0], [1.0, 0.0]])
    dcov = np.empty(cov.shape[:1] + (3, 2, 2))
    dcov[:, 0] = 2.0 * cov
    for k, (nk, Jk) in enumerate(((n1, J1), (n2, J2)), start=1):
        term = (dA * nk)[:, None, None] * eye + (dg * nk)[:, None, None] * M + g[:, None, None] * Jk
        dcov[:, k] = r2[:, None, None] * term
    return cov, dcov


def soft_prior_sigmas(re_pix, ell, theta_deg, re_err, ell_err, theta_err):
    """Gaussian prior widths on (logre, ee1, ee2) from catalog errors.

    tract7dt's linear propagation (diagonal only): sigma(logre) = Re_ERR/Re;
    sigma(ee_i)**2 = (d ee_i/d ell * ELL_ERR)**2 + (d ee_i/d THETA * THETA_ERR)**2
    with THETA in degrees.  ee priors need both ELL_ERR and THETA_ERR.  Missing
    (NaN or <= 0) errors give NaN, meaning "no prior".

    Returns
    -------
    s_logre, s_ee1, s_ee2 : ndarray
    """
    arrays = np.broadcast_arrays(
        *(np.asarray(v, float) for v in (re_pix, ell, theta_deg, re_err, ell_err, theta_err))
    )
    re_pix, ell, theta, re_err, ell_err, theta_err = arrays
    with np.errstate(invalid="ignore", divide="ignore"):
        s_logre = np.where(re_err > 0, re_err / re_pix, np.nan)
        ellc = np.clip(ell, 0.0, 0.999)
        e = ellc / (2.0 - ellc)
        ee = -np.log1p(-e)
        angle = np.deg2rad(-2.0 * (theta - 90.0))
        dee_dell = 1.0 / ((1.0 - ellc) * (2.0 - ellc))
        k = 2.0 * np.pi / 180.0
        s1 = np.hypot(dee_dell * np.cos(angle) * ell_err, k * ee * np.sin(angle) * theta_err)
        s2 = np.hypot(dee_dell * np.sin(angle) * ell_err, k * ee * np.cos(angle) * theta_err)
        ok = (ell_err > 0) & (theta_err > 0) & (s1 > 0) & (s2 > 0)
    return s_logre, np.where(ok, s1, np.nan), np.where(ok, s2, np.nan)
