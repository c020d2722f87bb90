"""Levenberg-Marquardt on positions/shapes of one group of sources, fluxes solved exactly.

:func:`run_stage` fits one *group* (sources whose stamps overlap; see
:mod:`._schedule`) for one stage:

* fluxes are never iterated: every evaluation solves them exactly (variable
  projection), so the position stage re-solves fluxes where the Tractor freezes them;
* the nonlinear step solves (S + lambda diag S) delta = g, with S the Fisher
  matrix of theta with the fluxes profiled out, plus Gaussian prior terms;
  each source's step is scaled to its max-step limits, then clipped to bounds
  (position box, r_e range, |ee| <= ee_max(q_min), n in [0.29, 6.3]);
* a trial is accepted if ln P does not decrease, else lambda =
  max(10 lambda, 1e-2) and retried up to ``lm_max_tries`` times; an accepted
  first trial divides lambda by 10, while a trial accepted after a rejection
  keeps its lambda (dividing would bounce between a rejected and an accepted
  damping on every step of a slowly converging source); every group has its
  own damping;
* **convergence** of a group in a stage: an accepted step with
  dlnp <= dlnp_stop * max(1, |ln P|) AND every free parameter's step
  <= tol * its current Fisher error (tol = step_tol_sigma in the last stage,
  ``WARMUP_STEP_TOL`` in the warm-up stages).  A rejected step that is
  already below the step tolerance, or whose predicted gain
  (delta.g - delta.A.delta/2) is below the dlnp tolerance, also counts (nothing
  measurable is left); otherwise the group "stalls";
* active set: once the damping is small (lambda <= 1e-2), a source whose
  step passed the step test is frozen for the rest of the stage;
* sources that are not targets (``SourceTable.target``) are frozen as soon
  as they pass the test and never keep a group iterating;
* runaway guard: a galaxy whose r_e grows beyond ``re_runaway_factor`` times
  its catalog value after an accepted step gets its catalog shape and n back
  and keeps them for the rest of the fit (``GroupRun.runaway``).  A faint
  galaxy next to a brighter, imperfectly modelled source can otherwise
  absorb that source's residual light by growing without limit (and take its
  flux far from the truth);
* with ``estimate``, steps and the group's own convergence test use a
  Fisher matrix estimated from representative bands (:mod:`._step`; fluxes,
  ln P and gradient exact); a step whose damped trials all fail is retried
  from the full matrix, and the final check of :mod:`._schedule` tests
  convergence on the full matrix.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from ._render import Layout

__all__ = ["WARMUP_STEP_TOL", "GroupRun", "StageInfo", "newton_test", "run_stage"]

logger = logging.getLogger(__name__)

#: Step tolerance (in Fisher sigmas) of the warm-up stages (positions, shapes).
WARMUP_STEP_TOL = 0.5
#: Before a stage ends on rejected trials, the least damped one is compared again
#: in double precision if its predicted and actual ln P changes are below this.
_NOISE_LNP = 1.0


@dataclasses.dataclass(frozen=True)
class StageInfo:
    """Outcome of one optimisation stage over the whole patch (worst group)."""

    name: str
    niters: int
    converged: bool
    last_dlnp: float
    hit_max_iters: bool
    stalled: bool


@dataclasses.dataclass
class GroupRun:
    """Outcome of one group in one stage (internal)."""

    params: np.ndarray
    niters: int
    converged: bool
    last_dlnp: float
    stalled: bool
    runaway: np.ndarray
    final_ev: object = None


def solve_damped(A, g, lam):
    """(A + lam diag A) delta = g, robust to a singular A."""
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


class _Stage:
    """Mutable state of one group's LM loop (internal).

    ``exact`` says whether the current evaluation's Fisher matrix uses every
    band (with ``estimate``, steps estimate it from ``settings.fisher_bands``
    bands).
    """

    def __init__(self, model, prob, params, layout, estimate):
        self.model, self.prob, self.free = model, prob, layout.free
        self.layout = self.base = layout
        self.runaway = np.zeros(params.shape[0], bool)
        self.final_ev = None
        self.plan = model.fisher_plan(prob.s.fisher_bands) if estimate else None
        self.params = params
        self.ev, self.exact = self.evaluate(params)
        self.lnp = self.ev.lnlike + prob.lnprior(params)

    def evaluate(self, params, exact=False):
        """(evaluation, whether its Fisher matrix is exact)."""
        plan = None if exact else self.plan
        ev = self.model.evaluate(params, self.layout, derivs=True, sparse=True, single=True, fisher_bands=plan)
        return ev, plan is None

    def better_in_double(self, trial):
        """Whether ``trial`` beats the current point in ln P with double-precision stamps."""
        lnp = [self.model.evaluate(p, self.layout.model_only()).lnlike + self.prob.lnprior(p)
               for p in (self.params, trial)]
        return lnp[1] >= lnp[0]

    def confirm(self):
        """Re-evaluate the current point with the full Fisher matrix."""
        self.ev, self.exact = self.evaluate(self.params, exact=True)

    def restore(self, final=False):
        """Free every source of the group again (one evaluation).

        ``final``: evaluate as the final check of :mod:`._schedule` does (full
        Fisher matrix, every cross term), so that a pass can stand for it.
        """
        self.layout, self.free = self.base, self.base.free
        if final:
            self.ev = self.final_ev = self.model.evaluate(self.params, self.layout, derivs=True, single=True)
            self.exact = True
        else:
            self.ev, self.exact = self.evaluate(self.params)

    def reset_runaways(self, run):
        """Give the ``run`` galaxies their catalog shape and n and fix them (one evaluation)."""
        self.runaway |= run
        self.params = self.params.copy()
        self.params[run, 2:] = self.prob.mu[run, 2:]
        self.base = _without_shapes(self.base, run)
        self.layout = _without_shapes(self.layout, run)
        self.free = self.layout.free
        self.ev, self.exact = self.evaluate(self.params)
        self.lnp = self.ev.lnlike + self.prob.lnprior(self.params)

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
        self.final_ev = None  # (restricted in place below)
        ev.fisher = ev.fisher[np.ix_(keep, keep)]
        ev.grad = ev.grad[keep]
        ev.z_blocks = [z[:, keep] for z in ev.z_blocks]
        self.free = new_free
        lay = self.layout
        self.layout = Layout(lay.sizes, new_free, lay.pad, core=lay.core, anchors=lay.anchors)


def _without_shapes(layout, run):
    free = layout.free.copy()
    free[run, 2:] = False
    return Layout(layout.sizes, free, layout.pad, core=layout.core, anchors=layout.anchors)


def newton_test(prob, params, free, A, g, tol):
    """The convergence test at one point: per-source pass, ratio and predicted gain.

    The undamped Gauss-Newton step delta = A^-1 g (components pushing a
    parameter out of a bound it is within ``tol`` sigmas of removed) must be <= ``tol`` Fisher
    sigmas for every free parameter of a source, and its predicted ln P gain
    for that source, delta_s.g_s / 2, <= dlnp_stop * max(1, |ln P|) (the
    caller compares; this returns the gain).  Also returns the mask of the
    parameters left free (the others are held on their bounds in the next step).
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


