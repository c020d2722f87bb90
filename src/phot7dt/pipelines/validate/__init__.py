"""validate: the final catalog against the simulator's truth (fluxes, pulls, positions, ZP)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
