"""simulate: a realistic 7DT-like sample tile in tract7dt's input format, with known truth;
on request (``simulate_survey``) overlapping tiles of one sky with their survey manifest."""

from phot7dt.pipelines.simulate.pipeline import create_pipeline, create_survey_pipeline

__all__ = ["create_pipeline", "create_survey_pipeline"]
