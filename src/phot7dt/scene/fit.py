"""Levenberg-Marquardt on positions/shapes with exactly solved fluxes, in stages.

One *scene* (all sources of a patch, all bands that share their positions and
shapes) is fitted by :func:`fit_scene`:

* fluxes are never iterated: every evaluation solves them exactly (variable
  projection), so stage 2 re-solves fluxes where the Tractor freezes them;
* the nonlinear step solves (S + lambda diag S) delta = g, with S the Fisher
  matrix of theta with the fluxes profiled out, plus Gaussian prior terms;
  each source's step is scaled to its max-step limits, then clipped to bounds
  (position box, r_e range, |ee| <= ee_max(q_min), n in [0.29, 6.3]);
* a trial is accepted if ln P does not decrease (lambda /= 10), else
  lambda = max(10 lambda, 1e-2) and retried up to ``lm_max_tries`` times;
* **convergence** (documented test): an accepted step with
  dlnp <= dlnp_stop * max(1, |ln P|) AND every free parameter's step
  <= step_tol_sigma * its current Fisher error.  A rejected step that is
  already below the step tolerance, or whose predicted gain
  (delta.g - delta.A.delta/2) is below the dlnp tolerance, also counts as
  converged (nothing measurable is left); otherwise the stage is "stalled".  Per source,
  "converged" means its own last step passed the step test;
* active set: once the damping is small (lambda <= 1e-2), a source whose
  step passed the step test is frozen for the rest of the stage, so slow
  sources do not make every source pay for extra iterations (the final
  stage and the error evaluation free everything again);
* stages (tract7dt): 1 = shapes + n (positions frozen), 2 = positions,
  3 = all; or one stage with everything free.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from .mixtures import SERSIC_N_MAX, SERSIC_N_MIN
from .render import FFT_SIZES, Layout

__all__ = ["StageInfo", "fit_scene", "make_problem"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class StageInfo:
    """Outcome of one optimisation stage (per-patch numbers, as tract7dt's)."""

    name: str
    niters: int
    converged: bool
    last_dlnp: float
    hit_max_iters: bool
    stalled: bool


class _Problem:
    """Bounds, priors and step limits of one scene (internal)."""

    def __init__(self, params0, prior_sigma, kinds, shape, settings):
        self.s = settings
        self.mu = params0.copy()
        self.prec = np.where(np.isfinite(prior_sigma), 1.0 / np.where(np.isfinite(prior_sigma),
                                                                      prior_sigma, 1.0) ** 2, 0.0)
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
        self.maxstep = np.array([settings.max_step_pos] * 2 + [settings.max_step_logre]
                                + [settings.max_step_ee] * 2 + [settings.max_step_n])
        gal = np.array([k != "STAR" for k in kinds], dtype=bool)
        free = np.zeros(params0.shape, bool)
        free[:, :2] = settings.fit_positions
        free[:, 2:5] = gal[:, None] & settings.fit_shapes
        free[:, 5] = np.array([k == "SERSIC" for k in kinds], dtype=bool) & settings.fit_shapes
        self.free_all = free

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

    def at_bounds(self, params, free):
        """Per-source booleans (pos, re, ell, n) for parameters sitting on a bound."""
        tol = np.array([1e-2, 1e-2, 1e-2, 1e-3, 1e-3, 1e-3])
        on = ((params - self.lo) <= tol) | ((self.hi - params) <= tol)
        on &= free
        ee_on = (np.hypot(params[:, 3], params[:, 4]) >= self.s.ee_max - 1e-3) & free[:, 3]
        return on[:, 0] | on[:, 1], on[:, 2], ee_on, on[:, 5]


def _solve_damped(A, g, lam):
    d = np.diag(A).copy()
    d = np.maximum(d, 1e-12 * max(d.max(initial=0.0), 1e-300))
    M = A + lam * np.diag(d)
    try:
        return np.linalg.solve(M, g)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(M, g, rcond=None)[0]


def _sigmas(A):
    with np.errstate(invalid="ignore", divide="ignore"):
        try:
            cov = np.linalg.inv(A)
        except np.linalg.LinAlgError:
            cov = np.linalg.pinv(A, hermitian=True)
        return np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))


class _Stage:
    """Mutable state of one stage's LM loop (internal)."""

    def __init__(self, model, prob, params, sizes, free):
        self.model, self.prob, self.free = model, prob, free
        self.layout = Layout(sizes[0], free, model.pad, core=sizes[1])
        self.params = params
        self.ev = self.evaluate(params)
        self.lnp = self.ev.lnlike + prob.lnprior(params)
        self.src_ratio = np.zeros(params.shape[0])

    def evaluate(self, params):
        return self.model.evaluate(params, self.layout, derivs=True, want_model=self.model.gain is not None)

    def system(self):
        prec = self.prob.prec[self.free]
        A = self.ev.fisher + np.diag(prec)
        g = self.ev.grad - prec * (self.params - self.prob.mu)[self.free]
        return A, g

    def restrict(self, new_free):
        """Freeze converged sources for the rest of the stage (active set).

        The reduced Fisher matrix of a parameter subset is the sub-block of the
        full one (frozen parameters are constants), so no re-evaluation is needed.
        """
        keep = new_free[self.free]
        ev = self.ev
        ev.fisher = ev.fisher[np.ix_(keep, keep)]
        ev.grad = ev.grad[keep]
        ev.z_blocks = [z[:, keep] for z in ev.z_blocks]
        self.free = new_free
        self.layout = Layout(self.layout.sizes, new_free, self.model.pad, core=self.layout.core)

    def step_ratio(self, new_params, sig):
        ratio = np.abs((new_params - self.params)[self.free]) / sig
        ratio = np.where(np.isfinite(ratio), ratio, 0.0)
        per_src = np.zeros(self.params.shape[0])
        np.maximum.at(per_src, np.nonzero(self.free)[0], ratio)
        return per_src


