"""psf stage: ePSF per band and grid cell, fallback PSFs and PSF QA figures."""

from phot7dt.pipelines.psf.pipeline import create_pipeline

__all__ = ["create_pipeline"]
