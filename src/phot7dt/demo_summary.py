"""Print where a run's outputs are and its headline numbers (``python -m phot7dt.demo_summary``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)

LAYERS = ("02_intermediate", "03_primary", "05_model_input", "07_model_output", "08_reporting")


def _layer_lines(work_dir: Path) -> list[str]:
    lines = []
    for layer in LAYERS:
        folder = work_dir / layer
        files = [p for p in folder.rglob("*") if p.is_file() and p.name != ".gitkeep"]
        if files:
            pngs = sum(p.suffix == ".png" for p in files)
            lines.append(f"  {folder}/  ({len(files)} files, {pngs} plots)")
    return lines


def _catalog_lines(catalog: Path) -> list[str]:
    cat = pd.read_csv(catalog, dtype={"ID": str}, low_memory=False)
    excluded = (
        cat["excluded_any"].astype(bool) if "excluded_any" in cat else pd.Series(False, cat.index)
    )
    lines = [
        f"  sources: {len(cat)} rows, {int((~excluded).sum())} fitted, "
        f"{int(excluded.sum())} excluded"
    ]
    if "opt_converged" in cat:
        conv = cat.loc[~excluded, "opt_converged"].astype(bool).mean()
        lines.append(f"  converged: {100 * conv:.1f}% of fitted sources")
    bands = [
        c[len("FLUX_") : -len("_fit")]
        for c in cat.columns
        if c.startswith("FLUX_") and c.endswith("_fit")
    ]
    for band in bands:
        flux, err = cat[f"FLUX_{band}_fit"], cat.get(f"FLUXERR_{band}_fit")
        snr = (flux / err).median() if err is not None else float("nan")
        lines.append(f"  {band}: median flux S/N {snr:.1f}")
    return lines


def summarise(work_dir: Path) -> str:
    """A short text summary of the outputs found under ``work_dir``."""
    lines = [f"phot7dt outputs under {work_dir.resolve()}:"]
    lines += _layer_lines(work_dir) or ["  (no outputs yet)"]
    catalog = work_dir / "07_model_output" / "output_catalog.csv"
    if catalog.exists():
        lines.append(f"final catalog: {catalog}")
        lines += _catalog_lines(catalog)
    zp = work_dir / "07_model_output" / "zp" / "zp_summary.csv"
    if zp.exists():
        for row in pd.read_csv(zp).itertuples():
            lines.append(f"  ZP {row.band}: {row.zp_median:.4f} ± {row.zp_err:.4f} mag")
    validation = work_dir / "08_reporting" / "validate" / "validation.json"
    if validation.exists():
        lines += _validation_lines(json.loads(validation.read_text()))
    report = work_dir / "08_reporting" / "report.html"
    if report.exists():
        lines.append(f"QA report (open in a browser): {report.resolve()}")
    return "\n".join(lines)


def _validation_lines(metrics: dict) -> list[str]:
    if not metrics.get("truth_available", True):
        return []
    head = metrics.get("headline", {})
    return [
        "validation against the simulated truth:",
        f"  star flux pull std {head.get('star_pull_std', float('nan')):.2f}"
        f" (robust {head.get('star_pull_robust_std', float('nan')):.2f}; 1 is ideal)",
        f"  median |flux bias| of S/N>20 stars "
        f"{100 * head.get('star_median_abs_bias_snr_gt', float('nan')):.2f}%",
        f"  max |zero-point error| "
        f"{1000 * head.get('max_abs_zp_error_mag', float('nan')):.1f} mmag",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work-dir", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    sys.stdout.write(summarise(args.work_dir) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
