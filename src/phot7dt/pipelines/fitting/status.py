"""One registry of fit statuses: every catalog row says what happened to it.

A row gets the first status of :data:`FIT_STATUSES` (precedence order) whose
rule matches; ``ok`` is the default. In single-band mode each band also gets
``fit_status_{band}`` from the same rules applied to that band's fit, and the
row's ``fit_status`` uses the band-combined columns (not converged or at a
bound in any band; masked or without PSF in every band; combined S/N).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from phot7dt.catalog_columns import bool_column, numeric_column
from phot7dt.scene import flag_bit

__all__ = [
    "FIT_STATUSES",
    "STATUS_NAMES",
    "FitStatus",
    "band_statuses",
    "failure_message",
    "format_counts",
    "row_statuses",
    "status_counts",
    "with_statuses",
]


class FitStatus(NamedTuple):
    """One fit status: its name (the column value) and what it means."""

    name: str
    meaning: str


FIT_STATUSES = (
    FitStatus(
        "excluded_crop",
        "not fitted: invalid coordinates, outside the image or in the "
        "crop margin (excluded_reason says which)",
    ),
    FitStatus(
        "excluded_saturation",
        "not fitted: a saturated pixel within "
        "source_saturation_cut.radius_pix (mode exclude, tract7dt's behaviour)",
    ),
    FitStatus(
        "patch_failed",
        "not fitted: its patch raised or left no result; the error and "
        "traceback are in 08_reporting/fitting/fit_run_report.json",
    ),
    FitStatus("no_psf", "not fitted: no band has a usable PSF in the source's ePSF cell"),
    FitStatus("masked", "no usable pixel under the source in any band (flux NaN)"),
    FitStatus(
        "not_converged",
        "fitted; the optimiser did not converge for this source or ran out of iterations",
    ),
    FitStatus(
        "hit_bound",
        "fitted; a position or shape parameter ended on its bound "
        "(flag_bound_stalled_which_parameter says which)",
    ),
    FitStatus(
        "saturated_core",
        "fitted from its unsaturated pixels and bands: its core is "
        "masked as saturated in the bands listed in saturated_bands (mode fit_wings)",
    ),
    FitStatus("low_snr", "fitted; its combined S/N is below merge.low_snr_threshold"),
    FitStatus("ok", "fitted, converged, no bound, no saturated core, S/N above the threshold"),
)
STATUS_NAMES = tuple(s.name for s in FIT_STATUSES)
_MASKED_BITS = flag_bit("no_data") | flag_bit("fully_masked")


def _lists(frame: pd.DataFrame, name: str) -> list[set[str]]:
    if name not in frame.columns:
        return [set()] * len(frame)
    text = frame[name].astype("string").fillna("")
    return [set(filter(None, value.split(","))) for value in text]


def _select(rules: dict[str, np.ndarray]) -> np.ndarray:
    names = [n for n in STATUS_NAMES if n in rules]
    return np.select([rules[n] for n in names], names, default="ok").astype(object)


def _has_result(merged: pd.DataFrame) -> np.ndarray:
    """Rows carrying a patch result (``fit_flags`` is only set on fitted rows)."""
    if "fit_flags" not in merged.columns:
        return np.zeros(len(merged), bool)
    return merged["fit_flags"].notna().to_numpy(bool)


def _not_fitted_rules(merged: pd.DataFrame) -> dict[str, np.ndarray]:
    saturation = bool_column(merged, "excluded_saturation")
    return {
        "excluded_crop": bool_column(merged, "excluded_crop")
        | (bool_column(merged, "excluded_any") & ~saturation),
        "excluded_saturation": saturation,
        "patch_failed": ~_has_result(merged),
    }


def _snr(merged: pd.DataFrame, band: str) -> np.ndarray:
    flux, err = (
        numeric_column(merged, f"FLUX_{band}_fit"),
        numeric_column(merged, f"FLUXERR_{band}_fit"),
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.where(err > 0, np.maximum(flux, 0.0) / err, np.nan)
    return np.nan_to_num(snr, nan=0.0)


def _masked_in(merged: pd.DataFrame, column: str) -> np.ndarray:
    flags = merged[column].fillna(0).to_numpy(np.int64) if column in merged else 0
    return (np.asarray(flags) & _MASKED_BITS) != 0


def row_statuses(
    merged: pd.DataFrame, bands: list[str], low_snr_threshold: float, multi_band: bool
) -> np.ndarray:
    """``fit_status`` of every row of the merged catalog (see the module docstring).

    The combined S/N is ``sqrt(sum_b (max(FLUX_b, 0) / FLUXERR_b)**2)`` over the
    measured bands.
    """
    missing = _lists(merged, "psf_missing_bands")
    if multi_band:
        flags = np.nan_to_num(numeric_column(merged, "fit_flags")).astype(np.int64)
        masked = (flags & flag_bit("fully_masked")) != 0
    else:
        masked = np.logical_and.reduce([_masked_in(merged, f"fit_flags_{b}") for b in bands])
    combined = np.sqrt(np.sum([_snr(merged, b) ** 2 for b in bands], axis=0))
    rules = {
        **_not_fitted_rules(merged),
        "no_psf": np.array([set(bands) <= m for m in missing]) if bands else False,
        "masked": masked,
        "not_converged": bool_column(merged, "opt_hit_max_iters")
        | ~bool_column(merged, "opt_converged"),
        "hit_bound": bool_column(merged, "flag_bound_stalled"),
        "saturated_core": np.array([bool(s) for s in _lists(merged, "saturated_bands")]),
        "low_snr": combined < low_snr_threshold,
    }
    return _select(rules)


def band_statuses(
    merged: pd.DataFrame, bands: list[str], low_snr_threshold: float
) -> dict[str, np.ndarray]:
    """Single-band mode: ``fit_status_{band}`` of every row, from that band's own fit."""
    missing = _lists(merged, "psf_missing_bands")
    saturated = _lists(merged, "saturated_bands")
    out = {}
    for band in bands:
        rules = {
            **_not_fitted_rules(merged),
            "no_psf": np.array([band in m for m in missing], bool),
            "masked": _masked_in(merged, f"fit_flags_{band}"),
            "not_converged": bool_column(merged, f"opt_hit_max_iters_{band}")
            | ~bool_column(merged, f"opt_converged_{band}"),
            "hit_bound": bool_column(merged, f"flag_bound_stalled_{band}"),
            "saturated_core": np.array([band in s for s in saturated], bool),
            "low_snr": _snr(merged, band) < low_snr_threshold,
        }
        out[f"fit_status_{band}"] = _select(rules)
    return out


