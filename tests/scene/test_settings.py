"""FitSettings built from parameter sections that also hold other keys."""

from __future__ import annotations

import pytest

from phot7dt.scene import FitSettings


def test_from_sections_takes_the_settings_and_leaves_other_keys():
    patch_run = {"n_opt_iters": 30, "dlnp_stop": 1e-7, "r_ap": 5.0, "psf_model": "epsf"}
    scene = {
        "step_tol_sigma": 0.1,
        "coarse_bands": 0,
        "source_poisson_noise": True,
        "n_opt_iters": 25,
    }
    s = FitSettings.from_sections(patch_run, scene)
    assert (s.n_opt_iters, s.dlnp_stop, s.step_tol_sigma, s.coarse_bands) == (25, 1e-7, 0.1, 0)
    assert s.fisher_bands == FitSettings().fisher_bands  # missing keys keep their defaults
    assert FitSettings.from_sections() == FitSettings()


def test_from_sections_checks_values():
    with pytest.raises(ValueError, match="step_tol_sigma"):
        FitSettings.from_sections({"step_tol_sigma": -1.0})


def test_from_mapping_still_rejects_unknown_keys():
    with pytest.raises(TypeError, match="r_ap"):
        FitSettings.from_mapping({"r_ap": 5.0})
    assert "n_opt_iters" in FitSettings.field_names()