def _try_step(st, A, g, lam, tol_lnp, keep):
    """Damped trials until one does not lower ln P; returns (trial, ev, lnp, lam, outcome).

    Parameters outside ``keep`` (pushing out of a bound) do not move.  When
    every trial from an estimated Fisher matrix is rejected the outcome is
    "inexact" (the caller re-evaluates with the full matrix and tries again).
    """
    step = np.zeros_like(g)
    first = None
    for _try in range(st.prob.s.lm_max_tries):
        step[keep] = solve_damped(A[np.ix_(keep, keep)], g[keep], lam)
        trial = st.prob.step(st.params, step, st.free)
        delta = (trial - st.params)[st.free]
        predicted = float(delta @ g - 0.5 * delta @ A @ delta)
        ev_t, exact = st.evaluate(trial)
        lnp_t = ev_t.lnlike + st.prob.lnprior(trial)
        if lnp_t >= st.lnp:
            st.exact = exact
            return trial, ev_t, lnp_t, lam if first else max(lam / 10.0, 1e-9), "accepted"
        first = first or (trial, ev_t, lnp_t, exact, predicted)
        if st.exact and predicted <= 0.1 * tol_lnp:
            return _settle(st, first, lam, "converged")  # the quadratic model promises nothing measurable
        lam = max(lam * 10.0, 1e-2)  # a rejected Gauss-Newton step: damp for real
    return _settle(st, first, lam, "stalled") if st.exact else (None, None, None, lam, "inexact")


