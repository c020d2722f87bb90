"""Levenberg-Marquardt on positions/shapes of one group of sources, fluxes solved exactly.

:func:`run_stage` fits one *group* (sources whose stamps overlap; see
:mod:`._schedule`) for one stage:

* fluxes are never iterated: every evaluation solves them exactly (variable
  projection);
* the nonlinear step solves (S + lambda diag S) delta = g, with S the Fisher
  matrix of theta with the fluxes profiled out, plus Gaussian prior terms;
  each source's step is scaled to its max-step limits, then clipped to bounds
  (position box, r_e range, |ee| <= ee_max(q_min), n in [0.29, 6.3]);
* a trial is accepted if ln P does not decrease, else lambda =
  max(10 lambda, 1e-2) and retried up to ``lm_max_tries`` times; an accepted
  first trial divides lambda by 10, while a trial accepted after a rejection
  keeps its lambda; every group has its own damping;
* **convergence** of a group in a stage: an accepted step with
  dlnp <= dlnp_stop * max(1, |ln P|) AND every free parameter's step
  <= tol * its current Fisher error (tol = step_tol_sigma in the last stage,
  ``WARMUP_STEP_TOL`` in the warm-up stages).  A rejected first trial
  whose predicted gain (delta.g - delta.A.delta/2, from an exact Fisher
  matrix) is below 0.1 times the dlnp tolerance also counts (nothing
  measurable is left); a stage whose trials are all rejected otherwise "stalls";
* active set: once the damping is small (lambda <= 1e-2), a source whose
  step passed the step test is frozen for the rest of the stage;
* sources that are not targets (``SourceTable.target``) are frozen as soon
  as they pass the test and never keep a group iterating;
* runaway guard: a galaxy whose r_e grows beyond ``re_runaway_factor`` times
  its catalog value after an accepted step gets its catalog shape and n back
  and keeps them for the rest of the fit (``GroupRun.runaway``), so that a
  faint galaxy cannot absorb the residual light of a brighter neighbour by
  growing without limit;
* with ``estimate``, steps and the group's own convergence test use a
  Fisher matrix estimated from representative bands (:mod:`._step`; fluxes,
  ln P and gradient exact); a step whose damped trials all fail is retried
  from the full matrix, and the final check of :mod:`._schedule` tests
  convergence on the full matrix;
* before a stage ends on rejected trials, the least damped trial is compared
  with the current point again with double-precision stamps (:func:`_settle`).

The loop of :func:`run_stage` is cut into named steps: :func:`_test`
(convergence test at the current point), :meth:`_Stage.restore` /
:meth:`_Stage.restrict` (active set), :func:`_try_step` (damped trials),
:meth:`_Stage.confirm` (retry from the full Fisher matrix) and
:meth:`_Stage.accept` (the runaway guard).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import NamedTuple

import numpy as np

from ._newton import newton_test, solve_damped
from ._records import GroupRun
from ._render import Layout

__all__ = ["WARMUP_STEP_TOL", "run_stage"]

logger = logging.getLogger(__name__)

#: Step tolerance (in Fisher sigmas) of the warm-up stages (positions, shapes).
WARMUP_STEP_TOL = 0.5
#: Before a stage ends on rejected trials, the least damped one is compared again
#: in double precision if its predicted and actual ln P changes are below this.
_NOISE_LNP = 1.0
#: Damping below which sources that pass the test are frozen (active set), and the
#: smallest damping after a rejected trial.
_SMALL_LAMBDA = 1e-2


class _Trial(NamedTuple):
    """One damped trial: parameters (n, 6), their evaluation, ln P, whether its Fisher matrix is
    exact, and the ln P gain the quadratic model predicted for it."""

    params: np.ndarray
    ev: object
    lnp: float
    exact: bool
    predicted: float


class _Test(NamedTuple):
    """The convergence test at the current point of a loop (per-source arrays, shape (n,)).

    ``ok``: passes the step and gain tests; ``ratio``: largest |step| / sigma of
    the source's free parameters; ``gain``: predicted ln P gain of its step;
    ``keep``: flat mask of the parameters not held on a bound; ``tol_lnp``:
    the ln P tolerance; ``active``: sources with a free parameter.
    """

    ok: np.ndarray
    ratio: np.ndarray
    gain: np.ndarray
    keep: np.ndarray
    tol_lnp: float
    active: np.ndarray


class _Stage:
    """State of one group's LM loop: the current point, its evaluation, the active set and counters.

    ``exact`` says whether the current evaluation's Fisher matrix uses every
    band (with ``estimate``, steps estimate it from ``settings.fisher_bands``
    bands).  Evaluations are replaced, never changed in place.
    """

    def __init__(self, model, prob, params, layout, estimate, lam):
        self.model, self.prob, self.free = model, prob, layout.free
        self.layout = self.base = layout
        self.runaway = np.zeros(params.shape[0], bool)
        self.final_ev = None
        self.plan = model.fisher_plan(prob.s.fisher_bands) if estimate else None
        self.params = params
        self.ev, self.exact = self.evaluate(params)
        self.lnp = self.ev.lnlike + prob.lnprior(params)
        self.lam, self.niters, self.dlnp, self.may_freeze = lam, 0, 0.0, True

    def evaluate(self, params, exact=False):
        """(evaluation, whether its Fisher matrix is exact)."""
        plan = None if exact else self.plan
        ev = self.model.evaluate(
            params, self.layout, derivs=True, sparse=True, single=True, fisher_bands=plan
        )
        return ev, plan is None

    def better_in_double(self, trial):
        """Whether ``trial`` (n, 6) beats the current point in ln P with double-precision stamps."""
        lnp = [
            self.model.evaluate(p, self.layout.model_only()).lnlike + self.prob.lnprior(p)
            for p in (self.params, trial)
        ]
        return lnp[1] >= lnp[0]

    def whole_group_free(self):
        """True when no source of the group is frozen by the active set."""
        return self.free.sum() == self.base.free.sum()

    def system(self):
        """The Fisher matrix A and gradient g of the free parameters, Gaussian priors included."""
        prec = self.prob.prec[self.free]
        A = self.ev.fisher + np.diag(prec)
        g = self.ev.grad - prec * (self.params - self.prob.mu)[self.free]
        return A, g

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
            self.ev = self.final_ev = self.model.evaluate(
                self.params, self.layout, derivs=True, single=True
            )
            self.exact = True
        else:
            self.ev, self.exact = self.evaluate(self.params)

    def restrict(self, new_free):
        """Freeze converged sources for the rest of the stage (active set).

        The reduced Fisher matrix of a parameter subset is the sub-block of the
        full one (frozen parameters are constants), so no re-evaluation is needed.
        """
        keep = new_free[self.free]
        ev = self.ev
        self.final_ev = None
        self.ev = dataclasses.replace(
            ev,
            fisher=ev.fisher[np.ix_(keep, keep)],
            grad=ev.grad[keep],
            z_blocks=[z[:, keep] for z in ev.z_blocks],
        )
        self.free = new_free
        lay = self.layout
        self.layout = Layout(lay.sizes, new_free, lay.pad, core=lay.core, anchors=lay.anchors)

    def accept(self, trial):
        """Move to an accepted ``trial``; reset galaxies that ran away."""
        self.dlnp = trial.lnp - self.lnp
        self.params, self.ev, self.lnp, self.exact = trial.params, trial.ev, trial.lnp, trial.exact
        self.may_freeze = True
        run = self.prob.runaways(self.params, self.free)
        if run.any():
            self.reset_runaways(run)

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


def _without_shapes(layout, run):
    free = layout.free.copy()
    free[run, 2:] = False
    return Layout(layout.sizes, free, layout.pad, core=layout.core, anchors=layout.anchors)


def _test(st, A, g, step_tol, lnp_scale):
    """:func:`newton_test` at the loop's current point, with the ln P tolerance of the group.

    The tolerance is dlnp_stop * max(1, min(|ln P| of the group, ``lnp_scale``)).
    """
    tol_lnp = st.prob.s.dlnp_stop * max(1.0, min(abs(st.lnp), lnp_scale or np.inf))
    ok, ratio, gain, keep = newton_test(st.prob, st.params, st.free, A, g, step_tol)
    return _Test(ok & (gain <= tol_lnp), ratio, gain, keep, tol_lnp, st.free.any(axis=1))


def _passes(test, target):
    """Every active target passes, and the targets' summed gain is within tolerance."""
    return bool(
        np.all(test.ok | ~test.active | ~target) and np.sum(test.gain[target]) <= test.tol_lnp
    )


