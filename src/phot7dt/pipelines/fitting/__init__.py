"""Fitting: parallel multi-band patch fits (joblib or dask), the merged catalog, the failure check."""

from phot7dt.pipelines.fitting.pipeline import create_pipeline

__all__ = ["create_pipeline"]
