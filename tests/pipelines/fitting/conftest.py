"""Session fixtures of the fitting tests: the small simulated field and one baseline run."""

from __future__ import annotations

from typing import Any

import pytest
from fitting_field import UpstreamField, build_upstream, run_stages


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
    return out
