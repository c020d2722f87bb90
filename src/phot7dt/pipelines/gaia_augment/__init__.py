"""Gaia augmentation: match, backfill and inject GaiaXP stars."""

from phot7dt.pipelines.gaia_augment.pipeline import create_pipeline

__all__ = ["create_pipeline"]
