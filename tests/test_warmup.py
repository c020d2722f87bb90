"""The numba kernel cache: where it lives, and that the warm-up compiles every kernel."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import phot7dt

PACKAGE = Path(phot7dt.__file__).resolve().parent
#: Kernels only called from other kernels: compiled (or inlined) inside their callers.
CALLED_FROM_KERNELS = {"_gaussian_row", "_sharp_test", "_sorted"}


def _python(code: str, **env: str) -> str:
    full_env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    full_env.update(PYTHONPATH=str(PACKAGE.parent), **env)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=full_env)
    return run.stdout.strip().splitlines()[-1]


def test_numba_cache_dir_is_the_users_unless_numba_cache_dir_is_set(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert phot7dt.numba_cache_dir() == str(tmp_path / "mine")
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert phot7dt.numba_cache_dir() == str(tmp_path / "xdg" / "phot7dt" / "numba")


def test_importing_phot7dt_points_numba_at_the_user_cache(tmp_path):
    code = "import phot7dt, numba; print(numba.config.CACHE_DIR)"
    assert _python(code, XDG_CACHE_HOME=str(tmp_path)) == str(tmp_path / "phot7dt" / "numba")
    assert _python(code, XDG_CACHE_HOME=str(tmp_path), NUMBA_CACHE_DIR=str(tmp_path / "own")) \
        == str(tmp_path / "own")


def test_warm_up_compiles_every_kernel_a_fit_or_the_artefact_finder_calls():
    code = (
        "from numba.core.registry import CPUDispatcher\n"
        "from phot7dt import _artefact_kernels as A\n"
        "from phot7dt.scene import _kernels as K\n"
        "from phot7dt.warmup import warm_up\n"
        "warm_up()\n"
        "print(sorted(n for m in (K, A) for n, f in vars(m).items()\n"
        "             if isinstance(f, CPUDispatcher) and not f.signatures))"
    )
    uncompiled = set(ast.literal_eval(_python(code)))
    missed = uncompiled - CALLED_FROM_KERNELS
    assert not missed, f"phot7dt.warmup does not reach {sorted(missed)}"
