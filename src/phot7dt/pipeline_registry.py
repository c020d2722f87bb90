"""Project pipelines, registered explicitly so ``kedro run --pipeline full`` always works."""

from __future__ import annotations

import importlib

from kedro.pipeline import Pipeline

#: Stages of ``full``, in data-flow order; the run ends with the HTML report.
FULL_STAGES = (
    "ingest", "gaia_augment", "masking", "psf", "patching", "fitting", "calibration", "report"
)
#: Pipelines that are run on their own.
STANDALONE = ("simulate", "validate", "survey")
#: Report nodes that ``validate`` reruns to add its section to ``report.html``.
REPORT_PAGE = ("summarise_run", "build_report")


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines: each stage by name, ``full`` and ``__default__``.

    ``validate`` also rebuilds ``report.html`` so that the page gains its validation section.
    """
    pipelines = {
        name: importlib.import_module(f"phot7dt.pipelines.{name}").create_pipeline()
        for name in FULL_STAGES + STANDALONE
    }
    full = sum((pipelines[name] for name in FULL_STAGES), Pipeline([]))
    pipelines["validate"] = pipelines["validate"] + pipelines["report"].only_nodes(*REPORT_PAGE)
    pipelines["full"] = full
    pipelines["simulate_survey"] = importlib.import_module(
        "phot7dt.pipelines.simulate"
    ).create_survey_pipeline()
    pipelines["__default__"] = full
    return pipelines
