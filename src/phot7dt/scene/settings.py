"""One frozen settings object for the fitting engine (like GalSim's GSParams).

Key names follow tract7dt's ``patch_run`` section where one exists
(``n_opt_iters``, ``dlnp_stop``, ``pos_max_shift_pix``, ``enable_staged_fit``,
``enable_multi_band_simultaneous_fitting``); the rest are engine knobs.
Unknown keys raise ``TypeError`` naming the key.
"""

from __future__ import annotations

import dataclasses
import math

__all__ = ["FitSettings"]


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """Settings of :func:`phot7dt.scene.fit_patch`.

    Parameters
    ----------
    n_opt_iters : int
        Maximum Levenberg-Marquardt iterations per stage (tract7dt default 20).
    dlnp_stop : float
        Relative ln-probability tolerance: an accepted step converges only if
        its gain dlnp <= dlnp_stop * max(1, |ln P|) ...
    step_tol_sigma : float
        ... AND every free parameter's remaining Gauss-Newton step is <=
        step_tol_sigma times its current Fisher error.  Stopping there leaves
        a parameter within 0.2 sigma of its optimum by default, which adds at
        most 2 % to its error in quadrature.
    pos_max_shift_pix : float or None
        Square box bound on each position around its catalog value (px).
    enable_staged_fit : bool
        A positions warm-up stage, then all parameters (tract7dt runs three
        stages: shapes+n, positions, all) vs one stage.
    enable_multi_band_simultaneous_fitting : bool
        Shared position/shape across bands (True) or independent fits per band.
    fit_positions, fit_shapes : bool
        Free the positions / the shapes and Sersic n; both False = forced fluxes.
    re_min_pix, re_max_pix : float
        Bounds on r_e (px); hitting one sets a flag.
    re_runaway_factor : float
        A galaxy whose r_e grows beyond this many times its catalog value
        gets its catalog shape and n back, fixed for the rest of the fit
        (flag ``re_runaway``); ``inf`` turns the guard off.
    q_min : float
        Smallest axis ratio b/a reachable by the fit (bounds |ee|); flagged.
    max_step_pos, max_step_logre, max_step_ee, max_step_n : float
        Largest change per iteration (the whole step is scaled down).
    model_trunc_frac : float
        Stamps extend until flux * unit-flux model < model_trunc_frac * pixel sigma.
    cross_trunc_frac : float
        Same threshold for the boxes over which products between *different*
        sources enter the Fisher matrix.  Equal to ``model_trunc_frac`` (the
        default) means exact cross terms; larger values cut them to smaller
        core boxes, and fluxes, gradient and chi^2 are then made exact again
        from the residual image (cheaper only for very crowded, bright fields).
    min_stamp_size, max_stamp_size : int
        Limits of the per-source FFT stamp size (px).
    lm_lambda0 : float
        Initial Marquardt damping (relative to the diagonal).
    lm_max_tries : int
        Damping increases tried per iteration before the stage stalls.
    poisson_refine_iters : int
        Reweighting passes of the flux solve when a gain is given (forced
        photometry; a fit makes one and then refreshes the weights before
        every stage and before its final check).
    freeze_shape_sigma : float
        A galaxy whose Fisher error of log r_e, ee1 or ee2 at the catalog
        values exceeds this keeps its catalog shape and n (flag
        ``shape_unconstrained``); ``inf`` fits every shape.
    freeze_sersic_n_sigma : float
        Same for the Sersic index alone (flag ``sersic_n_unconstrained``).
    fisher_bands : int
        Optimiser steps estimate the Fisher matrix from this many
        representative bands (0 or >= the number of bands: all bands).
        Fluxes, ln P and the gradient always use every band, and the final
        convergence test uses the full Fisher matrix, so this changes the
        path (and speed), not the reported errors; optima agree within the
        convergence tolerance.
    coarse_bands : int
        With at least twice this many bands with data, positions and shapes
        are first fitted on this many coadds of bands of similar PSF width
        (warm-up and all-parameter stages, no final check), and the all-band
        fit starts there with one "all" stage.  Sources that are not targets
        keep their coarse values in the all-band fit; whether a shape is
        unconstrained is decided on the coadds.  0 = no coarse pass.
    neighbour_fit : {"all", "positions", "fluxes"}
        What is fitted of sources that are not targets (``SourceTable.target``:
        neighbours modelled for their light only, e.g. a patch's halo):
        everything, as for targets; positions (shapes and n stay at their
        catalog values); or fluxes alone.
    """

    n_opt_iters: int = 20
    dlnp_stop: float = 1e-6
    step_tol_sigma: float = 0.2
    pos_max_shift_pix: float | None = 5.0
    enable_staged_fit: bool = True
    enable_multi_band_simultaneous_fitting: bool = True
    fit_positions: bool = True
    fit_shapes: bool = True
    re_min_pix: float = 0.1
    re_max_pix: float = 100.0
    re_runaway_factor: float = 3.0
    q_min: float = 0.02
    max_step_pos: float = 1.0
    max_step_logre: float = 0.5
    max_step_ee: float = 0.5
    max_step_n: float = 1.0
    model_trunc_frac: float = 0.1
    cross_trunc_frac: float = 0.1
    min_stamp_size: int = 16
    max_stamp_size: int = 256
    lm_lambda0: float = 1e-3
    lm_max_tries: int = 5
    poisson_refine_iters: int = 3
    freeze_shape_sigma: float = 0.3
    freeze_sersic_n_sigma: float = 0.5
    fisher_bands: int = 5
    coarse_bands: int = 3
    neighbour_fit: str = "all"

    def __post_init__(self):
        checks = {
            "n_opt_iters": self.n_opt_iters >= 1,
            "dlnp_stop": self.dlnp_stop >= 0,
            "step_tol_sigma": self.step_tol_sigma > 0,
            "pos_max_shift_pix": self.pos_max_shift_pix is None or self.pos_max_shift_pix > 0,
            "re_min_pix": 0 < self.re_min_pix < self.re_max_pix,
            "re_runaway_factor": self.re_runaway_factor > 1,
            "q_min": 1e-3 <= self.q_min < 1,
            "model_trunc_frac": self.model_trunc_frac > 0,
            "cross_trunc_frac": self.cross_trunc_frac >= self.model_trunc_frac,
            "min_stamp_size": 8 <= self.min_stamp_size <= self.max_stamp_size,
            "lm_max_tries": self.lm_max_tries >= 1,
            "freeze_shape_sigma": self.freeze_shape_sigma > 0,
            "freeze_sersic_n_sigma": self.freeze_sersic_n_sigma > 0,
            "fisher_bands": self.fisher_bands >= 0,
            "coarse_bands": self.coarse_bands >= 0,
            "neighbour_fit": self.neighbour_fit in ("all", "positions", "fluxes"),
        }
        for key, ok in checks.items():
            if not ok:
                msg = f"invalid FitSettings.{key} = {getattr(self, key)!r}"
                raise ValueError(msg)

    @classmethod
    def from_mapping(cls, mapping=None, **overrides):
        """Build from a dict (e.g. a parameters section), rejecting unknown keys."""
        values = dict(mapping or {}, **overrides)
        known = cls.field_names()
        unknown = sorted(set(values) - known)
        if unknown:
            msg = f"unknown FitSettings key(s) {unknown}; known: {sorted(known)}"
            raise TypeError(msg)
        return cls(**values)

    @classmethod
    def from_sections(cls, *sections):
        """Build from several parameter sections, taking from each only the keys that are settings.

        For a caller whose configuration spreads the engine settings over
        sections that also hold other keys (e.g. tract7dt's ``patch_run`` and
        a ``scene`` section): ``FitSettings.from_sections(patch_run, scene)``
        instead of naming every field.  Later sections win; keys that are
        not fields of :class:`FitSettings` are left out (the sections are
        validated where they are defined), missing fields keep their
        defaults, and values are checked as in the constructor.

        Parameters
        ----------
        *sections : mapping
            Dicts of parameters (e.g. ``model.model_dump()`` of a pydantic model).
        """
        known = cls.field_names()
        values = {}
        for section in sections:
            values.update({k: v for k, v in dict(section).items() if k in known})
        return cls(**values)

    @classmethod
    def field_names(cls):
        """The names of the settings (frozenset of str)."""
        return frozenset(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes):
        """A copy with some values changed (unknown keys raise TypeError)."""
        return self.from_mapping(dataclasses.asdict(self), **changes)

    @property
    def ee_max(self):
        """Largest soft ellipticity |ee| allowed by ``q_min``."""
        e = (1.0 - self.q_min) / (1.0 + self.q_min)
        return -math.log1p(-e)
