"""GalSim rendering conventions: major-axis half-light radius, angle, flux and saturation."""

from __future__ import annotations

import galsim
import numpy as np
import pandas as pd
import pytest

from phot7dt.pipelines.simulate.render import bleed_and_clip, draw_source, galaxy_profile

BAND = pd.Series(
    {
        "band": "m550",
        "fwhm_pix": 3.5,
        "moffat_beta": 3.5,
        "skysig": 4.0,
        "saturate": 60000.0,
        "psf_grad_x": 0.0,
        "psf_grad_y": 0.0,
        "psf_radial": 0.0,
        "psf_xc": 0.0,
        "psf_yc": 0.0,
        "psf_norm_pix": 100.0,
    }
)


def _fine_image(ell: float, theta_deg: float, re_pix: float = 5.0) -> tuple[np.ndarray, ...]:
    profile = galaxy_profile(1.0, re_pix, ell, theta_deg)
    image = profile.drawImage(nx=401, ny=401, scale=0.1, method="no_pixel").array
    yy, xx = (np.mgrid[:401, :401] - 200) * 0.1
    return image, xx, yy


@pytest.mark.parametrize("ell", [0.0, 0.5])
def test_re_is_the_half_light_radius_along_the_major_axis(ell):
    image, xx, yy = _fine_image(ell, 0.0)
    q = 1.0 - ell
    elliptical_radius = np.hypot(xx, yy / q)  # major axis along +x
    inside = image[elliptical_radius < 5.0].sum() / image.sum()
    assert inside == pytest.approx(0.5, abs=0.01)


def test_theta_is_counter_clockwise_from_plus_x():
    image, xx, yy = _fine_image(0.6, 30.0)
    # Second-moment position angle of the major axis (numpy rows are +y).
    mxx, myy, mxy = (image * xx**2).sum(), (image * yy**2).sum(), (image * xx * yy).sum()
    angle = 0.5 * np.degrees(np.arctan2(2 * mxy, mxx - myy))
    assert angle == pytest.approx(30.0, abs=0.5)


@pytest.mark.parametrize("kind", ["STAR", "EXP", "DEV", "SERSIC"])
def test_drawn_stamp_holds_the_whole_flux(kind):
    row = pd.Series(
        {
            "x_pix": 100.3,
            "y_pix": 80.7,
            "TYPE": kind,
            "re_pix": 6.0,
            "ell": 0.4,
            "theta_deg": 20.0,
            "sersic_n": {"EXP": 1.0, "DEV": 4.0}.get(kind, 2.3),
        }
    )
    stamp = draw_source(row, 5000.0, BAND)
    assert stamp.array.sum() == pytest.approx(5000.0, rel=1e-3)
    assert (
        stamp.bounds.center.x == 101 and stamp.bounds.center.y == 82
    )  # 1-based pixel of (100, 81)


def test_saturation_clips_and_bleeds_along_columns():
    image = np.zeros((60, 20), dtype=np.float32)
    image[29:31, 9:11] = 150.0
    bleed_and_clip(image, 100.0, [galsim.BoundsI(1, 20, 1, 60)])
    assert image.max() == 100.0
    column = np.flatnonzero(image[:, 9] == 100.0)
    assert column.min() < 29 and column.max() > 30  # the excess spills up and down
    assert (image[:, 0] == 0).all()
