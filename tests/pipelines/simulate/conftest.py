"""Fixtures of the simulate tests: parameter sections of small fields."""

from __future__ import annotations

import pytest

from phot7dt.config.simulate import SimulateParams


@pytest.fixture
def small_params() -> dict:
    """The ``small`` preset, every knob at its default, as the raw parameter dict."""
    return SimulateParams(preset="small", seed=11).model_dump()


@pytest.fixture
def isolated_stars_params(small_params: dict) -> dict:
    """Noiseless field of 9 isolated grid stars, no bad pixels: fluxes can be summed exactly."""
    return {
        **small_params,
        "noise": False,
        "nan_pixels": 0,
        "nan_columns": 0,
        "psf_star_grid": 3,
        "n_field_stars": 0,
        "n_galaxies": 0,
        "n_blends": 0,
        "n_saturated": 0,
        "n_unlisted": 0,
        "n_gaia_stars": 0,
    }