def with_statuses(
    merged: pd.DataFrame, bands: list[str], low_snr_threshold: float, multi_band: bool
) -> pd.DataFrame:
    """``merged`` plus ``fit_status_{band}`` (single-band mode), ``fit_status`` and
    ``catalog_is_partial`` (true on every row when any row is ``patch_failed``)."""
    if not multi_band:
        for name, values in band_statuses(merged, bands, low_snr_threshold).items():
            merged[name] = values
    merged["fit_status"] = row_statuses(merged, bands, low_snr_threshold, multi_band)
    merged["catalog_is_partial"] = bool((merged["fit_status"] == "patch_failed").any())
    return merged


def status_counts(merged: pd.DataFrame) -> pd.DataFrame:
    """Rows per status, every status of the registry listed (0 when absent).

    Columns ``fit_status``, ``n_sources``, then ``n_{band}`` for each
    ``fit_status_{band}`` column (single-band mode), then ``meaning``.
    """
    table = pd.DataFrame({"fit_status": list(STATUS_NAMES)})
    columns = ["fit_status", *[c for c in merged.columns if c.startswith("fit_status_")]]
    for column in columns:
        counts = merged[column].value_counts()
        name = "n_sources" if column == "fit_status" else f"n_{column[len('fit_status_') :]}"
        table[name] = [int(counts.get(s, 0)) for s in STATUS_NAMES]
    table["meaning"] = [s.meaning for s in FIT_STATUSES]
    return table


def format_counts(counts: pd.DataFrame) -> str:
    """The counts table as aligned text lines (for the log)."""
    numbers = [c for c in counts.columns if c.startswith("n_")]
    return counts[["fit_status", *numbers]].to_string(index=False)


def failure_message(report: dict[str, Any], counts: pd.DataFrame) -> str:
    """The error line of a run with failed patches or rows left without a result; "" when none."""
    failed = list(report.get("failed_patches", []))
    n_rows = int(counts.set_index("fit_status").loc["patch_failed", "n_sources"])
    if not failed and n_rows == 0:
        return ""
    first = next((r for r in report.get("patches", []) if r["status"] == "failed"), None)
    shown = ", ".join(failed[:10]) + (", ..." if len(failed) > 10 else "")
    cause = f" First error ({first['patch_tag']}): {first['error']}." if first else ""
    return (
        f"{len(failed)} of {report.get('n_patches', 0)} patches failed ({shown}); {n_rows} "
        f"catalog rows have fit_status 'patch_failed'.{cause} Everything that succeeded was "
        "written; the catalogs are marked partial (catalog_is_partial = true). Rerun with "
        "patch_run.resume=true after fixing."
    )
