"""End-to-end benchmark: simulate a sample tile, then run every stage of ``full`` on it.

Each stage runs as its own ``kedro run --pipeline <stage> -e sample`` process (in
``full``'s order) on a scratch work folder; its wall time and the peak resident
memory of its whole process tree (the kedro process plus its worker processes,
summed, sampled every 0.2 s) are written to ``benchmarks/results/pipeline.json``.

Run: ``python benchmarks/pipeline.py [--preset medium] [--scratch DIR]``.
Targets (medium preset, 2 cores): end to end <= 600 s, peak RSS <= 4 GB.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from process_tree import tree_rss  # noqa: E402

logger = logging.getLogger("benchmarks.pipeline")
PROJECT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "gaia_augment", "masking", "psf", "patching", "fitting", "calibration")
TARGETS = {"total_seconds": 600.0, "peak_rss_gb": 4.0}
SAMPLE_EVERY_S = 0.2


def run_measured(args: list[str], log_path: Path) -> dict:
    """Run one command; wall time, peak summed RSS of its process tree, exit code."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"}
    start, peak = time.perf_counter(), 0
    with log_path.open("w") as log:
        child = subprocess.Popen(args, cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT, env=env)
        proc = psutil.Process(child.pid)
        while child.poll() is None:
            try:
                peak = max(peak, tree_rss(proc))
            except psutil.Error:
                pass
            time.sleep(SAMPLE_EVERY_S)
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "peak_rss_gb": round(peak / 1e9, 3),
        "exit_code": child.returncode,
        "log": str(log_path),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="medium", help="simulate.preset (small, medium, large)")
    parser.add_argument(
        "--scratch", type=Path, default=None, help="scratch folder (default: a temp dir)"
    )
    parser.add_argument("--out", type=Path, default=PROJECT / "benchmarks/results/pipeline.json")
    opts = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    scratch = opts.scratch or Path(tempfile.mkdtemp(prefix="phot7dt_bench_"))
    raw, work, logs = scratch / "raw", scratch / "work", scratch / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    kedro = [str(Path(sys.executable).with_name("kedro")), "run", "-e", "sample"]
    paths = (
        f"work_dir={work},image_list={raw / 'image_list.txt'},input_catalog={raw / 'catalog.csv'},"
        f"gaiaxp_synphot={raw / 'gaiaxp_synphot.csv'}"
    )
    result = {
        "preset": opts.preset,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "scratch": str(scratch),
        "targets": TARGETS,
        "stages": {},
    }
    sim = run_measured(
        [
            *kedro,
            "--pipeline",
            "simulate",
            "--params",
            f"simulate.preset={opts.preset},sample_dir={raw},work_dir={work}",
        ],
        logs / "simulate.log",
    )
    result["simulate"] = sim
    logger.info("simulate: %.1f s, %.2f GB", sim["seconds"], sim["peak_rss_gb"])
    for stage in STAGES:
        if sim["exit_code"] != 0:
            break
        rec = run_measured([*kedro, "--pipeline", stage, "--params", paths], logs / f"{stage}.log")
        result["stages"][stage] = rec
        logger.info(
            "%s: %.1f s, peak %.2f GB, exit %d",
            stage,
            rec["seconds"],
            rec["peak_rss_gb"],
            rec["exit_code"],
        )
        if rec["exit_code"] != 0:
            break
    stages = result["stages"].values()
    result["total_seconds"] = round(sum(s["seconds"] for s in stages), 2)
    result["peak_rss_gb"] = max((s["peak_rss_gb"] for s in stages), default=0.0)
    result["completed"] = len(result["stages"]) == len(STAGES) and all(
        s["exit_code"] == 0 for s in stages
    )
    result["meets_targets"] = bool(
        result["completed"]
        and result["total_seconds"] <= TARGETS["total_seconds"]
        and result["peak_rss_gb"] <= TARGETS["peak_rss_gb"]
    )
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    logger.info(
        "total %.1f s, peak %.2f GB, completed %s -> %s",
        result["total_seconds"],
        result["peak_rss_gb"],
        result["completed"],
        opts.out,
    )
    return 0 if result["completed"] else 1


if __name__ == "__main__":
    sys.exit(main())
