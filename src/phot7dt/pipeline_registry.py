"""Project pipelines, registered explicitly so ``kedro run --pipeline full`` always works."""

from __future__ import annotations

import importlib

from kedro.pipeline import Pipeline

#: Stages of ``full``, in data-flow order.
FULL_STAGES = ("ingest", "gaia_augment", "masking", "psf", "patching", "fitting", "calibration")
#: Pipelines that are run on their own.
STANDALONE = ("simulate", "validate", "report")


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines: each stage by name, ``full`` and ``__default__``."""
    pipelines = {
        name: importlib.import_module(f"phot7dt.pipelines.{name}").create_pipeline()
        for name in FULL_STAGES + STANDALONE
    }
    full = sum((pipelines[name] for name in FULL_STAGES), Pipeline([]))
    pipelines["full"] = full
    pipelines["__default__"] = full
    return pipelines
