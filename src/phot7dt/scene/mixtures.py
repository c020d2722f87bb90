"""Radial profiles as mixtures of concentric Gaussians.

Every galaxy profile is a set of isotropic, zero-mean Gaussian components in
"r_e units": component ``k`` has amplitude ``amp[k]`` and variance
``var[k] * r_e**2`` (a zero variance is a delta-function core).  The ellipse
transform (:mod:`phot7dt.scene.ellipse`) turns the isotropic variance into a
pixel-space covariance.  Amplitudes sum to 1, so a source's flux parameter is
its total model flux.

Tables (facts restated from ``tractor-model.md`` §2, no code copied):

* exponential: the Tractor's 6-component "lux" fit (softened/truncated exp);
* de Vaucouleurs: the 8-component "luv" fit plus a 1.0233 % delta core;
* Sersic: per-range node tables (:mod:`._sersic_tables`), amplitudes and
  log-variances interpolated with not-a-knot cubic splines in n, amplitudes
  renormalised, plus a delta core of fraction c(n) for n > 1.  n is clamped
  to [0.29, 6.3].

Sources of the published tables: the exponential and de Vaucouleurs mixtures are the
"lux"/"luv" fits of Hogg & Lang (2013, PASP 125, 719, doi:10.1086/671228), as tabulated
in the Tractor (Lang, Hogg & Mykytyn 2016, ascl:1604.008), which adds the de Vaucouleurs
delta core; the Sersic node tables are the Tractor's. Cite both when publishing results
(``CITATION.cff``).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.interpolate import CubicSpline

from ._sersic_tables import SERSIC_CORE_C, SERSIC_CORE_N, SERSIC_RANGES

__all__ = [
    "DEV_AMP",
    "DEV_VAR",
    "EXP_AMP",
    "EXP_VAR",
    "SERSIC_N_MAX",
    "SERSIC_N_MIN",
    "Mixture",
    "mixture_arrays",
    "profile_mixture",
    "sersic_mixture",
]

SERSIC_N_MIN = 0.29
SERSIC_N_MAX = 6.3

_EXP_RAW_AMP = np.array(
    [2.34853813e-03, 3.07995260e-02, 2.23364214e-01, 1.17949102e00, 4.33873750e00, 5.99820770e00]
)
#: Exponential ("lux") amplitudes, normalised to sum 1.
EXP_AMP = _EXP_RAW_AMP / _EXP_RAW_AMP.sum()
#: Exponential component variances in units of r_e**2.
EXP_VAR = np.array(
    [1.20078965e-03, 8.84526493e-03, 3.91463084e-02, 1.39976817e-01, 4.60962500e-01, 1.50159566e00]
)

_DEV_CORE = 0.010233
_DEV_RAW_AMP = np.array(
    [
        4.26347652e-02,
        2.40127183e-01,
        6.85907632e-01,
        1.51937350e00,
        2.83627243e00,
        4.46467501e00,
        5.72440830e00,
        5.60989349e00,
    ]
)
#: de Vaucouleurs ("luv") amplitudes with the delta core first, sum 1.
DEV_AMP = np.concatenate([[_DEV_CORE], _DEV_RAW_AMP * (1.0 - _DEV_CORE) / _DEV_RAW_AMP.sum()])
#: de Vaucouleurs variances (r_e**2); the core has variance 0.
DEV_VAR = np.array(
    [
        0.0,
        2.23759216e-04,
        1.00220099e-03,
        4.18731126e-03,
        1.69432589e-02,
        6.84850479e-02,
        2.87207080e-01,
        1.33320254e00,
        8.40215071e00,
    ]
)


class Mixture:
    """An isotropic mixture in r_e units, with its derivative in Sersic n.

    Parameters
    ----------
    amp, var : ndarray, shape (K,)
        Amplitudes (sum 1) and variances (units of r_e**2).
    damp_dn, dvar_dn : ndarray, shape (K,), optional
        Derivatives with respect to the Sersic index (zeros for fixed profiles).
    """

    __slots__ = ("amp", "damp_dn", "dvar_dn", "var")

    def __init__(self, amp, var, damp_dn=None, dvar_dn=None):
        self.amp = np.asarray(amp, dtype=float)
        self.var = np.asarray(var, dtype=float)
        zeros = np.zeros_like(self.amp)
        self.damp_dn = zeros if damp_dn is None else np.asarray(damp_dn, dtype=float)
        self.dvar_dn = zeros if dvar_dn is None else np.asarray(dvar_dn, dtype=float)

    def __len__(self):
        return self.amp.size

    def half_light_radius(self):
        """Circular half-light radius of the round mixture, in units of r_e."""
        from scipy.optimize import brentq

        def enclosed(r):
            with np.errstate(divide="ignore", over="ignore"):
                inner = np.where(
                    self.var > 0, np.exp(-0.5 * r * r / np.maximum(self.var, 1e-300)), 0.0
                )
            return float(np.sum(self.amp * (1.0 - inner))) - 0.5

        return brentq(enclosed, 1e-6, 100.0, xtol=1e-12)


@functools.cache
def _range_splines(index):
    lo, hi, rows = SERSIC_RANGES[index]
    ns = np.array([r[0] for r in rows])
    amps = np.array([r[1] for r in rows])
    logv = np.log(np.array([r[2] for r in rows]))
    return CubicSpline(ns, amps, axis=0), CubicSpline(ns, logv, axis=0)


@functools.lru_cache(maxsize=1)
def _core_spline():
    return CubicSpline(np.array(SERSIC_CORE_N), np.array(SERSIC_CORE_C))


@functools.lru_cache(maxsize=256)
def _sersic_cached(n):
    clamped = n <= SERSIC_N_MIN or n >= SERSIC_N_MAX
    n = min(max(n, SERSIC_N_MIN), SERSIC_N_MAX)
    index = len(SERSIC_RANGES) - 1
    for i, (lo, hi, _rows) in enumerate(SERSIC_RANGES):
        if lo <= n < hi:
            index = i
            break
    amp_spl, logv_spl = _range_splines(index)
    raw, draw = amp_spl(n), amp_spl(n, 1)
    var = np.exp(logv_spl(n))
    dvar = var * logv_spl(n, 1)
    total, dtotal = raw.sum(), draw.sum()
    amp = raw / total
    damp = (draw * total - raw * dtotal) / total**2
    if n > 1.0:
        core = _core_spline()
        c, dc = float(core(n)), float(core(n, 1))
        damp = (1.0 - c) * damp - dc * amp
        amp = (1.0 - c) * amp
        amp, damp = np.concatenate([[c], amp]), np.concatenate([[dc], damp])
        var, dvar = np.concatenate([[0.0], var]), np.concatenate([[0.0], dvar])
    order = np.argsort(var, kind="stable")
    amp, var, damp, dvar = amp[order], var[order], damp[order], dvar[order]
    if clamped:
        damp, dvar = np.zeros_like(damp), np.zeros_like(dvar)
    return amp, var, damp, dvar


def sersic_mixture(n):
    """Sersic profile of index ``n`` as a :class:`Mixture` (with d/dn).

    Parameters
    ----------
    n : float
        Sersic index; clamped to [0.29, 6.3] (derivatives are zero when clamped).

    Returns
    -------
    Mixture
        Components sorted by increasing variance; includes the delta core for n > 1.
    """
    amp, var, damp, dvar = _sersic_cached(round(float(n), 12))
    return Mixture(amp.copy(), var.copy(), damp.copy(), dvar.copy())


_FIXED = {"EXP": (EXP_AMP, EXP_VAR), "DEV": (DEV_AMP, DEV_VAR)}


def profile_mixture(kind, n=None):
    """Mixture for a source ``kind`` in {"EXP", "DEV", "SERSIC"}.

    Parameters
    ----------
    kind : str
        Profile name.
    n : float, optional
        Sersic index, required for "SERSIC".
    """
    if kind == "SERSIC":
        return sersic_mixture(n)
    return Mixture(*mixture_arrays(kind))


def mixture_arrays(kind, n=None):
    """(amp, var) of :func:`profile_mixture` without copies (shared: do not modify)."""
    if kind == "SERSIC":
        return _sersic_cached(round(float(n), 12))[:2]
    if kind not in _FIXED:
        msg = f"no mixture profile for source kind {kind!r}"
        raise ValueError(msg)
    return _FIXED[kind]
