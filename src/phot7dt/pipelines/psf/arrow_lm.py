"""Levenberg-Marquardt for fits with a few shared parameters and a small block per star.

The normal matrix of such a problem is an arrow: a dense block for the shared
parameters, one small block per star and their couplings. Each step eliminates
the star blocks (Schur complement), solves for the shared step and
back-substitutes, batched over stars, so a step costs little more than one
evaluation of the residuals and their derivatives. Steps are damped with
Marquardt's diagonal scaling, clipped to the parameter bounds, and accepted
when the cost falls; the fit stops when the cost falls by less than ``FTOL``
relative or the step is below ``XTOL`` relative to the parameters (scipy's
``least_squares`` tolerances).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

__all__ = ["ArrowFit", "Evaluation", "solve_arrow"]

FTOL = 1e-8
XTOL = 1e-8
#: Damping at the start, relative to the normal matrix diagonal.
START_DAMPING = 1e-3
#: Damping above which a step counts as impossible (the fit stops where it is).
MAX_DAMPING = 1e12


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Weighted residuals ``(data - model) / sigma`` and their model derivatives, per star.

    Stars may have fewer residuals than the table's rows: the rest are zero,
    with zero derivatives.

    Attributes
    ----------
    residual : (S, P) ndarray
        Residuals of each star.
    shared : (S, P, G) ndarray
        Derivatives of the weighted model in the shared parameters.
    local : (S, P, L) ndarray
        Derivatives in the parameters of the star.
    """

    residual: np.ndarray
    shared: np.ndarray
    local: np.ndarray

    @property
    def cost(self) -> float:
        return 0.5 * float(np.sum(self.residual**2))


@dataclasses.dataclass(frozen=True)
class ArrowFit:
    """Solution of :func:`solve_arrow`: parameters, the last evaluation and the
    covariance of the shared parameters (unit weights; scale by the reduced chi-square)."""

    shared: np.ndarray
    local: np.ndarray
    evaluation: Evaluation
    shared_cov: np.ndarray | None
    iterations: int


class _Normal:
    """The blocks of ``J^T J`` and ``J^T r`` of one evaluation."""

    def __init__(self, ev: Evaluation):
        g = ev.shared.shape[2]
        jac = np.concatenate([ev.shared, ev.local, ev.residual[:, :, None]], axis=2)
        products = jac.transpose(0, 2, 1) @ jac  # per star: [J r]^T [J r]
        self.u = products[:, :g, :g].sum(axis=0)
        self.grad_shared = products[:, :g, -1].sum(axis=0)
        self.w = products[:, :g, g:-1]  # (S, G, L)
        self.v = products[:, g:-1, g:-1]  # (S, L, L)
        self.grad_local = products[:, g:-1, -1]  # (S, L)

    def step(self, damping: float):
        """Shared and local steps for ``damping`` (None if the system is singular)."""
        eye_l = np.eye(self.v.shape[1])
        diag_v = np.maximum(np.diagonal(self.v, axis1=1, axis2=2), 1e-300)
        v = self.v + damping * diag_v[:, :, None] * eye_l
        try:
            v_inv = np.linalg.inv(v)
            w_vinv = self.w @ v_inv  # (S, G, L)
            schur = (self.u + damping * np.diag(np.maximum(np.diag(self.u), 1e-300))
                     - np.einsum("sgl,shl->gh", w_vinv, self.w))
            rhs = self.grad_shared - np.einsum("sgl,sl->g", w_vinv, self.grad_local)
            d_shared = np.linalg.solve(schur, rhs)
        except np.linalg.LinAlgError:
            return None
        rest = self.grad_local - np.einsum("sgl,g->sl", self.w, d_shared)
        return d_shared, np.einsum("slk,sk->sl", v_inv, rest)

    def shared_covariance(self) -> np.ndarray | None:
        """Inverse of the Schur complement: covariance of the shared parameters."""
        try:
            v_inv = np.linalg.inv(self.v)
            schur = self.u - np.einsum("sgl,slk,shk->gh", self.w, v_inv, self.w)
            return np.linalg.inv(schur)
        except np.linalg.LinAlgError:
            return None


def solve_arrow(
    evaluate: Callable[[np.ndarray, np.ndarray], Evaluation],
    shared: np.ndarray,
    local: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    max_iterations: int = 200,
) -> ArrowFit | None:
    """Minimise ``|residual|**2`` of ``evaluate(shared, local)`` within ``bounds``.

    Parameters
    ----------
    evaluate : callable
        ``(shared (G,), local (S, L)) -> Evaluation``.
    shared, local : ndarray
        Starting values (clipped to the bounds), ``(G,)`` and ``(S, L)``.
    bounds : tuple of ndarray
        Lower and upper bounds of the shared (G,) and local (L,) parameters.

    Returns
    -------
    ArrowFit or None
        None when the residuals are not finite.
    """
    lo_g, hi_g, lo_l, hi_l = bounds
    shared, local = np.clip(shared, lo_g, hi_g), np.clip(local, lo_l, hi_l)
    ev = evaluate(shared, local)
    if not np.all(np.isfinite(ev.residual)):
        return None
    damping, iteration = START_DAMPING, 0
    while iteration < max_iterations:
        iteration += 1
        normal = _Normal(ev)
        accepted = False
        while damping < MAX_DAMPING:
            steps = normal.step(damping)
            if steps is None:
                damping *= 4.0
                continue
            new_shared = np.clip(shared + steps[0], lo_g, hi_g)
            new_local = np.clip(local + steps[1], lo_l, hi_l)
            trial = evaluate(new_shared, new_local)
            if np.all(np.isfinite(trial.residual)) and trial.cost < ev.cost:
                accepted = True
                break
            damping *= 4.0
        if not accepted:
            break
        moved = np.sqrt(np.sum((new_shared - shared) ** 2) + np.sum((new_local - local) ** 2))
        size = np.sqrt(np.sum(new_shared**2) + np.sum(new_local**2))
        drop = ev.cost - trial.cost
        shared, local, ev = new_shared, new_local, trial
        damping = max(damping / 3.0, 1e-12)
        if drop < FTOL * ev.cost or moved < XTOL * (XTOL + size):
            break
    cov = _Normal(ev).shared_covariance()
    return ArrowFit(shared, local, ev, cov, iteration)
