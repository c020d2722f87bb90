"""simulate: a realistic 7DT-like sample tile in tract7dt's input format, with known truth."""

from phot7dt.pipelines.simulate.pipeline import create_pipeline

__all__ = ["create_pipeline"]
