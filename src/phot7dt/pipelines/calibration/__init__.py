"""Calibration: zero points from GaiaXP stars, calibrated AB magnitudes, ZP diagnostics."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
