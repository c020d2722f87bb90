"""Survey QA: tile outcomes, zero points per tile and band, and the agreement of the
measurements of sources seen by several tiles."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["overlap_agreement", "primary_counts", "survey_report_html", "zero_point_figure"]

REPORT = Path("08_reporting") / "report.html"


def _bands(catalog: pd.DataFrame) -> list[str]:
    return [
        c[len("FLUX_") : -len("_uJy")]
        for c in catalog.columns
        if c.startswith("FLUX_") and c.endswith("_uJy")
    ]


def overlap_pulls(catalog: pd.DataFrame, band: str) -> np.ndarray:
    """``(F_dup - F_primary) / hypot(err_dup, err_primary)`` of every duplicate measurement.

    Fluxes in microjansky (``FLUX_{band}_uJy``); pairs where either row is excluded, has a
    non-finite flux or a non-positive error are left out.
    """
    flux, err = f"FLUX_{band}_uJy", f"FLUXERR_{band}_uJy"
    good = np.isfinite(catalog[flux]) & (catalog[err] > 0)
    if "excluded_any" in catalog:
        good &= ~catalog["excluded_any"].astype(bool)
    primary = catalog[catalog["survey_primary"] & good].set_index("survey_source")
    dups = catalog[~catalog["survey_primary"] & good]
    dups = dups[dups["survey_source"].isin(primary.index)]
    ref = primary.loc[dups["survey_source"]]
    diff = dups[flux].to_numpy() - ref[flux].to_numpy()
    return diff / np.hypot(dups[err].to_numpy(), ref[err].to_numpy())


def overlap_agreement(catalog: pd.DataFrame) -> pd.DataFrame:
    """Per band: ``n_pairs``, ``pull_median``, ``pull_std`` and ``pull_mad_std`` of the
    duplicate measurements (:func:`overlap_pulls`); near 0 and 1 when errors are honest."""
    from astropy.stats import mad_std
    rows = []
    for band in _bands(catalog):
        pulls = overlap_pulls(catalog, band)
        rows.append(
            {
                "band": band,
                "n_pairs": len(pulls),
                "pull_median": float(np.median(pulls)) if len(pulls) else np.nan,
                "pull_std": float(np.std(pulls, ddof=1)) if len(pulls) > 1 else np.nan,
                "pull_mad_std": float(mad_std(pulls)) if len(pulls) > 1 else np.nan,
            }
        )
    return pd.DataFrame(
        rows, columns=["band", "n_pairs", "pull_median", "pull_std", "pull_mad_std"]
    )


def primary_counts(catalog: pd.DataFrame) -> pd.DataFrame:
    """Per tile: catalog rows, primary rows and rows measured in more than one tile."""
    grouped = catalog.groupby("TILE", sort=False)
    return pd.DataFrame(
        {
            "n_rows": grouped.size(),
            "n_primary": grouped["survey_primary"].sum().astype(int),
            "n_shared": grouped["survey_n_meas"].apply(lambda n: int((n > 1).sum())),
        }
    ).reset_index()


def zero_point_figure(zero_points: pd.DataFrame) -> Figure:
    """Zero point of each band (x) for every tile (one line each), with its error, mag."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    bands = list(dict.fromkeys(zero_points["band"]))
    for tile, rows in zero_points.groupby("tile", sort=False):
        rows = rows.set_index("band").reindex(bands)
        ax.errorbar(
            np.arange(len(bands)),
            rows["zp"],
            rows["zp_err"],
            marker="o",
            ms=3,
            capsize=2,
            lw=1,
            label=str(tile),
        )
    ax.set_xticks(np.arange(len(bands)), bands, rotation=45 if len(bands) > 8 else 0)
    ax.set_xlabel("band")
    ax.set_ylabel("zero point ZP_median [mag]")
    ax.set_title("Zero point per tile and band")
    if zero_points["tile"].nunique() <= 20:
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def _link(target: Path, start: Path, text: str) -> str:
    if not target.exists():
        return ""
    return f'<a href="{html.escape(os.path.relpath(target, start))}">{html.escape(text)}</a>'


def _tile_table(tile_runs: pd.DataFrame, counts: pd.DataFrame, folder: Path) -> pd.DataFrame:
    table = tile_runs.merge(counts, left_on="tile", right_on="TILE", how="left")
    counted = ["n_rows", "n_primary", "n_shared"]
    table[counted] = table[counted].astype("Int64")  # failed tiles have none
    table["report"] = [_link(Path(w) / REPORT, folder, "report") for w in table["work_dir"]]
    table["log"] = [_link(Path(p), folder, "log") for p in table["log"]]
    table["error"] = table["error"].fillna("").astype(str).map(html.escape)
    columns = [
        "tile",
        "status",
        "attempts",
        "seconds",
        "n_rows",
        "n_primary",
        "n_shared",
        "report",
        "log",
        "error",
    ]
    return table[columns]


def _zero_point_table(zero_points: pd.DataFrame) -> pd.DataFrame:
    if zero_points.empty:
        return pd.DataFrame()
    text = [
        f"{z:.4f} ± {e:.4f}" for z, e in zip(zero_points["zp"], zero_points["zp_err"], strict=True)
    ]
    return zero_points.assign(value=text).pivot(index="tile", columns="band", values="value")


def survey_report_html(
    tile_runs: pd.DataFrame,
    zero_points: pd.DataFrame,
    catalog: pd.DataFrame,
    agreement: pd.DataFrame,
    folder: Path,
) -> str:
    """The survey report page (written to ``folder``; links are relative to it)."""
    status = tile_runs["status"].value_counts()
    summary = ", ".join(f"{status.get(s, 0)} {s}" for s in ("finished", "skipped", "failed"))
    n_primary = int(catalog["survey_primary"].sum()) if len(catalog) else 0
    counts = (
        primary_counts(catalog)
        if len(catalog)
        else pd.DataFrame(columns=["TILE", "n_rows", "n_primary", "n_shared"])
    )
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>phot7dt survey report</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #bbb;padding:2px 6px;font-size:90%}</style></head><body>",
        "<h1>phot7dt survey report</h1>",
        f"<p>{len(tile_runs)} tiles: {summary}. {n_primary} primary sources in "
        f"{len(catalog)} catalog rows.</p>",
        "<h2>Tiles</h2>",
        _tile_table(tile_runs, counts, folder).to_html(index=False, escape=False, na_rep=""),
        "<h2>Zero points per tile and band (ZP_median ± error, mag)</h2>",
        '<img src="zp_per_tile.png" alt="zero point per tile and band" width="800">',
        _zero_point_table(zero_points).to_html(na_rep=""),
        "<h2>Sources measured by several tiles</h2>",
        "<p>Pull = (F<sub>duplicate</sub> − F<sub>primary</sub>) / hypot(σ, σ<sub>primary</sub>)"
        " of the calibrated fluxes (µJy); honest errors give a median near 0 and a std near 1."
        "</p>",
        agreement.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep=""),
        "</body></html>",
    ]
    return "\n".join(parts)