def _settle(st, first, lam, outcome):
    """Before a stage ends on rejected trials: does the first (least damped) one win in double precision?

    Single-precision stamps limit ln P to ~1e-7 of the group's sum of (S/N)^2,
    for a very bright star ~0.1: the gain of a step of a few tenths of a sigma.
    """
    trial, ev_t, lnp_t, exact, predicted = first
    if predicted < _NOISE_LNP and st.lnp - lnp_t < _NOISE_LNP and st.better_in_double(trial):
        st.exact = exact
        return trial, ev_t, lnp_t, lam, "accepted"
    return None, None, None, lam, outcome


def run_stage(model, prob, params, layout, step_tol, lam, warmup=False, estimate=False, final=False,
              lnp_scale=None):
    """LM iterations of one group in one stage; returns (GroupRun, lam).

    Converged: the :func:`newton_test` passes for every source of the group
    (checked before every iteration, so an already converged group costs one
    evaluation).  Sources that pass it while the damping is small are frozen;
    in the last stage the whole group is freed and tested again before it is
    declared converged (and may be frozen again), while a ``warmup`` stage
    ends once its active sources pass (the next stage tests everything).
    With ``estimate``, steps and this test use Fisher matrices estimated from
    ``settings.fisher_bands`` bands (see :class:`_Stage`).  With ``final`` the
    whole-group re-test evaluates as the final check does; when the group
    converges on it, that evaluation is returned (``GroupRun.final_ev``).
    ``lnp_scale``: |ln P| of the whole patch at the stage's start.  The
    ln P tolerance scales with the smaller of it and the group's own |ln P|,
    which also counts the light of the other groups' sources (not modelled
    by the group): a faint group next to a bright source would otherwise
    pass with a far looser tolerance than the final check applies to it.
    """
    s = prob.s
    st = _Stage(model, prob, params, layout, estimate)
    niters, dlnp, converged, stalled, may_freeze = 0, 0.0, False, False, True
    while True:
        A, g = st.system()
        tol_lnp = s.dlnp_stop * max(1.0, min(abs(st.lnp), lnp_scale or np.inf))
        ok, ratio, gain, keep = newton_test(prob, st.params, st.free, A, g, step_tol)
        ok &= gain <= tol_lnp
        active = st.free.any(axis=1)
        if np.all(ok | ~active | ~prob.target) and np.sum(gain[prob.target]) <= tol_lnp:
            if warmup or st.free.sum() == st.base.free.sum():
                converged = True
                break
            st.restore(final)  # frozen sources may have moved their optimum: test the whole group
            may_freeze = False  # until the next step (a subset can pass where the whole group fails)
            continue
        if niters >= s.n_opt_iters:
            break
        deep = np.where(prob.target, (ratio <= 0.5 * step_tol) & (gain <= 0.25 * tol_lnp), ok) & active
        if may_freeze and lam <= 1e-2 and deep.any() and not deep[active].all():
            st.restrict(st.free & ~deep[:, None])
            continue
        niters += 1
        trial, ev_t, lnp_t, lam, outcome = _try_step(st, A, g, lam, tol_lnp, keep)
        if outcome == "inexact":  # the estimate misled a step: retry from the full Fisher matrix
            st.confirm()
            continue
        if outcome != "accepted":
            converged, stalled = outcome == "converged", outcome == "stalled"
            break
        dlnp = lnp_t - st.lnp
        st.params, st.ev, st.lnp = trial, ev_t, lnp_t
        may_freeze = True
        run = prob.runaways(st.params, st.free)
        if run.any():
            st.reset_runaways(run)
    logger.debug("group of %d: niters=%d converged=%s dlnp=%.3g", params.shape[0], niters, converged, dlnp)
    final_ev = st.final_ev if converged and st.ev is st.final_ev else None
    return GroupRun(st.params, niters, converged, float(dlnp), stalled, st.runaway, final_ev), lam
