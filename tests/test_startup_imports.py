"""Start-up: what registering the pipelines (the first step of every ``kedro run``) imports.

Node modules import heavy libraries inside the functions that use them, so that a run
pays only for the stages it runs; the engine package loads its numba kernels on first
use of a function that needs them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import phot7dt
from phot7dt import scene

PACKAGE = Path(phot7dt.__file__).resolve().parent
#: Modules a run imports only when a node needs them (each ~0.1-0.7 s of CPU).
HEAVY = (
    "photutils", "matplotlib", "scipy.ndimage", "scipy.optimize", "scipy.spatial",
    "scipy.interpolate", "astropy.coordinates", "astropy.wcs", "astropy.visualization",
    "astropy.table", "numba", "joblib", "tqdm", "phot7dt.scene._engine",
)


def _modules_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent), "MPLBACKEND": "Agg"}
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, env=env)
    return run.stdout.strip().splitlines()[-1]


def test_registering_the_pipelines_imports_no_heavy_library():
    code = "from phot7dt.pipeline_registry import register_pipelines\nregister_pipelines()"
    assert _modules_after(code) == "[]"


def test_engine_names_load_the_kernels_only_when_a_fit_needs_them():
    light = "from phot7dt.scene import FitSettings, PixelizedPSF, decode_flags, flag_bit"
    assert _modules_after(light) == "[]"
    heavy = _modules_after("from phot7dt.scene import fit_patch")
    assert "'numba'" in heavy and "'phot7dt.scene._engine'" in heavy


def test_every_public_engine_name_resolves():
    for name in scene.__all__:
        assert getattr(scene, name) is not None, name
    assert set(scene.__all__) <= set(dir(scene))
    assert scene.fit_patch.__module__ == "phot7dt.scene.api"
