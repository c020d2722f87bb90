"""PSF stage against the fitting stage on one simulated field, for this and other checkouts.

For each checkout (``--checkout NAME=PATH``, a project folder, or ``--commit NAME=SHA``,
exported from this repository's history; default: this project as ``after``) it runs
``kedro run --pipeline full --to-nodes fit_patches`` on the field in a scratch work
folder and records every node's wall time and the CPU seconds of the whole process
tree (the kedro process, its workers and the workers it has reaped) between the node's
start and completion lines. It then times, in one process and serially, each band's
ePSF cell builds and its PSF choice (the fallback fits) in CPU seconds, so the
per-band cost does not depend on how the pool shares the cores. Results go to
``benchmarks/results/psf_stage.json``.

Run: ``python benchmarks/psf_stage.py --field DIR [--env sample] [--commit before=0db08a6]
[--commit after=HEAD] [--per-band-bands 3] [--scratch DIR]``. The field is a simulated sample
(``kedro run --pipeline simulate -e sample --params sample_dir=DIR,...``). Numbers from
a shared machine are noisy; CPU seconds are steadier than wall seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

logger = logging.getLogger("benchmarks.psf_stage")
PROJECT = Path(__file__).resolve().parents[1]
NODE_LINE = re.compile(r"(Running|Completed) node: (\w+)")
POLL_S = 0.5
TIMED_NODES = ("build_epsf", "fit_patches")


def _tree_cpu(proc: psutil.Process) -> float:
    """CPU seconds of ``proc``, its live descendants and the children it has reaped."""
    try:
        t = proc.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
    except psutil.Error:
        return 0.0
    for child in proc.children(recursive=True):
        try:
            c = child.cpu_times()
            total += c.user + c.system
        except psutil.Error:
            continue
    return total


def run_nodes(tree: Path, args: list[str], log_path: Path) -> dict:
    """Run ``kedro run`` in ``tree``; wall and tree CPU seconds of every node from its log."""
    env = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "1",
        "MPLBACKEND": "Agg",
        "PYTHONPATH": str(tree / "src"),
        "KEDRO_LOGGING_CONFIG": str(tree / "conf/logging.yml"),
    }
    nodes: dict[str, dict] = {}
    start = time.perf_counter()
    with log_path.open("w") as log, log_path.open() as reader:
        child = subprocess.Popen(
            [sys.executable, "-m", "kedro", "run", *args],
            cwd=tree,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        proc = psutil.Process(child.pid)
        cpu = 0.0
        while True:
            done = child.poll() is not None
            now = time.perf_counter() - start
            if not done:
                cpu = _tree_cpu(proc)
            for kind, name in NODE_LINE.findall(reader.read()):
                rec = nodes.setdefault(name, {})
                if kind == "Running":
                    rec.update(start=now, cpu_start=cpu)
                else:
                    rec.update(
                        wall_s=round(now - rec["start"], 1),
                        cpu_s=round(cpu - rec.pop("cpu_start"), 1),
                    )
            if done:
                break
            time.sleep(POLL_S)
    if child.returncode:
        raise RuntimeError(f"kedro run failed in {tree} (exit {child.returncode}); see {log_path}")
    return {
        "wall_s": round(time.perf_counter() - start, 1),
        "log": str(log_path),
        "nodes": {k: v for k, v in nodes.items() if "wall_s" in v},
    }


def _per_band(work: Path, field: Path, conf: Path, n_bands: int) -> dict:
    """CPU seconds of each band's cell builds and PSF choice, serially in this process.

    Runs with the checkout's ``phot7dt`` (its ``src`` first on ``PYTHONPATH``).
    """
    import numpy as np
    import pandas as pd
    import yaml

    from phot7dt.config import section
    from phot7dt.config.epsf import EpsfParams, MoffatPsfParams
    from phot7dt.config.patch_run import PatchRunParams
    from phot7dt.datasets import FrameSetDataset
    from phot7dt.pipelines.psf import cell_task, nodes
    from phot7dt.pipelines.psf.band_choice import CellOutcome, choose_band
    from phot7dt.pipelines.psf.parallel import _seeds_near
    from phot7dt.psf_grid import cell_boxes

    frames = FrameSetDataset(filepath=str(work / "02_intermediate/frames.json")).load()
    gaia = pd.read_csv(field / "gaiaxp_synphot.csv", dtype={"source_id": str})
    params = {}
    for path in sorted(conf.glob("**/parameters*.yml")):  # base first, then the environment
        for key, value in (yaml.safe_load(path.read_text()) or {}).items():
            if isinstance(value, dict):
                params.setdefault(key, {}).update(value)
    p = section(EpsfParams, params["epsf"], "epsf")
    moffat = section(MoffatPsfParams, params["moffat_psf"], "moffat_psf")
    run = section(PatchRunParams, params["patch_run"], "patch_run")
    boxes = cell_boxes(frames.shape, p.epsf_ngrid)
    seeds = nodes._gaia_seeds(gaia, frames, p)
    bands, out = frames.bands[:n_bands], []
    for band in [bands[0], *bands]:  # the first pass warms the imports up and is not kept
        t0 = time.process_time()
        built = [
            cell_task.run_cell(
                frames,
                band,
                (r, c, box),
                _seeds_near(seeds[band], box, p.half_size),
                p,
                0,
                moffat.fit_radius_fwhm,
                p.save_patch_background_diagnostics,
            )
            for (r, c), box in sorted(boxes.items())
        ]
        t1 = time.process_time()
        choices = choose_band(
            nodes._band_stars(frames, band, built), [CellOutcome.of(r) for r in built], run, moffat
        )
        t2 = time.process_time()
        out.append(
            {
                "band": band,
                "cells": len(built),
                "cells_cpu_s": round(t1 - t0, 2),
                "choice_cpu_s": round(t2 - t1, 2),
                "fallback_cells": int(sum(c.model != "epsf" for c in choices)),
                "stars_used_median": float(np.median([r.nstars_used for r in built])),
            }
        )
    return {"grid": p.epsf_ngrid, "bands": out[1:]}


def _export(commit: str, scratch: Path) -> tuple[Path, str]:
    """This repository at ``commit``, exported to a scratch folder, and its short hash."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short", commit],
        cwd=PROJECT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    tree = scratch / f"checkout_{sha}"
    if not tree.exists():
        tree.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", sha], cwd=PROJECT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree, sha


