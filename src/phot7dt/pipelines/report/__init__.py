"""report: one self-contained HTML page with a run's key figures and headline numbers."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
