"""Fixed costs of a run: Kedro start-up, numba compilation, QA figures, the sample field end to end.

Measured on the simulated sample field (``kedro run --pipeline simulate -e sample``):

- **start-up**: ``register_pipelines()`` alone and a ``kedro run`` of one cheap node
  (``load_input_catalog``), each ``--repeat`` times;
- **numba**: ``python -m phot7dt.warmup`` with an empty ``NUMBA_CACHE_DIR`` (compiles every
  kernel) and again with the filled one (loads them);
- **the sample field end to end**: ``kedro run --pipeline full -e sample`` with an empty
  numba cache (first run of a fresh install), then with the filled cache (``--repeat`` times);
  each node's wall time and main-process CPU time from the run's log (a logging handler
  stamps every record with the process CPU time), and the QA-figure (``plot_*``) nodes' share.

Wall times are noisy on a shared machine; CPU seconds are the children's user + system time
(``resource.getrusage(RUSAGE_CHILDREN)``: the kedro process and the worker processes it waited
for). ``--src`` measures another checkout (e.g. ``git archive <commit>`` unpacked) with the
same virtual environment, for before/after comparisons.

Run: ``python benchmarks/fixed_costs.py --label after [--src DIR] [--scratch DIR]``; the
result is stored under its label in ``benchmarks/results/fixed_costs.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

logger = logging.getLogger("benchmarks.fixed_costs")
PROJECT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT / "benchmarks/results/fixed_costs.json"
TARGETS = {"startup_cpu_s": 3.0, "sample_full_wall_s": 15.0, "plot_share": 0.10}
LOGGING_YAML = """version: 1
disable_existing_loggers: False
formatters:
  stamped: {format: "%(created).3f %(cpu).3f %(name)s: %(message)s"}
handlers:
  console: {class: fixed_costs.CpuStampHandler, level: INFO, formatter: stamped,
            stream: ext://sys.stderr}
loggers:
  kedro: {level: INFO}
  phot7dt: {level: INFO}
  py.warnings: {level: ERROR}
root: {handlers: [console]}
"""
LINE = re.compile(r"^(\d+\.\d+) (\d+\.\d+) \S+: (.*)$")


class CpuStampHandler(logging.StreamHandler):
    """A stream handler that stamps each record with the CPU seconds of its process."""

    def emit(self, record: logging.LogRecord) -> None:
        record.cpu = time.process_time()
        super().emit(record)


def run(args: list[str], cwd: Path, env: dict[str, str], log: Path | None = None) -> dict:
    """Run a command; its wall time and the CPU time of its process tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log or os.devnull, "w") as out:
        code = subprocess.run(args, cwd=cwd, env=env, stdout=out,
                              stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if code != 0:
        where = f"; log: {log}" if log else ""
        raise RuntimeError(f"{' '.join(args[:4])} ... exited {code}{where}")
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}


def node_times(log: Path) -> dict[str, dict[str, float]]:
    """Each node's wall and main-process CPU seconds, from the end of the previous node (the
    first node: its first input's loading) to its ``Completed node`` line (outputs saved)."""
    nodes: dict[str, dict[str, float]] = {}
    mark = None
    for line in log.read_text().splitlines():
        m = LINE.match(line)
        if not m:
            continue
        t, cpu, message = float(m[1]), float(m[2]), m[3]
        if (mark is None and message.startswith("Loading data from ")) or (
                message.startswith("Completed ") and " out of " in message):
            mark = (t, cpu)
        done = re.match(r"Completed node: (\w+)", message)
        if done:
            nodes[done[1]] = {"wall_s": round(t - mark[0], 2), "cpu_s": round(cpu - mark[1], 2)}
    return nodes


def summarise(runs: list[dict]) -> dict:
    """Median wall and CPU of repeated runs, and the runs themselves."""
    def median(key: str) -> float:
        values = sorted(r[key] for r in runs)
        return values[len(values) // 2]
    return {"wall_s": median("wall_s"), "cpu_s": median("cpu_s"), "runs": runs}


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="key of this result in the JSON file")
    parser.add_argument("--src", type=Path, default=PROJECT, help="project checkout to measure")
    parser.add_argument("--scratch", type=Path, default=None, help="scratch folder")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-full", action="store_true", help="no end-to-end runs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args()


def _env(src: Path, scratch: Path, numba_cache: Path | None) -> dict[str, str]:
    (scratch / "logging.yml").write_text(LOGGING_YAML)
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg",
           "KEDRO_LOGGING_CONFIG": str(scratch / "logging.yml"),
           "KEDRO_LOGGING_MODULE_ALLOWLIST": "fixed_costs",
           "PYTHONPATH": os.pathsep.join([str(src / "src"), str(PROJECT / "benchmarks")])}
    if numba_cache is not None:
        env["NUMBA_CACHE_DIR"] = str(numba_cache)
    return env


