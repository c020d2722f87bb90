"""Project pipelines, registered explicitly so ``kedro run --pipeline full`` always works."""

from __future__ import annotations

import importlib

from kedro.pipeline import Pipeline

#: Stages of ``full``, in data-flow order.
FULL_STAGES = ("ingest", "gaia_augment", "masking", "psf", "patching", "fitting", "calibration")
#: Pipelines that are run on their own.
STANDALONE = ("simulate", "validate", "report")


def _create(name: str) -> Pipeline | None:
    try:
        module = importlib.import_module(f"phot7dt.pipelines.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"phot7dt.pipelines.{name}":
            return None
        raise
    return module.create_pipeline()


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines: each stage by name, ``full`` and ``__default__``."""
    pipelines: dict[str, Pipeline] = {}
    for name in FULL_STAGES + STANDALONE:
        pipe = _create(name)
        if pipe is not None:
            pipelines[name] = pipe
    full = sum((pipelines[n] for n in FULL_STAGES if n in pipelines), Pipeline([]))
    pipelines["full"] = full
    pipelines["__default__"] = full
    return pipelines
