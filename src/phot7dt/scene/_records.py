"""Frozen records passed between the stages of a scene fit (internal, except :class:`StageInfo`).

Records are values: a stage returns new ones (``dataclasses.replace``)
instead of changing the ones it was given.  Shapes: n = sources of the scene
(or of one group), 6 = the parameter slots (x, y [px], log r_e [ln px], ee1,
ee2, Sersic n), B = bands.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["GroupRun", "SceneFit", "SourceRecord", "StageInfo"]


@dataclasses.dataclass(frozen=True, slots=True)
class StageInfo:
    """Outcome of one optimisation stage over the whole patch (its worst group).

    Attributes
    ----------
    name : str
        "positions", "all" or "polish" ("coarse_" prefixed for the stages of a coarse pass).
    niters : int
        Largest number of Levenberg-Marquardt iterations of a group in the stage.
    converged : bool
        Every group of the stage converged.
    last_dlnp : float
        Largest last accepted ln P gain of a group (dimensionless).
    hit_max_iters : bool
        Some group used ``n_opt_iters`` without converging or stalling.
    stalled : bool
        Some group ended on rejected trials (no damped step raised ln P).
    """

    name: str
    niters: int
    converged: bool
    last_dlnp: float
    hit_max_iters: bool
    stalled: bool


@dataclasses.dataclass(frozen=True, slots=True)
class GroupRun:
    """Outcome of one group's Levenberg-Marquardt loop in one stage.

    Attributes
    ----------
    params : ndarray, shape (n, 6)
        The group's parameters at the end of the stage.
    niters : int
        Accepted or attempted steps (iterations) of the loop.
    converged, stalled : bool
        Ended on a passing convergence test / on rejected trials.
    last_dlnp : float
        ln P gain of the last accepted step (0 if none).
    runaway : ndarray of bool, shape (n,)
        Galaxies reset to their catalog shape and n by the runaway guard.
    final_ev : Evaluation or None
        When the group converged on an evaluation made as the final check
        makes it (``final`` stages), that evaluation.
    """

    params: np.ndarray
    niters: int
    converged: bool
    last_dlnp: float
    stalled: bool
    runaway: np.ndarray
    final_ev: Any = None

    def hit_max(self, n_opt_iters):
        """True if the loop used ``n_opt_iters`` iterations without converging or stalling."""
        return not self.converged and not self.stalled and self.niters >= n_opt_iters


@dataclasses.dataclass(frozen=True, slots=True)
class SourceRecord:
    """Per-source optimiser outcome: each source's last stage, and the decisions kept across stages.

    Every array has shape (n,).

    Attributes
    ----------
    niters : ndarray of int64
        Iterations of the source's group in the last stage it took part in.
    last_dlnp : ndarray of float
        Last accepted ln P gain of that group.
    converged : ndarray of bool
        Passed the final per-source convergence test (or had nothing free).
    hit_max, stalled : ndarray of bool
        The group's last stage hit ``n_opt_iters`` / ended on rejected trials.
    early_bad : ndarray of bool
        A warm-up (or coarse) stage of the source's group did not converge.
    shape_frozen, n_frozen : ndarray of bool
        Shape and n (resp. n alone) held at the catalog: unconstrained by the data.
    runaway : ndarray of bool
        Reset to the catalog shape and n by the runaway guard (fixed afterwards).
    """

    niters: np.ndarray
    last_dlnp: np.ndarray
    converged: np.ndarray
    hit_max: np.ndarray
    stalled: np.ndarray
    early_bad: np.ndarray
    shape_frozen: np.ndarray
    n_frozen: np.ndarray
    runaway: np.ndarray

    def __post_init__(self):
        for field in dataclasses.fields(self):  # a record is a value: its arrays are read-only
            getattr(self, field.name).flags.writeable = False

    @classmethod
    def empty(cls, n):
        """The record of ``n`` sources before any stage (zeros, all False)."""
        z = np.zeros(n, bool)
        return cls(np.zeros(n, np.int64), np.zeros(n), z, z, z, z, z, z, z)

    def fixed_shapes(self, free):
        """``free`` (n, 6) without the shape and n of runaway galaxies (reset to the catalog)."""
        out = free.copy()
        out[self.runaway, 2:] = False
        return out

    def after_stage(self, runs, n_opt_iters, warmup):
        """The record after a stage.

        Parameters
        ----------
        runs : sequence of (ndarray of int, GroupRun)
            The source indices of each group the stage iterated, and its outcome.
        n_opt_iters : int
            ``FitSettings.n_opt_iters`` (to tell a group that hit the limit).
        warmup : bool
            The stage was a warm-up: a group that did not converge sets ``early_bad``.
        """
        niters, last_dlnp, stalled = self.niters.copy(), self.last_dlnp.copy(), self.stalled.copy()
        runaway, hit_max, early_bad = (
            self.runaway.copy(),
            self.hit_max.copy(),
            self.early_bad.copy(),
        )
        for idx, run in runs:
            niters[idx] = run.niters
            last_dlnp[idx] = run.last_dlnp
            stalled[idx] = run.stalled
            runaway[idx] |= run.runaway
            hit_max[idx] = run.hit_max(n_opt_iters)
            if warmup:
                early_bad[idx] |= not run.converged
        return dataclasses.replace(
            self,
            niters=niters,
            last_dlnp=last_dlnp,
            stalled=stalled,
            runaway=runaway,
            hit_max=hit_max,
            early_bad=early_bad,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class SceneFit:
    """What :func:`._schedule.fit_scene` returns for one independent fit.

    Attributes
    ----------
    params : ndarray, shape (n, 6)
        Fitted parameters.
    ev : Evaluation or None
        The final evaluation (fluxes, their variances, the Fisher system); None
        when the fit stopped before its final check (a coarse pass).
    prob : _problem._Problem
        Priors and bounds the fit used.
    stages : tuple of StageInfo
        The stages run, in order.
    free : ndarray of bool, shape (n, 6)
        Parameters free at the end (unconstrained shapes and runaways removed).
    record : SourceRecord
        Per-source outcome.
    n_bad_pixels : int
        Non-finite pixels given zero weight.
    """

    params: np.ndarray
    ev: Any
    prob: Any
    stages: tuple
    free: np.ndarray
    record: SourceRecord
    n_bad_pixels: int = 0

    @property
    def lnp(self):
        """ln posterior at the final evaluation (ln L + ln prior of the parameters)."""
        return self.ev.lnlike + self.prob.lnprior(self.params)