def _commit(tree: Path) -> str:
    got = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True
    )
    return got.stdout.strip() + " (working tree)" if got.returncode == 0 else "unknown"


def measure(name: str, tree: Path, commit: str, opts: argparse.Namespace) -> dict:
    """The timed run and the per-band breakdown of one checkout."""
    field, work = opts.field.resolve(), opts.scratch / f"work_{name}"
    params = (
        f"sample_dir={field},input_catalog={field}/catalog.csv,"
        f"image_list={field}/image_list.txt,gaiaxp_synphot={field}/gaiaxp_synphot.csv,"
        f"work_dir={work}"
    )
    env = ["-e", opts.env] if opts.env else []
    logger.info("%s: kedro run --to-nodes fit_patches in %s", name, tree)
    run = run_nodes(
        tree,
        ["--pipeline", "full", "--to-nodes", "fit_patches", *env, "--params", params],
        opts.scratch / f"{name}.log",
    )
    driver = subprocess.run(
        [
            sys.executable,
            __file__,
            "--per-band-driver",
            str(work),
            "--field",
            str(field),
            "--conf",
            str(tree / "conf"),
            "--env",
            opts.env or "",
            "--per-band-bands",
            str(opts.per_band_bands),
        ],
        env={**os.environ, "PYTHONPATH": str(tree / "src"), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
    )
    if driver.returncode:
        raise RuntimeError(f"per-band driver failed for {name}: {driver.stderr[-2000:]}")
    per_band = json.loads(driver.stdout.strip().splitlines()[-1])
    timed = {k: run["nodes"][k] for k in TIMED_NODES if k in run["nodes"]}
    return {
        "commit": commit,
        "run_wall_s": run["wall_s"],
        "nodes": timed,
        "psf_over_fitting_wall": _ratio(timed, "wall_s"),
        "psf_over_fitting_cpu": _ratio(timed, "cpu_s"),
        "per_band": per_band,
    }


def _ratio(nodes: dict, key: str) -> float | None:
    if "build_epsf" in nodes and nodes.get("fit_patches", {}).get(key):
        return round(nodes["build_epsf"][key] / nodes["fit_patches"][key], 3)
    return None


def _options(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--field", type=Path, required=True, help="simulated field folder")
    parser.add_argument("--env", default="", help="kedro environment (e.g. sample)")
    parser.add_argument("--checkout", action="append", default=[], help="NAME=PATH")
    parser.add_argument("--commit", action="append", default=[], help="NAME=SHA")
    parser.add_argument(
        "--per-band-bands", type=int, default=3, help="bands timed serially per checkout"
    )
    parser.add_argument("--scratch", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=PROJECT / "benchmarks/results/psf_stage.json")
    parser.add_argument("--per-band-driver", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--conf", type=Path, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> int:
    opts = _options()
    if opts.per_band_driver is not None:
        conf = opts.conf / "base" if not opts.env else opts.conf
        result = _per_band(opts.per_band_driver, opts.field, conf, opts.per_band_bands)
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    opts.scratch = Path(opts.scratch or tempfile.mkdtemp(prefix="psf_stage_")).resolve()
    opts.scratch.mkdir(parents=True, exist_ok=True)
    trees = {}
    for item in opts.commit:
        name, sha = item.split("=", 1)
        trees[name] = _export(sha, opts.scratch)
    for item in opts.checkout:
        name, path = item.split("=", 1)
        trees[name] = (Path(path).resolve(), _commit(Path(path)))
    trees = trees or {"after": (PROJECT, _commit(PROJECT))}
    results = {name: measure(name, tree, commit, opts) for name, (tree, commit) in trees.items()}
    report = {
        "field": str(opts.field),
        "env": opts.env or "base",
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
        "note": "shared 2-core machine: wall times depend on its load; CPU seconds less",
        "checkouts": results,
    }
    opts.out.write_text(json.dumps(report, indent=1) + "\n")
    logger.info("wrote %s", opts.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
