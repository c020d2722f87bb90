"""The schedule of one scene fit: groups, stages, low-S/N freezing and the final check.

* **Groups.**  Sources whose stamps (plus a 2 px margin) overlap, directly or
  through a chain of neighbours, form a group.  Groups share no pixel, so
  their likelihoods are independent; each group is fitted by its own LM loop
  (own damping, own iteration count, :func:`._lm.run_stage`), and only its
  own stamps are rendered.  Groups are recomputed at every stage.
* **Unconstrained shapes.**  Before the stages, the Fisher errors of the
  shape parameters are computed at the catalog values (Fisher matrix
  estimated from ``fisher_bands`` bands, as in optimiser steps).  A galaxy whose
  sigma(log r_e) or sigma(ee1/ee2) exceeds ``freeze_shape_sigma`` keeps its
  catalog shape and n (flag ``shape_unconstrained``); one whose sigma(n)
  exceeds ``freeze_sersic_n_sigma`` keeps its n (``sersic_n_unconstrained``).
* **Runaway galaxies** (see :mod:`._lm`): once a stage resets one, its
  shape and n stay fixed in the later stages, the polish and the final check.
* **Stages** (``enable_staged_fit``): positions as a warm-up (converged at
  ``WARMUP_STEP_TOL`` sigmas), then everything at ``step_tol_sigma``.
  Steps of the "all" stage, and its groups' own convergence tests,
  estimate their Fisher matrix from ``fisher_bands`` bands (where shapes
  add many derivative columns); the positions warm-up (two columns per
  source) and the polish stage (groups that failed the final check) use
  the full matrix.  With a gain the Poisson weights
  are refreshed from the current model (single-precision stamps) before
  every stage and before the final check; after a coarse pass, the weights
  of the all-band flux solve at the coarse optimum stand (the all-band fit
  moves sources by fractions of their errors, which change the weights by
  far less than their own approximation).
* **Final check (the per-source convergence test).**  At the final
  parameters the full patch (all groups together) is evaluated once; the
  undamped Gauss-Newton step (bound-blocked components removed) must be
  <= ``step_tol_sigma`` Fisher sigmas for every free parameter of a source,
  and its predicted ln P gain for that source <= dlnp_stop * max(1, |ln P|).
  Groups with a failing source get one more "polish" stage.  After a
  coarse pass this evaluation may be joined from the group's last one
  (:func:`_joined`) instead of made again.

:func:`fit_scene` returns a :class:`._records.SceneFit`; each stage returns a
new :class:`._records.SourceRecord` instead of updating the previous one.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ._kernels import overlapping_pairs
from ._lm import WARMUP_STEP_TOL, run_stage
from ._newton import covariance, newton_test
from ._records import SceneFit, SourceRecord, StageInfo
from ._render import FFT_SIZES, Layout

__all__ = ["final_check", "fit_scene", "groups_of"]

_GROUP_MARGIN = 2


def _layout(model, sizes, free, idx=None, anchors=None):
    sl = slice(None) if idx is None else idx
    return Layout(
        sizes[0][sl],
        free[sl],
        model.pad,
        core=sizes[1][sl],
        anchors=None if anchors is None else anchors[sl],
    )


def _anchors(params):
    return np.floor(params[:, :2] + 0.5)


def groups_of(model, params, sizes):
    """Connected groups of sources whose stamps (+ margin) overlap; list of index arrays."""
    n = params.shape[0]
    lay = _layout(model, sizes, np.zeros((n, 6), bool))
    ox, oy, _, _ = lay.origins(params[:, 0], params[:, 1])
    s, t = overlapping_pairs(ox - _GROUP_MARGIN, oy - _GROUP_MARGIN, lay.sizes + 2 * _GROUP_MARGIN)
    graph = coo_matrix((np.ones(s.size), (s, t)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    order = np.argsort(labels, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(labels[order])) + 1)


def _refresh_weights(model, params, sizes):
    """Poisson weights from the model at ``params`` (single precision: weights need ~1e-3)."""
    zero = np.zeros((params.shape[0], 6), bool)
    ev = model.evaluate(params, _layout(model, sizes, zero), want_model=True, single=True)
    model.set_model_weights(ev.models)


def _run_groups(
    name, model, prob, params, sizes, free, tol, rec, anchors, lnp_scale, only=None, final=False
):
    """One stage over every group with a free parameter and a target (and a source in ``only``).

    Returns (params, StageInfo, record, reusable): with ``final``,
    ``reusable`` lists (group indices, evaluation) of groups that converged
    on an evaluation made as the final check makes it (see
    :func:`final_check`).  ``lnp_scale`` is the whole patch's |ln P| (see
    :func:`._lm.run_stage`).
    """
    s = prob.s
    new = params.copy()
    runs, reusable = [], []
    for idx in groups_of(model, params, sizes):
        if (
            not free[idx].any()
            or not prob.target[idx].any()
            or (only is not None and not only[idx].any())
        ):
            continue  # (a group without targets shares no pixel with one: its fluxes suffice)
        run, _ = run_stage(
            model.subset(idx),
            prob.subset(idx),
            params[idx],
            _layout(model, sizes, free, idx, anchors),
            tol,
            s.lm_lambda0,
            warmup=tol > s.step_tol_sigma,
            estimate=name == "all",
            final=final,
            lnp_scale=lnp_scale,
        )
        new[idx] = run.params
        if run.final_ev is not None:
            reusable.append((idx, run.final_ev))
        runs.append((idx, run))
    group_runs = [r for _, r in runs]
    info = StageInfo(
        name,
        max((r.niters for r in group_runs), default=0),
        all(r.converged for r in group_runs),
        max((r.last_dlnp for r in group_runs), default=0.0),
        any(r.hit_max(s.n_opt_iters) for r in group_runs),
        any(r.stalled for r in group_runs),
    )
    return new, info, rec.after_stage(runs, s.n_opt_iters, warmup=tol > s.step_tol_sigma), reusable


def _freeze_unconstrained(model, prob, params, sizes, free, rec):
    """Fix the shape (and n) of galaxies whose catalog-point Fisher errors say it is unconstrained.

    Returns (free without those parameters, the record with ``shape_frozen`` and ``n_frozen``).
    """
    s = prob.s
    shp = free.copy()
    shp[:, :2] = False
    if not shp.any():
        return free, rec
    ev = model.evaluate(
        params,
        _layout(model, sizes, shp),
        derivs=True,
        single=True,
        fisher_bands=model.fisher_plan(s.fisher_bands),
    )
    sig = np.full(free.shape, np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.diag(covariance(ev.fisher + np.diag(prob.prec[shp])))
    sig[shp] = np.where(d > 0, np.sqrt(np.abs(d)), np.inf)
    shape_bad = shp[:, 2] & (
        np.max(np.where(shp[:, 2:5], sig[:, 2:5], 0.0), axis=1) > s.freeze_shape_sigma
    )
    n_bad = shp[:, 5] & ~shape_bad & (sig[:, 5] > s.freeze_sersic_n_sigma)
    out = free.copy()
    out[shape_bad, 2:] = False
    out[n_bad, 5] = False
    return out, dataclasses.replace(rec, shape_frozen=shape_bad, n_frozen=n_bad)


def _stage_plan(free, settings):
    """The stages of a fit from the catalog: [(name, free mask (n, 6))]."""
    if not settings.enable_staged_fit:
        return [("all", free)]
    pos = np.zeros_like(free)
    pos[:, :2] = free[:, :2]
    warm = [("positions", pos)] if pos.any() and not np.array_equal(pos, free) else []
    return warm + [("all", free)]


def final_check(model, prob, params, sizes, free, anchors, reusable=()):
    """Joint evaluation and the per-source convergence test; returns (ev, converged (n,)).

    ``reusable`` (from :func:`_run_groups`): when the only group with free
    parameters converged on an evaluation made as this one, that evaluation
    stands for its sources (groups share no pixel) and the other sources get
    a flux-only evaluation (see :func:`_joined`).
    """
    ev = _joined(model, params, sizes, free, anchors, reusable)
    if ev is None:
        ev = model.evaluate(
            params, _layout(model, sizes, free, anchors=anchors), derivs=True, single=True
        )
    if not free.any():
        return ev, np.ones(params.shape[0], bool)
    prec = prob.prec[free]
    A = ev.fisher + np.diag(prec)
    g = ev.grad - prec * (params - prob.mu)[free]
    ok, _ratio, gain, _keep = newton_test(prob, params, free, A, g, prob.s.step_tol_sigma)
    lnp = ev.lnlike + prob.lnprior(params)
    return ev, ok & (gain <= prob.s.dlnp_stop * max(1.0, abs(lnp)))


def _joined(model, params, sizes, free, anchors, reusable):
    """The whole-patch final evaluation from one group's and a flux-only one of the rest, or None.

    Exact: the two share no pixel, so fluxes, their variances and the Fisher
    system split by source; each evaluation's ln L counts sum(w d^2) of the
    whole patch once, so one copy is added back.
    """
    active = [g for g in groups_of(model, params, sizes) if free[g].any()]
    if len(reusable) != 1 or len(active) != 1 or not np.array_equal(active[0], reusable[0][0]):
        return None
    idx, ev = reusable[0]
    rest = np.setdiff1d(np.arange(params.shape[0]), idx)
    if not rest.size:
        return ev
    zero = np.zeros((params.shape[0], 6), bool)
    other = model.subset(rest).evaluate(
        params[rest], _layout(model, sizes, zero, rest, anchors), single=True
    )
    n = params.shape[0]

    def by_source(group_part, rest_part):
        out = np.zeros(group_part.shape[:-1] + (n,))
        out[..., idx], out[..., rest] = group_part, rest_part
        return out

    return dataclasses.replace(
        ev,
        lnlike=ev.lnlike + other.lnlike + 0.5 * float(np.sum(model.wdd)),
        singular=ev.singular or other.singular,
        fluxes=by_source(ev.fluxes, other.fluxes),
        flux_var=by_source(ev.flux_var, other.flux_var),
        z_blocks=[by_source(z.T, 0.0).T for z in ev.z_blocks],
    )


def _grows(new, old):
    """True if some stamp must grow by more than one step of the FFT-size ladder."""
    ladder = np.asarray(FFT_SIZES)
    return bool(np.any(np.searchsorted(ladder, new) > np.searchsorted(ladder, old) + 1))


def _initial_fluxes(model, table, settings, params, size_fn, forced):
    """Flux-only solve at the catalog values; stamp sizes from the solved fluxes."""
    zero = np.zeros((params.shape[0], 6), bool)
    poisson = model.gain is not None
    if forced and poisson and settings.poisson_refine_iters:
        model = model.with_stamp_cache()  # the weight refreshes re-solve at the same stamps

    def flux_only(sz):
        return model.evaluate(
            params, _layout(model, sz, zero), derivs=forced, want_model=poisson, single=True
        )

    sizes = size_fn(params, table.flux)
    ev = flux_only(sizes)
    new_sizes = size_fn(params, ev.fluxes.T)
    if not forced or _grows(new_sizes[0], sizes[0]) or _grows(new_sizes[1], sizes[1]):
        sizes = new_sizes
        ev = flux_only(sizes) if (forced and not poisson) else ev
    if not forced:  # a fit re-solves fluxes at every step: only the weights are needed
        if poisson and settings.poisson_refine_iters:
            model.set_model_weights(ev.models)
        return sizes, ev
    for _ in range(settings.poisson_refine_iters if poisson else 0):
        model.set_model_weights(ev.models)
        ev = flux_only(sizes)
    return sizes, ev


def fit_scene(model, table, settings, prob, size_fn, start=None, check=True, refresh=True):
    """Fit one scene: initial fluxes, the stages, the final check and polish.

    Parameters
    ----------
    model : PatchModel
    table : SourceTable
    settings : FitSettings
    prob : _problem._Problem
        From :func:`._problem.make_problem`.
    size_fn : callable
        ``size_fn(params, fluxes)`` -> (stamp sizes, core sizes), each (n_src,).
    start : SceneFit, optional
        The result of a coarse pass (:mod:`._coarse`): its parameters are the
        start, its unconstrained-shape decisions and ``early_bad`` are kept,
        its non-targets stay fixed, and one "all" stage follows (its stages
        are reported first, named ``coarse_<stage>``).
    check : bool
        False: stop after the stages (no final check; ``ev`` is None).
    refresh : bool
        With a gain, refresh the Poisson weights from the model between
        stages (False: the weights of the initial flux solve stand).

    Returns
    -------
    SceneFit
    """
    params = prob.mu.copy() if start is None else start.params.copy()
    forced = not prob.free_all.any()
    sizes, ev = _initial_fluxes(model, table, settings, params, size_fn, forced)
    rec = SourceRecord.empty(len(table))
    stages = () if start is None else _renamed("coarse_", start.stages)
    if forced:
        rec = dataclasses.replace(rec, converged=np.ones(len(table), bool))
        return SceneFit(params, ev, prob, stages, prob.free_all, rec, model.n_bad_pixels)
    free, plan, rec = _plan(model, prob, params, sizes, settings, start, rec)
    scale = abs(ev.lnlike + prob.lnprior(params))
    for i, (name, stage_free) in enumerate(plan):
        if model.gain is not None and refresh and i:
            _refresh_weights(model, params, sizes)
        anchors = _anchors(params)
        stage_free = rec.fixed_shapes(stage_free)
        tol = _stage_tol(name, settings)
        params, info, rec, reusable = _run_groups(
            name, model, prob, params, sizes, stage_free, tol, rec, anchors, scale,
            final=check and start is not None,
        )  # fmt: skip
        stages += (info,)
        free = rec.fixed_shapes(free)
    fit = SceneFit(params, None, prob, stages, free, rec, model.n_bad_pixels)
    if not check:
        return fit
    # (from a coarse start, the weights of the flux solve there stand)
    if model.gain is not None and start is None:
        _refresh_weights(model, params, sizes)
    return _check_and_polish(model, prob, fit, sizes, anchors, reusable)


def _renamed(prefix, stages):
    """The StageInfo records ``stages`` with ``prefix`` added to their names."""
    return tuple(dataclasses.replace(st, name=prefix + st.name) for st in stages)


def _stage_tol(name, settings):
    """Step tolerance (Fisher sigmas) of a stage: ``step_tol_sigma``, looser for a warm-up."""
    if name == "all":
        return settings.step_tol_sigma
    return max(WARMUP_STEP_TOL, settings.step_tol_sigma)


def _plan(model, prob, params, sizes, settings, start, rec):
    """(free mask, stage plan, record) of a fit from the catalog or from a coarse ``start``."""
    if start is None:
        free, rec = _freeze_unconstrained(model, prob, params, sizes, prob.free_all, rec)
        return free, _stage_plan(free, settings), rec
    free = start.free & prob.target[:, None]
    kept = start.record
    rec = dataclasses.replace(
        rec,
        shape_frozen=kept.shape_frozen,
        n_frozen=kept.n_frozen,
        early_bad=kept.early_bad,
        runaway=kept.runaway,
    )
    return free, [("all", free)], rec


def _check_and_polish(model, prob, fit, sizes, anchors, reusable):
    """The final check; groups with a failing target get one "polish" stage and the check again."""
    params, free, rec, stages = fit.params, fit.free, fit.record, fit.stages
    ev, ok = final_check(model, prob, params, sizes, free, anchors, reusable)
    if not (ok | ~prob.target).all():
        params, info, rec, _ = _run_groups(
            "polish",
            model,
            prob,
            params,
            sizes,
            free,
            prob.s.step_tol_sigma,
            rec,
            anchors,
            abs(ev.lnlike + prob.lnprior(params)),
            only=~ok & prob.target,
        )
        stages += (info,)
        free = rec.fixed_shapes(free)
        ev, ok = final_check(model, prob, params, sizes, free, anchors)
    rec = dataclasses.replace(rec, converged=ok | ~free.any(axis=1))
    return dataclasses.replace(fit, params=params, ev=ev, stages=stages, free=free, record=rec)
