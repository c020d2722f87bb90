"""One tile's full run as a subprocess: the command, its log, its outcome, resume state.

A tile task runs ``python -m kedro run --pipeline full`` in the project folder with the
tile's inputs and ``work_dir=<root>/tiles/<tile>``. The child is started through a small
launcher that asks Linux to kill it when the worker thread that started it dies
(``PR_SET_PDEATHSIG``), so a lost dask worker leaves no orphan writing into the tile's
folder while the task is retried elsewhere.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["TileJob", "finished_run", "run_tile"]

#: Environment of every tile run (no telemetry prompt, no display).
TILE_ENV = {"KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "MPLBACKEND": "Agg"}
#: BLAS/OpenMP thread caps set for tile runs on the local cluster.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: Sets PR_SET_PDEATHSIG (1) to SIGKILL (9), leaves if the parent is already gone, then execs.
_LAUNCHER = (
    "import ctypes, os, sys\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)\n"
    "except (AttributeError, OSError):\n"
    "    pass\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(70)\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])\n"
)
_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Failure)\b:?.*)$")


@dataclasses.dataclass(frozen=True)
class TileJob:
    """What a worker needs to run one tile.

    Attributes
    ----------
    tile : str
        Tile name (its folder under ``<root>/tiles``).
    kedro_args : tuple of str
        Arguments after ``python -m kedro`` (``run --pipeline full --params ...``).
    project_dir, work_dir, log_path : str
        Kedro project folder (the run's cwd), the tile's ``work_dir`` and the log file that
        receives the run's console output (appended, one header per attempt).
    env : dict
        Extra environment variables of the run.
    """

    tile: str
    kedro_args: tuple[str, ...]
    project_dir: str
    work_dir: str
    log_path: str
    env: dict[str, str]


def finished_run(work_dir: str | Path, inputs: dict[str, str] | None = None) -> bool:
    """Whether ``work_dir/run_manifest.json`` records a finished ``full`` run of these inputs.

    ``inputs`` (``{"input_catalog": path, ...}``): every one of them that the run
    manifest lists under ``inputs`` must have the same path.
    """
    path = Path(work_dir) / "run_manifest.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict) or record.get("status") != "finished":
        return False
    if record.get("pipeline", "full") != "full":
        return False
    recorded = {
        str(item.get("name")): str(item.get("path"))
        for item in record.get("inputs") or []
        if isinstance(item, dict)
    }
    return all(recorded.get(name, path) == path for name, path in (inputs or {}).items())


def run_error(work_dir: str | Path, log_text: str) -> str:
    """The error of a failed run: the run manifest's ``error``, else the log's last error line."""
    try:
        error = json.loads((Path(work_dir) / "run_manifest.json").read_text()).get("error")
    except (OSError, ValueError, AttributeError):
        error = None
    if error:
        return str(error).strip().splitlines()[0]
    lines = [m.group(1).strip() for m in map(_ERROR_LINE.match, log_text.splitlines()) if m]
    if lines:
        return lines[-1]
    tail = [line.strip() for line in log_text.splitlines() if line.strip()]
    return tail[-1] if tail else "no output"


def run_tile(job: TileJob) -> dict[str, Any]:
    """Run one tile to completion; never raises for a failed run.

    Returns
    -------
    dict
        ``tile``, ``status`` (``finished`` or ``failed``), ``returncode``, ``error`` ("" when
        finished), ``seconds`` (wall time), ``host``, ``work_dir`` and ``log``.
    """
    start = time.perf_counter()
    log = Path(job.log_path)
    log.parent.mkdir(parents=True, exist_ok=True)
    # A record left by an earlier attempt no longer describes the tile.
    (Path(job.work_dir) / "run_manifest.json").unlink(missing_ok=True)
    argv = [sys.executable, "-c", _LAUNCHER, str(os.getpid()), "-m", "kedro", *job.kedro_args]
    with log.open("a", encoding="utf-8") as stream:
        offset = stream.tell()
        stream.write(f"# {time.strftime('%Y-%m-%dT%H:%M:%S')} on {socket.gethostname()}: ")
        stream.write(f"kedro {shlex.join(job.kedro_args)}\n")
        stream.flush()
        returncode = subprocess.call(
            argv,
            cwd=job.project_dir,
            env={**os.environ, **TILE_ENV, **job.env},
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.STDOUT,
        )
    error = ""
    if returncode != 0:
        with log.open(encoding="utf-8", errors="replace") as stream:
            stream.seek(offset)
            error = run_error(job.work_dir, stream.read())
    return {
        "tile": job.tile,
        "status": "finished" if returncode == 0 else "failed",
        "returncode": returncode,
        "error": error,
        "seconds": round(time.perf_counter() - start, 2),
        "host": socket.gethostname(),
        "work_dir": job.work_dir,
        "log": str(log),
    }
