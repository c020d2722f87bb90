"""Worker counts: one rule (phot7dt.workers) from the CPUs the process may use, in every stage."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from phot7dt import parallel as fitting_parallel
from phot7dt import workers
from phot7dt.config import ParameterError, section
from phot7dt.config.epsf import EpsfParams
from phot7dt.config.ingest import PerformanceParams
from phot7dt.config.patch_run import PatchRunParams
from phot7dt.pipelines.psf import parallel as psf_parallel
from phot7dt.pipelines.survey.cluster import local_workers
from phot7dt.workers import available_cpus, resolve_workers

SRC = Path(__file__).resolve().parents[1] / "src" / "phot7dt"


@pytest.fixture
def four_cpus(monkeypatch):
    monkeypatch.setattr(workers, "available_cpus", lambda: 4)


@pytest.mark.parametrize(
    ("requested", "n_tasks", "expected"),
    [("auto", None, 4), (0, None, 4), (-1, None, 4), (2, None, 2), (9, None, 4),
     ("auto", 3, 3), (9, 2, 2), (1, 10, 1), ("auto", 0, 1)],
)
def test_auto_zero_and_minus_one_mean_every_available_cpu(four_cpus, requested, n_tasks, expected):
    assert resolve_workers(requested, n_tasks) == expected


@pytest.mark.parametrize("bad", [-2, True, "all", 2.5])
def test_other_requests_are_errors(bad):
    with pytest.raises(ValueError, match="must be a positive integer, 0, -1 or 'auto'"):
        resolve_workers(bad)


def test_every_stage_follows_the_same_rule(four_cpus):
    assert fitting_parallel.n_workers("auto", 100) == 4
    assert fitting_parallel.n_workers(32, 100) == 4  # tract7dt's default, capped
    assert fitting_parallel.n_workers(-1, 3) == 3
    epsf = EpsfParams(max_workers=0)
    assert psf_parallel.n_workers(epsf, 40) == 4 and psf_parallel.n_workers(epsf, 2) == 2
    assert psf_parallel.n_workers(EpsfParams(max_workers=16), 40) == 4
    assert psf_parallel.n_workers(EpsfParams(max_workers=16, parallel_bands=False), 40) == 1
    assert PerformanceParams(white_stack_workers=-1).white_stack_threads(12) == 4
    assert PerformanceParams(white_stack_workers=3).white_stack_threads(12) == 3
    assert local_workers("auto", 10) == 4 and local_workers(8, 2) == 2


@pytest.mark.parametrize(
    ("model", "name", "key"),
    [(EpsfParams, "epsf", "max_workers"), (PatchRunParams, "patch_run", "max_workers"),
     (PerformanceParams, "performance", "white_stack_workers")],
)
def test_parameters_accept_zero_and_minus_one_and_refuse_below(model, name, key):
    assert getattr(section(model, {key: -1}, name), key) == -1
    assert getattr(section(model, {key: 0}, name), key) == 0
    with pytest.raises(ParameterError, match=rf"{name}\.{key}|{name}: .*{key}"):
        section(model, {key: -2}, name)


needs_taskset = pytest.mark.skipif(
    shutil.which("taskset") is None or not hasattr(os, "sched_getaffinity")
    or len(os.sched_getaffinity(0)) < 2,
    reason="needs taskset and at least two usable CPUs",
)


@needs_taskset
def test_a_process_pinned_to_one_cpu_starts_one_worker():
    code = (
        "from phot7dt.workers import available_cpus;"
        "from phot7dt.parallel import n_workers;"
        "print(available_cpus(), n_workers('auto', 100), n_workers(8, 100))"
    )
    result = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code],
                            capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["1", "1", "1"]
    assert available_cpus() == len(os.sched_getaffinity(0))  # not the machine's count


def test_no_module_counts_cpus_by_itself():
    offenders = [
        f"{path.relative_to(SRC)}:{number}"
        for path in SRC.rglob("*.py") if path.name != "workers.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"os\.cpu_count\(|sched_getaffinity\(|joblib\.cpu_count\(", line)
    ]
    assert offenders == []


def _pid(_task) -> int:
    return os.getpid()


def _pool_pids() -> set[int]:
    import psutil

    return {p.pid for p in psutil.Process().children(recursive=True)
            if "resource_tracker" not in " ".join(p.cmdline())}


def test_the_fits_reuse_the_psf_stages_worker_pool_and_stop_it():
    """build_epsf's maps leave their processes up; fit_patches' map runs in the same ones
    (same worker count and thread limit), and shutdown_workers stops them."""
    fitting_parallel.shutdown_workers()
    psf_pids = set(fitting_parallel.map_ordered(_pid, [(i,) for i in range(6)], 2, "psf", "cell"))
    alive = _pool_pids()
    assert psf_pids <= alive and len(alive) == 2
    fit_pids = set(fitting_parallel.map_unordered(
        _pid, list(range(6)), max_workers=2, threads_per_process=1, dask_scheduler=None))
    assert fit_pids <= alive
    fitting_parallel.shutdown_workers()
    assert _pool_pids() == set()
    fitting_parallel.shutdown_workers()  # no pool: nothing to stop, nothing started
    assert _pool_pids() == set()
