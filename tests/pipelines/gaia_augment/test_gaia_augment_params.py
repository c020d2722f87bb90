"""The ``zp`` section: tract7dt's keys and defaults, validated."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from phot7dt.config import ParameterError, section
from phot7dt.config.zp import ZpParams

CONF = Path(__file__).parents[3] / "conf" / "base" / "parameters_gaia_augment.yml"


def test_base_file_holds_every_key_with_the_model_default():
    assert yaml.safe_load(CONF.read_text())["zp"] == ZpParams().model_dump()


def test_tract7dt_defaults():
    p = ZpParams()
    assert (p.gaia_mag_min, p.gaia_mag_max, p.match_radius_arcsec, p.min_box_size_pix) == (
        8.0,
        18.0,
        3.0,
        3000,
    )
    assert (p.gaia_pos_err_pix, p.clip_sigma, p.clip_max_iters, p.zp_err_method) == (
        0.1,
        3.0,
        10,
        "all_mad",
    )


def test_position_prior_may_be_switched_off():
    assert section(ZpParams, {"gaia_pos_err_pix": None}, "zp").gaia_pos_err_pix is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"gaia_mag_min": 19.0}, "gaia_mag_min .* must not exceed gaia_mag_max"),
        ({"zp_err_method": "std"}, r"zp\.zp_err_method"),
        ({"match_radius_arcsec": 0}, r"zp\.match_radius_arcsec"),
        ({"inject_gaia": True}, r"zp\.inject_gaia: unknown key"),
    ],
)
def test_bad_values_name_the_key(raw, message):
    with pytest.raises(ParameterError, match=message):
        section(ZpParams, raw, "zp")
