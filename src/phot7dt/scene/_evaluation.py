"""The records of one :meth:`._engine.PatchModel.evaluate` call (internal).

:class:`Geometry` holds where the stamps sit (origins, core boxes, bounding
box) and which pairs overlap; :class:`Accumulator` collects fluxes, ln P and
the reduced system band block by band block and hands out the
:class:`Evaluation`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ._kernels import overlapping_pairs

__all__ = ["Accumulator", "Evaluation", "Geometry"]


@dataclasses.dataclass(frozen=True, slots=True)
class Evaluation:
    """Everything one evaluation at theta produced.

    A value: derive changed copies with ``dataclasses.replace``.

    Attributes
    ----------
    lnlike : float
        ln likelihood: -chi^2 / 2 with the flux priors' terms.
    fluxes, flux_var : ndarray, shape (n_band, n_src)
        Solved fluxes and the diagonal of H_ff^-1 (flux units, squared for the variance).
    singular : bool
        Some band's flux system was singular.
    fisher : ndarray, shape (n_theta, n_theta), optional
        Reduced Fisher matrix of the free nonlinear parameters (fluxes profiled out).
    grad : ndarray, shape (n_theta,), optional
        Gradient of ln L in those parameters.
    z_blocks : list of ndarray, optional
        Per band, (n_src, n_theta): H_ff^-1 H_ft, the flux response to theta.
    models : ndarray, shape (n_band, ny_pad, nx_pad), optional
        Model images on the padded patch.
    """

    lnlike: float
    fluxes: np.ndarray
    flux_var: np.ndarray
    singular: bool
    fisher: np.ndarray | None = None
    grad: np.ndarray | None = None
    z_blocks: list | None = None
    models: np.ndarray | None = None


class Geometry:
    """Stamp origins, gather indices and overlapping pairs of one evaluation."""

    def __init__(self, model, params, layout):
        self.layout = layout
        self.od = layout.origins(params[:, 0], params[:, 1])
        self.ox, self.oy = self.od[0], self.od[1]
        nyp, nxp = model.data.shape[1:]
        if self.ox.size and (
            self.ox.min() < 0
            or self.oy.min() < 0
            or (self.ox + layout.sizes).max() > nxp
            or (self.oy + layout.sizes).max() > nyp
        ):
            msg = "a source stamp left the padded patch (position outside its bounds)"
            raise RuntimeError(msg)
        self.ns = params.shape[0]
        self.cmax = int(layout.ncols.max()) if self.ns else 1
        off = (layout.sizes - layout.core) // 2
        self.bx, self.by = self.ox + off, self.oy + off
        end_x, end_y = self.ox + layout.sizes, self.oy + layout.sizes
        self.box = (
            (int(self.oy.min()), int(end_y.max()), int(self.ox.min()), int(end_x.max()))
            if self.ns
            else (0, 0, 0, 0)
        )  # (y0, y1, x0, x1): bounding box of every stamp
        full_s, _ = overlapping_pairs(self.ox, self.oy, layout.sizes)
        self.ps, self.pt = overlapping_pairs(self.bx, self.by, layout.core)
        self.separable = full_s.size == 0
        self.approximate = (not self.separable) and (
            full_s.size != self.ps.size or bool(np.any(layout.core < layout.sizes))
        )


class Accumulator:
    """Fluxes, ln P and the reduced system summed over band blocks; :meth:`finish` -> Evaluation."""

    def __init__(self, n_band, ns, nth, derivs, want_model, shape):
        self.lnlike = 0.0
        self.singular = False
        self.derivs = derivs
        self.fluxes = np.zeros((n_band, ns))
        self.flux_var = np.zeros((n_band, ns))
        self.fisher = np.zeros((nth, nth)) if derivs else None
        self.grad = np.zeros(nth) if derivs else None
        self.z_blocks = [] if derivs else None
        self.models = np.zeros((n_band,) + shape) if want_model else None
        self.sparse = False
        self.adjoint = None
        self.fisher_flux = None

    def finish(self):
        return Evaluation(
            self.lnlike,
            self.fluxes,
            self.flux_var,
            self.singular,
            self.fisher,
            self.grad,
            self.z_blocks,
            self.models,
        )
