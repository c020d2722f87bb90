"""Masking: the bright unmatched-source mask and the sources it touches."""

from phot7dt.pipelines.masking.pipeline import create_pipeline

__all__ = ["create_pipeline"]