def _sample_params(raw: Path, work: Path) -> str:
    return (f"sample_dir={raw},input_catalog={raw / 'catalog.csv'},"
            f"image_list={raw / 'image_list.txt'},gaiaxp_synphot={raw / 'gaiaxp_synphot.csv'},"
            f"work_dir={work}")


def measure_startup(src: Path, env: dict, params: str, repeat: int) -> dict:
    """CPU and wall of registering the pipelines, and of a one-node ``kedro run``."""
    python, kedro = sys.executable, str(Path(sys.executable).with_name("kedro"))
    register = [python, "-c", "from phot7dt.pipeline_registry import register_pipelines as r; r()"]
    one_node = [kedro, "run", "--pipeline", "full", "-e", "sample", "--nodes",
                "load_input_catalog", "--params", params]
    return {"register_pipelines": summarise([run(register, src, env) for _ in range(repeat)]),
            "kedro_run_one_node": summarise([run(one_node, src, env) for _ in range(repeat)])}


def measure_numba(src: Path, env: dict, scratch: Path) -> dict:
    """``python -m phot7dt.warmup`` with an empty and then a filled numba cache."""
    cache = scratch / "numba_warmup"
    shutil.rmtree(cache, ignore_errors=True)
    env = {**env, "NUMBA_CACHE_DIR": str(cache)}
    warm = [sys.executable, "-m", "phot7dt.warmup"]
    return {"first_run": run(warm, src, env), "second_run": run(warm, src, env)}


def measure_full(src: Path, env: dict, scratch: Path, raw: Path, repeat: int) -> dict:
    """``kedro run --pipeline full -e sample``: first with an empty numba cache, then warm."""
    kedro = str(Path(sys.executable).with_name("kedro"))
    out: dict = {}
    for name, n in (("cold_numba_cache", 1), ("warm", repeat)):
        runs = []
        for i in range(n):
            work = scratch / f"work_{name}_{i}"
            shutil.rmtree(work, ignore_errors=True)
            log = scratch / f"full_{name}_{i}.log"
            args = [kedro, "run", "--pipeline", "full", "-e", "sample", "--params",
                    _sample_params(raw, work)]
            result = run(args, src, env, log)
            nodes = node_times(log)
            plots = {k: v for k, v in nodes.items() if k.startswith("plot_")}
            result["plot_nodes"] = plots
            result["plot_wall_s"] = round(sum(v["wall_s"] for v in plots.values()), 2)
            result["plot_cpu_s"] = round(sum(v["cpu_s"] for v in plots.values()), 2)
            result["plot_share_of_wall"] = round(result["plot_wall_s"] / result["wall_s"], 3)
            result["plot_share_of_cpu"] = round(result["plot_cpu_s"] / result["cpu_s"], 3)
            result["nodes"] = nodes
            runs.append(result)
            logger.info("%s run %d: %.1f s wall, %.1f s CPU, plots %.1f s", name, i,
                        result["wall_s"], result["cpu_s"], result["plot_wall_s"])
        out[name] = summarise(runs) if n > 1 else runs[0]
    return out


def main() -> int:
    opts = _options()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    src = opts.src.resolve()
    scratch = (opts.scratch or Path(tempfile.mkdtemp(prefix="phot7dt_fixed_"))).resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    numba_cache = scratch / "numba_cache"
    shutil.rmtree(numba_cache, ignore_errors=True)
    env = _env(src, scratch, numba_cache)
    raw = scratch / "raw"
    if not (raw / "catalog.csv").exists():
        kedro = str(Path(sys.executable).with_name("kedro"))
        run([kedro, "run", "--pipeline", "simulate", "-e", "sample", "--params",
             f"sample_dir={raw},work_dir={scratch / 'sim_work'}"], src, env, scratch / "sim.log")
    commit = subprocess.run(["git", "-C", str(src), "log", "-1", "--format=%h %s"],
                            capture_output=True, text=True).stdout.strip()
    result: dict = {"src": str(src), "commit": commit or "not a git checkout",
                    "cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": os.getloadavg()[0], "targets": TARGETS}
    result["startup"] = measure_startup(src, env, _sample_params(raw, scratch / "work_1"),
                                        opts.repeat)
    logger.info("start-up: %s", {k: v["cpu_s"] for k, v in result["startup"].items()})
    if (src / "src/phot7dt/warmup.py").exists():
        result["numba_warmup"] = measure_numba(src, env, scratch)
        logger.info("numba warm-up: %s", result["numba_warmup"])
    if not opts.skip_full:
        result["sample_full"] = measure_full(src, env, scratch, raw, opts.repeat)
    result["load_average_at_end"] = os.getloadavg()[0]
    stored = json.loads(opts.out.read_text()) if opts.out.exists() else {}
    stored[opts.label] = result
    opts.out.write_text(json.dumps(stored, indent=2) + "\n")
    logger.info("wrote %s [%s]", opts.out, opts.label)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