def _sources_to_freeze(st, test, step_tol):
    """Sources the active set freezes now (bool (n,)), or None.

    Once the damping is small, a target that passes with margin (half the
    step, a quarter of the gain tolerance) and a non-target that passes are
    frozen, unless that would freeze every active source.
    """
    target = st.prob.target
    deep = np.where(
        target, (test.ratio <= 0.5 * step_tol) & (test.gain <= 0.25 * test.tol_lnp), test.ok
    )
    deep &= test.active
    if st.may_freeze and st.lam <= _SMALL_LAMBDA and deep.any() and not deep[test.active].all():
        return deep
    return None


def _try_step(st, A, g, test):
    """Damped trials until one does not lower ln P; returns (trial or None, new damping, outcome).

    Parameters outside ``test.keep`` (pushing out of a bound) do not move.
    Outcomes: "accepted", "converged" (a rejected trial whose predicted gain
    is negligible), "stalled", or "inexact" when every trial from an
    estimated Fisher matrix is rejected (the caller re-evaluates with the
    full matrix and tries again).
    """
    keep, lam = test.keep, st.lam
    step = np.zeros_like(g)
    first = None
    for _try in range(st.prob.s.lm_max_tries):
        step[keep] = solve_damped(A[np.ix_(keep, keep)], g[keep], lam)
        params = st.prob.step(st.params, step, st.free)
        delta = (params - st.params)[st.free]
        predicted = float(delta @ g - 0.5 * delta @ A @ delta)
        ev_t, exact = st.evaluate(params)
        trial = _Trial(params, ev_t, ev_t.lnlike + st.prob.lnprior(params), exact, predicted)
        if trial.lnp >= st.lnp:
            return trial, lam if first else max(lam / 10.0, 1e-9), "accepted"
        first = first or trial
        if st.exact and predicted <= 0.1 * test.tol_lnp:
            return _settle(
                st, first, lam, "converged"
            )  # the quadratic model promises nothing measurable
        lam = max(lam * 10.0, _SMALL_LAMBDA)  # a rejected Gauss-Newton step: damp for real
    return _settle(st, first, lam, "stalled") if st.exact else (None, lam, "inexact")


