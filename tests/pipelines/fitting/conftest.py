"""Session fixtures of the fitting tests: the small simulated field, the saturated-star field,
one baseline run of each."""

from __future__ import annotations

from typing import Any

import psutil
import pytest
from fitting_field import EPSF_PARAMS, UpstreamField, build_upstream, run_stages
from saturated_field import build_saturated_upstream


@pytest.fixture(scope="session")
def upstream(tmp_path_factory) -> UpstreamField:
    """The small simulated field through masking, with the simulator's PSF grid."""
    return build_upstream(tmp_path_factory.mktemp("fitting_field"))


@pytest.fixture(scope="session")
def baseline(upstream, tmp_path_factory) -> dict[str, Any]:
    """One uninterrupted patching + fitting run (2 loky workers) and where its results are."""
    results = tmp_path_factory.mktemp("baseline") / "patches"
    out = run_stages(upstream, results)
    out["results_dir"] = results
    out["workers_after"] = [p.pid for p in psutil.Process().children(recursive=True)
                            if "resource_tracker" not in " ".join(p.cmdline())]
    return out


@pytest.fixture(scope="session")
def saturated_upstream(tmp_path_factory):
    """The hand-made saturated-star field through masking, ``fit_wings`` mode."""
    return build_saturated_upstream(
        tmp_path_factory.mktemp("saturated_field"), "fit_wings", EPSF_PARAMS["epsf_ngrid"]
    )


@pytest.fixture(scope="session")
def saturated_run(saturated_upstream, tmp_path_factory) -> dict[str, Any]:
    """Patching + fitting of the saturated field (in-process worker)."""
    results = tmp_path_factory.mktemp("saturated_patches")
    return run_stages(saturated_upstream, results, patch_run={"max_workers": 1})
