"""validate: the final catalog against the simulator's truth (flux, pulls, positions, shapes, ZP)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
