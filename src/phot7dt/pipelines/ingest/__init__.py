"""Ingest: load and validate the catalog and images, white stack, crop/saturation flags."""

from phot7dt.pipelines.ingest.pipeline import create_pipeline

__all__ = ["create_pipeline"]
