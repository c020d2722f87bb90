"""Wiring of the patching stage."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from phot7dt.pipelines.patching.nodes import build_patch_payloads, define_patches


def create_pipeline(**kwargs) -> Pipeline:
    """``define_patches`` (patch grid with halos), then ``build_patch_payloads`` (their sources)."""
    return Pipeline(
        [
            Node(
                define_patches,
                inputs=["active_catalog", "frames", "params:epsf", "params:patches"],
                outputs="patches",
                name="define_patches",
                tags=["patching"],
            ),
            Node(
                build_patch_payloads,
                inputs=[
                    "patches",
                    "active_catalog",
                    "frames",
                    "params:patch_run",
                    "params:patch_inputs",
                ],
                outputs="patch_payloads",
                name="build_patch_payloads",
                tags=["patching"],
            ),
        ]
    )
