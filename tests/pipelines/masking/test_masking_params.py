"""The ``bright_mask`` section: tract7dt's keys and defaults, validated."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from phot7dt.config import ParameterError, section
from phot7dt.config.bright_mask import BrightMaskParams

CONF = Path(__file__).parents[3] / "conf" / "base" / "parameters_masking.yml"


def test_base_file_holds_every_key_with_the_model_default():
    assert yaml.safe_load(CONF.read_text())["bright_mask"] == BrightMaskParams().model_dump()


def test_tract7dt_defaults():
    p = BrightMaskParams()
    assert (p.thresh_sigma, p.minarea, p.deblend_nthresh, p.deblend_cont) == (5.0, 20, 32, 0.005)
    assert (p.match_radius_pix, p.ellipse_scale, p.min_radius_pix, p.dilate_pix) == (
        3.0,
        3.0,
        6.0,
        1,
    )


def test_unknown_key_is_named():
    with pytest.raises(ParameterError, match=r"bright_mask\.dilate: unknown key"):
        section(BrightMaskParams, {"dilate": 2}, "bright_mask")