def _settle(st, first, lam, outcome):
    """Before a stage ends on rejected trials: does the least damped one win in double precision?

    Single-precision stamps limit ln P to ~1e-7 of the group's sum of (S/N)^2,
    for a very bright star ~0.1: the gain of a step of a few tenths of a sigma.
    Returns (trial or None, damping, outcome).
    """
    if (
        first.predicted < _NOISE_LNP
        and st.lnp - first.lnp < _NOISE_LNP
        and st.better_in_double(first.params)
    ):
        return first, lam, "accepted"
    return None, lam, outcome


def run_stage(
    model,
    prob,
    params,
    layout,
    step_tol,
    lam,
    warmup=False,
    estimate=False,
    final=False,
    lnp_scale=None,
):
    """LM iterations of one group in one stage; returns (GroupRun, damping at the end).

    Parameters
    ----------
    model : PatchModel
        The group's view of the patch (:meth:`PatchModel.subset`).
    prob : _problem._Problem
        The group's priors and bounds.
    params : ndarray, shape (n, 6)
        Start point.
    layout : Layout
        Stamp sizes, anchors and the free parameters of the stage.
    step_tol : float
        Convergence tolerance of the steps, in Fisher sigmas.
    lam : float
        Initial Marquardt damping (relative to the diagonal).
    warmup : bool
        The stage ends once its active sources pass; otherwise frozen sources
        are freed and the whole group is tested again before it converges.
    estimate : bool
        Steps and the group's test use Fisher matrices estimated from
        ``settings.fisher_bands`` bands.
    final : bool
        The whole-group re-test evaluates as the final check does; when the
        group converges on it, that evaluation is returned (``GroupRun.final_ev``).
    lnp_scale : float, optional
        |ln P| of the whole patch at the stage's start: the ln P tolerance
        scales with the smaller of it and the group's own |ln P|, which also
        counts the light of other groups' sources.
    """
    st = _Stage(model, prob, params, layout, estimate, lam)
    converged = stalled = False
    while True:
        A, g = st.system()
        test = _test(st, A, g, step_tol, lnp_scale)
        if _passes(test, prob.target):
            if warmup or st.whole_group_free():
                converged = True
                break
            # frozen sources may have moved their optimum: test the whole group, and freeze
            # nothing until the next step (a subset can pass where the whole group fails)
            st.restore(final)
            st.may_freeze = False
            continue
        if st.niters >= prob.s.n_opt_iters:
            break
        freeze = _sources_to_freeze(st, test, step_tol)
        if freeze is not None:
            st.restrict(st.free & ~freeze[:, None])
            continue
        st.niters += 1
        trial, st.lam, outcome = _try_step(st, A, g, test)
        if outcome == "inexact":  # the estimate misled a step: retry from the full Fisher matrix
            st.confirm()
        elif outcome == "accepted":
            st.accept(trial)
        else:
            converged, stalled = outcome == "converged", outcome == "stalled"
            break
    n, dlnp = params.shape[0], float(st.dlnp)
    logger.debug("group of %d: niters=%d converged=%s dlnp=%.3g", n, st.niters, converged, dlnp)
    final_ev = st.final_ev if converged and st.ev is st.final_ev else None
    run = GroupRun(st.params, st.niters, converged, dlnp, stalled, st.runaway, final_ev)
    return run, st.lam
