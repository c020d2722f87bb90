"""Bounds, priors, step limits and free parameters of one scene fit (internal).

:func:`make_problem` turns a :class:`.sources.SourceTable` and the settings
into the ``prob`` that :mod:`._lm` and :mod:`._schedule` iterate on: the
catalog start values (the Gaussian prior means), prior precisions, parameter
bounds (position box, r_e range, |ee| <= ee_max(q_min), Sersic n range), the
largest step per iteration, which parameters are free, and the r_e beyond
which a galaxy counts as running away.
"""

from __future__ import annotations

import copy

import numpy as np

from .mixtures import SERSIC_N_MAX, SERSIC_N_MIN

__all__ = ["make_problem"]


class _Problem:
    """Bounds, priors and step limits of one scene (internal)."""

    def __init__(self, params0, prior_sigma, kinds, shape, settings, target):
        self.s = settings
        self.target = np.asarray(target, bool)
        self.mu = params0.copy()
        self.prec = np.where(
            np.isfinite(prior_sigma),
            1.0 / np.where(np.isfinite(prior_sigma), prior_sigma, 1.0) ** 2,
            0.0,
        )
        ny, nx = shape
        shift = settings.pos_max_shift_pix
        lo = np.empty_like(params0)
        hi = np.empty_like(params0)
        for axis, size in ((0, nx), (1, ny)):  # box around the catalog value, kept near the patch
            p0 = params0[:, axis]
            lo[:, axis] = np.minimum(p0, np.maximum(p0 - (shift or np.inf), -8.0))
            hi[:, axis] = np.maximum(p0, np.minimum(p0 + (shift or np.inf), size + 7.0))
        lo[:, 2], hi[:, 2] = np.log(settings.re_min_pix), np.log(settings.re_max_pix)
        lo[:, 3:5], hi[:, 3:5] = -settings.ee_max, settings.ee_max
        lo[:, 5], hi[:, 5] = SERSIC_N_MIN, SERSIC_N_MAX
        self.lo, self.hi = lo, hi
        self.maxstep = np.array(
            [settings.max_step_pos] * 2
            + [settings.max_step_logre]
            + [settings.max_step_ee] * 2
            + [settings.max_step_n]
        )
        gal = np.array([k != "STAR" for k in kinds], dtype=bool)
        free = np.zeros(params0.shape, bool)
        free[:, :2] = settings.fit_positions
        free[:, 2:5] = gal[:, None] & settings.fit_shapes
        free[:, 5] = np.array([k == "SERSIC" for k in kinds], dtype=bool) & settings.fit_shapes
        if settings.neighbour_fit != "all":  # non-targets: positions only, or nothing but fluxes
            free[~self.target, 0 if settings.neighbour_fit == "fluxes" else 2 :] = False
        self.free_all = free
        self.logre_runaway = params0[:, 2] + np.log(settings.re_runaway_factor)

    def subset(self, idx):
        """The same problem restricted to sources ``idx``."""
        sub = copy.copy(self)
        for name in ("mu", "prec", "lo", "hi", "free_all", "target", "logre_runaway"):
            setattr(sub, name, getattr(self, name)[idx])
        return sub

    def runaways(self, params, free):
        """Sources with a free r_e grown beyond ``re_runaway_factor`` times its catalog value."""
        return free[:, 2] & (params[:, 2] > self.logre_runaway)

    def lnprior(self, params):
        return -0.5 * float(np.sum(self.prec * (params - self.mu) ** 2))

    def constrain(self, params):
        out = np.clip(params, self.lo, self.hi)
        ee = np.hypot(out[:, 3], out[:, 4])
        scale = np.where(ee > self.s.ee_max, self.s.ee_max / np.maximum(ee, 1e-300), 1.0)
        out[:, 3:5] *= scale[:, None]
        return out

    def step(self, params, delta_flat, free):
        delta = np.zeros_like(params)
        delta[free] = delta_flat
        ratio = np.max(np.abs(delta) / self.maxstep, axis=1)
        delta /= np.maximum(ratio, 1.0)[:, None]
        return self.constrain(params + delta)

    def outward(self, params, delta_flat, free, near=None):
        """Mask of step components that push a parameter on a bound further out.

        ``near`` (flat, per free parameter) is the distance within which a
        parameter counts as on its bound (default 1e-6).
        """
        delta = np.zeros_like(params)
        delta[free] = delta_flat
        tol = np.full(params.shape, 1e-6)
        if near is not None:
            tol[free] = np.maximum(near, 1e-6)
        out = ((params - self.lo <= tol) & (delta < 0)) | ((self.hi - params <= tol) & (delta > 0))
        ee = np.hypot(params[:, 3], params[:, 4])
        radial = (params[:, 3] * delta[:, 3] + params[:, 4] * delta[:, 4]) > 0
        out[:, 3:5] |= ((ee >= self.s.ee_max - np.minimum(tol[:, 3], tol[:, 4])) & radial)[:, None]
        return out[free]

    def at_bounds(self, params, free):
        """Per-source booleans (pos, re, ell, n) for parameters sitting on a bound."""
        tol = np.array([1e-2, 1e-2, 1e-2, 1e-3, 1e-3, 1e-3])
        on = ((params - self.lo) <= tol) | ((self.hi - params) <= tol)
        on &= free
        ee_on = (np.hypot(params[:, 3], params[:, 4]) >= self.s.ee_max - 1e-3) & free[:, 3]
        return on[:, 0] | on[:, 1], on[:, 2], ee_on, on[:, 5]


def make_problem(table, shape, settings):
    """Bounds, priors and free-parameter mask of a scene (internal)."""
    return _Problem(
        table.initial_params(),
        table.prior_sigmas(),
        table.type.tolist(),
        shape,
        settings,
        table.target,
    )
