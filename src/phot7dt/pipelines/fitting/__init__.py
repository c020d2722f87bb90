"""Fitting: parallel multi-band patch fits (joblib or dask), merged catalog, failure check."""

from phot7dt.pipelines.fitting.pipeline import create_pipeline

__all__ = ["create_pipeline"]
