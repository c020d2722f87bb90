"""Patching: the patch grid (ePSF cells split into patches with halos) and per-patch payloads."""

from phot7dt.pipelines.patching.pipeline import create_pipeline

__all__ = ["create_pipeline"]
