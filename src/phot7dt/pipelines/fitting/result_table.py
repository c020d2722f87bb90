"""Per-source result table of one patch (base sources only), with tract7dt's column names.

Multi-band mode gives one set of position/shape/optimiser columns; single-band
mode suffixes them per band (``x_pix_white_{band}_fit``, ``opt_niters_{band}``,
...) and adds band-combined ``opt_converged`` (all bands), ``opt_hit_max_iters``,
``flag_bound_stalled`` (any band) and ``fit_flags`` (OR). Every ``opt_*`` value
is per source (tract7dt gives one value for a whole patch).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from phot7dt.pipelines.fitting.psf_audit import audit_columns
from phot7dt.scene import decode_flags, flag_bit

__all__ = ["BOUND_FLAGS", "no_fit_table", "result_table"]

#: Engine flags meaning a parameter ended on its bound (tract7dt's ``flag_bound_stalled``).
BOUND_FLAGS = {
    "pos_at_bound": "pos",
    "re_at_bound": "shape.logre",
    "ell_at_bound": "shape.ee",
    "sersic_n_at_bound": "sersic_n",
}
_BOUND_MASK = sum(flag_bit(name) for name in BOUND_FLAGS)
_SHARED = ("stype_fit",)
#: Position and shape columns of the engine (multi-band names), NaN where not measured.
_GEOMETRY = (
    "x_pix_patch_fit",
    "y_pix_patch_fit",
    "re_pix_fit",
    "ab_fit",
    "phi_deg_fit",
    "ELL_fit",
    "Re_fit",
    "THETA_fit",
    "sersic_n_fit",
)


def _names(value: int, wanted: dict[str, str] | None = None) -> str:
    names = decode_flags(int(value))
    if wanted is not None:
        return ",".join(wanted[n] for n in names if n in wanted)
    return ",".join(names)


def _fit_columns(result, bands: list[str], config, base: np.ndarray) -> dict[str, np.ndarray]:
    cols = {
        k: np.asarray(v)[base] for k, v in result.columns(bands, flux_err=config.flux_err).items()
    }
    flags = cols["fit_flags"].astype(np.int64)
    unmeasured = (flags & flag_bit("fully_masked")) != 0  # no pixel: position/shape not measured
    for name in _GEOMETRY:
        cols[name] = np.where(unmeasured, np.nan, cols[name].astype(float))
    niters = cols["opt_niters"].astype(np.int64)
    near_limit = niters >= config.settings.n_opt_iters - config.flag_maxiter_margin
    cols["opt_hit_max_iters"] = cols["opt_hit_max_iters"] | (~cols["opt_converged"] & near_limit)
    cols["opt_niters"] = niters
    cols["flag_bound_stalled"] = (flags & _BOUND_MASK) != 0
    cols["flag_bound_stalled_which_parameter"] = np.array(
        [_names(f, BOUND_FLAGS) for f in flags], dtype=object
    )
    cols["fit_flag_names"] = np.array([_names(f) for f in flags], dtype=object)
    return cols


def _band_name(column: str, band: str) -> str:
    return f"{column[:-4]}_{band}_fit" if column.endswith("_fit") else f"{column}_{band}"


def _single_band_columns(results, config, base: np.ndarray) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for band, result in zip(config.bands, results, strict=True):
        for name, values in _fit_columns(result, [band], config, base).items():
            if name.startswith(("FLUX_", "FLUXERR_")) or name in _SHARED:
                out[name] = values
            else:
                out[_band_name(name, band)] = values
    bands = config.bands
    out["opt_converged"] = np.logical_and.reduce([out[f"opt_converged_{b}"] for b in bands])
    out["opt_hit_max_iters"] = np.logical_or.reduce([out[f"opt_hit_max_iters_{b}"] for b in bands])
    out["flag_bound_stalled"] = np.logical_or.reduce(
        [out[f"flag_bound_stalled_{b}"] for b in bands]
    )
    out["fit_flags"] = np.bitwise_or.reduce([out[f"fit_flags_{b}"] for b in bands])
    return out


def _add_psf_model_errors(cols: dict[str, np.ndarray], task, lever: np.ndarray | None) -> None:
    """``FLUXERR_{band}_fit`` becomes the total error; ``FLUXERR_{band}_stat`` keeps the fit's.

    total = sqrt(stat**2 + (eta_b lever |flux|)**2), with ``eta_b`` the
    fractional (sky-limited) PSF-model flux error of the band's PSF in this
    patch's cell (:attr:`~phot7dt.psf_grid.PSFChoice.flux_error_frac`) and
    ``lever = kappa / (1 - m)`` per source and band: ``kappa`` how sky-limited
    the source's fit is (:func:`~phot7dt.psf_grid.sky_limited_fraction`), ``m``
    the fraction of its PSF flux on masked pixels (a saturated core, artefacts:
    a flux measured from the wings alone extrapolates the model by ``1 / (1 - m)``).
    """
    for b, (band, choice) in enumerate(zip(task.config.bands, task.psfs, strict=True)):
        stat = np.asarray(cols[f"FLUXERR_{band}_fit"], float)
        flux = np.asarray(cols[f"FLUX_{band}_fit"], float)
        cols[f"FLUXERR_{band}_stat"] = stat
        eta = 0.0 if choice is None else choice.flux_error_frac
        scale = 1.0 if lever is None else lever[:, b]
        cols[f"FLUXERR_{band}_fit"] = np.hypot(stat, eta * scale * np.abs(flux))


def _white_positions(cols: dict[str, np.ndarray], roi) -> None:
    for name in list(cols):
        if name.startswith("x_pix_patch") and name.endswith("_fit"):
            cols[name.replace("x_pix_patch", "x_pix_white")] = cols[name] + roi.x0
        elif name.startswith("y_pix_patch") and name.endswith("_fit"):
            cols[name.replace("y_pix_patch", "y_pix_white")] = cols[name] + roi.y0


def result_table(task, results: list, meta: dict[str, Any],
                 lever: np.ndarray | None = None) -> pd.DataFrame:
    """Rows of the patch's base sources: key, patch tags, fit columns, PSF audit.

    Parameters
    ----------
    task : PatchTask
    results : list of FitResult
        One (multi-band) or one per band (single-band mode).
    meta : dict
        Patch meta holding the PSF audit fields.
    lever : (n_base, B) ndarray, optional
        Factor on each base source's PSF-model error per band (see
        :func:`_add_psf_model_errors`; 1 when not given).
    """
    cfg = task.config
    base = ~task.sources["is_halo"].to_numpy(bool)
    rows = task.sources.loc[base, [*cfg.key, "x_pix_patch", "y_pix_patch"]].reset_index(drop=True)
    if cfg.settings.enable_multi_band_simultaneous_fitting:
        cols = _fit_columns(results[0], list(cfg.bands), cfg, base)
    else:
        cols = _single_band_columns(results, cfg, base)
    _add_psf_model_errors(cols, task, lever)
    _white_positions(cols, task.roi)
    fit = pd.DataFrame(cols)
    head = pd.DataFrame({"patch_tag": task.tag, "epsf_tag": task.epsf_tag}, index=fit.index)
    audit = pd.DataFrame(audit_columns(meta), index=fit.index)
    return pd.concat([rows, head, fit, audit], axis=1)


def no_fit_table(task, meta: dict[str, Any]) -> pd.DataFrame:
    """Rows of the patch's base sources when nothing could be fitted (no band has a PSF):
    key, patch tags, ``fit_flags`` = 0 and the PSF audit; every fit value is missing."""
    base = ~task.sources["is_halo"].to_numpy(bool)
    rows = task.sources.loc[base, [*task.config.key, "x_pix_patch", "y_pix_patch"]]
    rows = rows.reset_index(drop=True)
    head = pd.DataFrame(
        {"patch_tag": task.tag, "epsf_tag": task.epsf_tag, "fit_flags": 0}, index=rows.index
    )
    audit = pd.DataFrame(audit_columns(meta), index=rows.index)
    return pd.concat([rows, head, audit], axis=1)
