"""Parameter sections of the psf stage: defaults, validation messages, YAML files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from phot7dt.config import ParameterError, section, validate_parameters
from phot7dt.config.epsf import EpsfParams, MoffatPsfParams
from phot7dt.config.patch_run import PatchRunParams
from phot7dt.pipelines.psf.stamp_models import measure_stamp, moffat_stamp

CONF = Path(__file__).parents[3] / "conf"


def test_base_yaml_matches_the_model_defaults():
    for name, model in [("epsf", EpsfParams), ("moffat_psf", MoffatPsfParams)]:
        raw = yaml.safe_load((CONF / "base" / "parameters_psf.yml").read_text())[name]
        assert section(model, raw, name) == model(), name
    assert EpsfParams().epsf_ngrid == 7 and EpsfParams().q_range == (0.7, 1.3)
    assert PatchRunParams().psf_fallback_model == "moffat"


def test_all_sections_validate():
    raw = {}
    for file in ("parameters_psf.yml", "parameters_fitting.yml"):
        raw |= yaml.safe_load((CONF / "base" / file).read_text())
    raw["epsf"] |= yaml.safe_load((CONF / "sample" / "parameters_psf.yml").read_text())["epsf"]
    assert {"epsf", "moffat_psf", "patch_run"} <= set(validate_parameters(raw))


@pytest.mark.parametrize(("raw", "message"), [
    ({"cutout_size": 60}, "epsf.cutout_size must be odd"),
    ({"final_psf_size": 71}, "must not exceed epsf.cutout_size"),
    ({"q_range": [1.3, 0.7]}, "epsf.q_range"),
    ({"psfstar_mode": "both"}, "epsf.psfstar_mode"),
    ({"maxiter": 3}, "epsf.maxiter: unknown key"),
    ({"max_workers": "many"}, "epsf.max_workers"),
])
def test_bad_epsf_values_name_the_key(raw, message):
    with pytest.raises(ParameterError, match=message.replace(".", r"\.").replace("[", r"\[")):
        section(EpsfParams, raw, "epsf")


def test_bad_patch_run_values_name_the_key():
    with pytest.raises(ParameterError, match=r"patch_run\.psf_fallback_model"):
        section(PatchRunParams, {"psf_fallback_model": "airy"}, "patch_run")
    with pytest.raises(ParameterError, match=r"patch_run\.ncircular_gaussian_n"):
        section(PatchRunParams, {"ncircular_gaussian_n": 4}, "patch_run")


@pytest.mark.parametrize(("fwhm", "beta"), [(2.5, 2.5), (3.5, 3.5), (5.0, 4.5)])
def test_measure_stamp_recovers_an_analytic_moffat(fwhm, beta):
    stamp = moffat_stamp(fwhm, beta, 20.0)
    assert stamp.shape == (41, 41) and stamp.sum() == pytest.approx(1.0)
    m = measure_stamp(stamp, 4.0)
    assert m.fwhm_pix == pytest.approx(fwhm, rel=2e-3)
    assert m.moffat_beta == pytest.approx(beta, rel=2e-2)
    assert m.centre_offset_pix < 1e-3
    assert m.ee_r50_pix < m.ee_r80_pix < m.ee_r90_pix
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
    ee_total = 1 - (1 + (2 * fwhm / alpha) ** 2) ** (1 - beta)
    within_stamp = 1 - (1 + (20 / alpha) ** 2) ** (1 - beta)
    assert m.ee_2fwhm == pytest.approx(ee_total / within_stamp, abs=5e-3)
