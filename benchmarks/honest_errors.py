"""Accuracy benchmark: flux bias, scatter and pulls per S/N bin, and ePSF errors, on hard fields.

For each case (a clean field and one field per defect kind), a medium field is
simulated with many bright stars (``n_gaia_stars``) and a PSF varying across the
field (``psf_fwhm_field_variation``, shear), then ``full`` and ``validate`` run on
it. Written per case: star and galaxy bias (median of fit/true - 1), scatter
(robust std of fit/true - 1), pull median and std (plain and robust) per S/N bin
(S/N = true flux / FLUXERR_fit), wall time of ``full``; and per band the ePSF
FWHM and encircled-energy error of every built cell against the simulator's true
PSF at the cell's star-weighted centre (``moment_field.x0, y0``).

Run: ``python benchmarks/honest_errors.py [--cases clean,cosmic_rays] [--scratch DIR]
[--code DIR]``; ``--code`` runs another checkout's ``src`` (e.g. an older commit in a
``git worktree``) on the same simulated fields, for before/after tables. Results go to
``benchmarks/results/honest_errors.json`` (``--out``), one entry per case and code label.
Targets (issue "Honest errors on real coadds"): stars pull std 1.0 +- 0.1 in every S/N bin
up to 1000, |bias| < 0.3 % at S/N >= 20; galaxies pull std 1.0 +- 0.15, |bias| < 1 %;
ePSF FWHM within 1 %, EE within 0.5 %.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.stats import mad_std

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "src"))
from phot7dt.pipelines.psf.stamp_models import growth_curve, measure_stamp  # noqa: E402
from phot7dt.pipelines.simulate.render import true_psf_image  # noqa: E402

logger = logging.getLogger("benchmarks.honest_errors")
FIELD = "simulate.n_gaia_stars=300,simulate.psf_fwhm_field_variation=0.08,simulate.seed=21"
CASES = {
    "clean": "",
    "sky_offset": "simulate.defects.sky_offset_sigma=0.3",
    "sky_gradient": "simulate.defects.sky_gradient_sigma=1.0",
    "depth_map": "simulate.defects.depth_map=true",
    "cosmic_rays": "simulate.defects.cosmic_rays=300,simulate.defects.hot_pixels=50",
    "hot_columns": "simulate.defects.hot_columns=2",
    "trails": "simulate.defects.satellite_trails=2",
    "nan_border": "simulate.defects.nan_border_pix=15",
}
SNR_EDGES = (0, 5, 20, 100, 300, 1000, 1e9)
MARGIN = 20  # the sample environment's crop margin, px


def _kedro(code: Path, args: list[str], log: Path) -> float:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": str(code / "src"), "KEDRO_LOGGING_CONFIG": str(code / "conf/logging.yml")}
    start = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run([str(Path(sys.executable).with_name("kedro")), "run", "-e", "sample",
                               *args], cwd=code, stdout=out, stderr=subprocess.STDOUT, env=env)
    if done.returncode:
        raise RuntimeError(f"kedro {' '.join(args[:2])} failed, see {log}")
    return time.perf_counter() - start


def flux_stats(truth_fluxes: Path) -> dict:
    """Bias, scatter and pulls per class and S/N bin."""
    f = pd.read_csv(truth_fluxes)
    f = f[np.isfinite(f.flux_fit) & np.isfinite(f.fluxerr_fit) & (f.fluxerr_fit > 0)]
    out = {}
    for cls in ("star", "galaxy"):
        g, rows = f[f.source_class == cls], []
        for lo, hi in zip(SNR_EDGES[:-1], SNR_EDGES[1:], strict=True):
            h = g[(g.snr_true >= lo) & (g.snr_true < hi)]
            if len(h) < 5:
                continue
            rel = h.flux_fit / h.flux_true - 1
            pull = (h.flux_fit - h.flux_true) / h.fluxerr_fit
            rows.append({"snr": [lo, hi], "n": len(h), "bias": float(np.median(rel)),
                         "scatter": float(mad_std(rel)), "pull_median": float(np.median(pull)),
                         "pull_std": float(np.std(pull)), "pull_robust_std": float(mad_std(pull))})
        out[cls] = rows
    return out


def psf_stats(raw: Path, work: Path) -> dict:
    """Per band: mean and worst relative FWHM error and EE(r = FWHM) error of the ePSF cells."""
    bands = pd.read_csv(raw / "truth_bands.csv").set_index("band")
    meta = json.loads((work / "05_model_input/epsf/meta.json").read_text())
    rows = []
    for e in meta["psf"]:
        if e["model"] != "epsf" or not e["stamp"]:
            continue
        stamp = fits.getdata(work / "05_model_input/epsf" / e["stamp"]).astype(float)
        field, qa = e.get("moment_field"), e["qa"] or {}
        if field:
            x, y = field["x0"] + MARGIN, field["y0"] + MARGIN
        else:
            x, y = (qa["x0"] + qa["x1"]) / 2 + MARGIN, (qa["y0"] + qa["y1"]) / 2 + MARGIN
        true = true_psf_image(bands.loc[e["band"]], x, y, stamp.shape[0])
        m_fit, m_true = measure_stamp(stamp, 3.5), measure_stamp(true, 3.5)
        r = np.array([m_true.fwhm_pix])
        rows.append({"band": e["band"], "fwhm": m_fit.fwhm_pix / m_true.fwhm_pix - 1,
                     "ee": float(growth_curve(stamp, r)[0] - growth_curve(true, r)[0])})
    d = pd.DataFrame(rows)
    return {band: {"fwhm_mean": float(g.fwhm.mean()), "fwhm_worst": float(g.fwhm.abs().max()),
                   "ee_mean": float(g.ee.mean()), "ee_worst": float(g.ee.abs().max()),
                   "cells": len(g)} for band, g in d.groupby("band")}


def run_case(name: str, scratch: Path, code: Path, label: str) -> dict:
    raw, work, logs = scratch / name / "raw", scratch / name / label, scratch / name / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if not (raw / "truth.csv").exists():
        sim = ",".join(p for p in (FIELD, CASES[name]) if p)
        _kedro(PROJECT, ["--pipeline", "simulate", "--params",
                         f"{sim},sample_dir={raw},work_dir={scratch / name / 'sim'}"],
               logs / "simulate.log")
    paths = (f"sample_dir={raw},work_dir={work},image_list={raw / 'image_list.txt'},"
             f"input_catalog={raw / 'catalog.csv'},gaiaxp_synphot={raw / 'gaiaxp_synphot.csv'}")
    seconds = _kedro(code, ["--pipeline", "full", "--params", paths], logs / f"{label}_full.log")
    _kedro(code, ["--pipeline", "validate", "--params", paths], logs / f"{label}_validate.log")
    return {"full_seconds": round(seconds, 1),
            "flux": flux_stats(work / "08_reporting/validate/truth_fluxes.csv"),
            "psf": psf_stats(raw, work)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/phot7dt_honest_errors"))
    parser.add_argument("--code", type=Path, default=PROJECT)
    parser.add_argument("--label", default="current")
    parser.add_argument("--out", type=Path,
                        default=PROJECT / "benchmarks/results/honest_errors.json")
    opts = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = json.loads(opts.out.read_text()) if opts.out.exists() else {}
    results.setdefault("field", FIELD)
    for name in opts.cases.split(","):
        try:
            results.setdefault(name, {})[opts.label] = run_case(name, opts.scratch, opts.code,
                                                                opts.label)
        except RuntimeError as exc:
            results.setdefault(name, {})[opts.label] = {"error": str(exc)}
        logger.info("%s / %s done", name, opts.label)
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
