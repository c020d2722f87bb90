"""The project as users meet it: its configuration validates and its pipelines are registered."""

from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader

from phot7dt.config import validate_parameters
from phot7dt.pipeline_registry import FULL_STAGES, register_pipelines

ROOT = Path(__file__).resolve().parents[1]

#: Node names users type (``kedro run --from-nodes build_epsf``).
INTERFACE_NODES = {
    "load_input_catalog",
    "prepare_frames",
    "check_frames",
    "build_white_stack",
    "flag_sources",
    "build_epsf",
    "define_patches",
    "build_patch_payloads",
    "fit_patches",
    "merge_fits",
    "compute_zero_points",
    "apply_zero_points",
}


@pytest.mark.parametrize("env", ["local", "sample"])
def test_every_parameter_section_validates(env):
    loader = OmegaConfigLoader(
        str(ROOT / "conf"), base_env="base", default_run_env=env,
        merge_strategy={"parameters": "soft"},
    )
    validated = validate_parameters(loader["parameters"])
    assert {"crop", "epsf", "patch_run", "zp", "bright_mask"} <= set(validated)


def test_full_pipeline_has_every_stage_and_interface_node():
    pipelines = register_pipelines()
    assert set(FULL_STAGES) <= set(pipelines)
    names = {node.name for node in pipelines["full"].nodes}
    assert INTERFACE_NODES <= names
    assert all("." not in name for name in names), "node names must not be namespaced"