def _run_stage(name, model, prob, params, sizes, free, lam):
    s = prob.s
    st = _Stage(model, prob, params, sizes, free)
    niters, dlnp, converged, stalled = 0, 0.0, False, False
    for _ in range(s.n_opt_iters):
        niters += 1
        A, g = st.system()
        sig = _sigmas(A)
        tol_lnp = s.dlnp_stop * max(1.0, abs(st.lnp))
        for _try in range(s.lm_max_tries):
            trial = prob.step(st.params, _solve_damped(A, g, lam), st.free)
            ratio = st.step_ratio(trial, sig)
            delta = (trial - st.params)[st.free]
            predicted = float(delta @ g - 0.5 * delta @ A @ delta)
            ev_t = st.evaluate(trial)
            lnp_t = ev_t.lnlike + prob.lnprior(trial)
            if lnp_t >= st.lnp:
                lam = max(lam / 10.0, 1e-9)
                break
            if ratio.max() <= s.step_tol_sigma or predicted <= tol_lnp:
                converged = True  # the quadratic model promises nothing measurable
                break
            lam = max(lam * 10.0, 1e-2)  # a rejected Gauss-Newton step: damp for real
        else:
            stalled = True
            break
        if converged:
            st.src_ratio = ratio
            dlnp = 0.0
            break
        dlnp = lnp_t - st.lnp
        active = st.free.any(axis=1)
        st.params, st.ev, st.lnp = trial, ev_t, lnp_t
        st.src_ratio = np.where(active, ratio, st.src_ratio)
        if dlnp <= s.dlnp_stop * max(1.0, abs(st.lnp)) and ratio.max() <= s.step_tol_sigma:
            converged = True
            break
        if model.gain is not None:
            model.set_model_weights(ev_t.models)
            st.ev = st.evaluate(st.params)
            st.lnp = st.ev.lnlike + prob.lnprior(st.params)
        elif lam <= 1e-2:
            new_free = st.free & (ratio > s.step_tol_sigma)[:, None]
            if new_free.any() and new_free.sum() < st.free.sum():
                st.restrict(new_free)
    info = StageInfo(name, niters, converged, float(dlnp), (not converged) and niters >= s.n_opt_iters,
                     stalled)
    logger.debug("stage %s: niters=%d converged=%s dlnp=%.3g", name, niters, converged, dlnp)
    return st, info, lam


def _stage_plan(prob, settings):
    free = prob.free_all
    if not settings.enable_staged_fit:
        return [("all", free)]
    shapes = free.copy()
    shapes[:, :2] = False
    pos = np.zeros_like(free)
    pos[:, :2] = free[:, :2]
    plan = [("shapes", shapes), ("positions", pos), ("all", free)]
    return [(n, f) for n, f in plan if f.any()] or [("all", free)]


def _grows(new, old):
    """True if some stamp must grow by more than one step of the FFT-size ladder."""
    ladder = np.asarray(FFT_SIZES)
    return bool(np.any(np.searchsorted(ladder, new) > np.searchsorted(ladder, old) + 1))


def make_problem(table, shape, settings):
    """Bounds, priors and free-parameter mask of a scene (internal)."""
    return _Problem(table.initial_params(), table.prior_sigmas(), table.type.tolist(), shape, settings)


def fit_scene(model, table, settings, prob, size_fn):
    """Fit one scene; return a dict of raw results (see :mod:`.api`).

    Parameters
    ----------
    model : PatchModel
    table : SourceTable
    settings : FitSettings
    prob : _Problem
        From :func:`make_problem`.
    size_fn : callable
        ``size_fn(params, fluxes)`` -> stamp sizes (n_src,), fluxes (n_src, n_band).
    """
    params = prob.mu.copy()
    zero = np.zeros_like(prob.free_all)
    forced = not prob.free_all.any()
    poisson = model.gain is not None

    def flux_only(sz):
        return model.evaluate(params, Layout(sz[0], zero, model.pad, core=sz[1]), derivs=forced,
                              want_model=poisson)

    sizes = size_fn(params, table.flux)
    ev = flux_only(sizes)
    new_sizes = size_fn(params, ev.fluxes.T)
    if not forced or _grows(new_sizes[0], sizes[0]) or _grows(new_sizes[1], sizes[1]):
        sizes = new_sizes
        ev = flux_only(sizes) if (forced and not poisson) else ev
    for _ in range(settings.poisson_refine_iters if poisson else 0):
        model.set_model_weights(ev.models)
        ev = flux_only(sizes)
    stages, lam, src_ratio, st = [], settings.lm_lambda0, np.zeros(len(table)), None
    if prob.free_all.any():
        for name, free in _stage_plan(prob, settings):
            st, info, lam = _run_stage(name, model, prob, params, sizes, free, lam)
            params, src_ratio = st.params, st.src_ratio
            stages.append(info)
    if st is not None and np.array_equal(st.free, prob.free_all):
        ev = st.ev
    elif not forced:
        ev = model.evaluate(params, Layout(sizes[0], prob.free_all, model.pad, core=sizes[1]), derivs=True)
    return {"params": params, "ev": ev, "prob": prob, "stages": stages, "src_ratio": src_ratio,
            "free": prob.free_all, "sizes": sizes[0]}
