"""masking nodes on an analytic white stack with listed and unlisted sources."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import sep
from astropy.io import fits
from astropy.wcs import WCS

from phot7dt.frames import Box, Frame, FrameSet
from phot7dt.pipelines.masking.nodes import build_bright_mask, flag_bright_mask_sources

SHAPE = (160, 200)
LISTED = [(30.0, 30.0), (60.0, 120.0), (150.0, 40.0), (170.0, 130.0)]
UNLISTED = [(100.0, 40.0), (40.0, 80.0), (140.0, 100.0)]
#: Faint catalog source 5 px from the unlisted source at (140, 100): on the mask.
NEIGHBOUR = (145.0, 100.0)
#: Bright source whose only catalog entry is excluded: masked too.
EXCLUDED = (90.0, 130.0)


def gaussian(x0: float, y0: float, peak: float, sigma: float) -> np.ndarray:
    y, x = np.mgrid[: SHAPE[0], : SHAPE[1]]
    return peak * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma**2))


@pytest.fixture
def white_stack():
    rng = np.random.default_rng(5)
    img = rng.normal(0.0, 1.0, SHAPE)
    for x, y in LISTED:
        img += gaussian(x, y, 200.0, 1.5)
    for x, y in [*UNLISTED, EXCLUDED]:
        img += gaussian(x, y, 500.0, 2.0)
    img += gaussian(*NEIGHBOUR, 20.0, 1.5)
    img[0:5, 190:200] = np.nan  # no good band there
    sigma = np.ones(SHAPE, np.float32)
    sigma[0:5, 190:200] = np.nan
    header = WCS(naxis=2).to_header()
    return (img.astype(np.float32), header), (sigma, header)


@pytest.fixture
def catalog() -> pd.DataFrame:
    positions = [*LISTED, NEIGHBOUR, EXCLUDED, (np.nan, np.nan)]
    cat = pd.DataFrame(
        {
            "ID": [f"s{i}" for i in range(len(positions))],
            "x_pix_white": [p[0] for p in positions],
            "y_pix_white": [p[1] for p in positions],
            "excluded_any": [False] * 5 + [True, True],
        }
    )
    return cat


def build(white_stack, catalog, **params):
    (white, sigma) = white_stack
    return build_bright_mask(white, sigma, catalog, params)


def test_unlisted_bright_sources_are_masked_listed_ones_are_not(white_stack, catalog):
    (mask, header), detections = build(white_stack, catalog)
    assert mask.dtype == np.uint8 and mask.shape == SHAPE
    for x, y in [*UNLISTED, EXCLUDED]:
        assert mask[int(y), int(x)] == 1
    for x, y in LISTED:
        assert mask[int(y), int(x)] == 0
    assert detections["listed"].sum() == len(LISTED)
    assert header["BMNPIX"] == mask.sum()


def test_mask_area_is_the_scaled_floored_dilated_ellipses(white_stack, catalog):
    (mask, _), detections = build(white_stack, catalog)
    masked = detections[detections["masked"]]
    a = np.maximum(3.0 * masked["a"], 6.0) + 1.0  # + dilate_pix
    b = np.maximum(3.0 * masked["b"], 6.0) + 1.0
    expected = float(np.sum(np.pi * a * b))
    assert mask.sum() == pytest.approx(expected, rel=0.15)
    assert 0.0 < mask.mean() < 0.05


def test_sources_on_the_mask_are_flagged(white_stack, catalog):
    mask, _ = build(white_stack, catalog)
    out = flag_bright_mask_sources(catalog, mask)
    affected = dict(zip(out["ID"], out["affected_by_bright_mask"], strict=True))
    assert affected == {
        "s0": False,
        "s1": False,
        "s2": False,
        "s3": False,
        "s4": True,
        "s5": True,
        "s6": False,
    }
    pd.testing.assert_frame_equal(out.drop(columns="affected_by_bright_mask"), catalog)


def test_disabled_mask_is_zero_and_flags_nothing(white_stack, catalog, caplog):
    caplog.set_level(logging.INFO)
    (mask, _), detections = build(white_stack, catalog, enabled=False)
    assert mask.shape == SHAPE and not mask.any() and detections.empty
    assert not flag_bright_mask_sources(catalog, (mask, None))["affected_by_bright_mask"].any()
    assert "bright_mask.enabled is false" in caplog.text


def test_small_sep_pixel_stack_is_grown(white_stack, catalog):
    default = sep.get_extract_pixstack()
    sep.set_extract_pixstack(50)
    try:
        (mask, _), detections = build(white_stack, catalog)
    finally:
        sep.set_extract_pixstack(default)
    assert detections["masked"].sum() == len(UNLISTED) + 1 and mask.any()


def test_inputs_are_not_modified(white_stack, catalog):
    (white, _), (sigma, _) = white_stack
    before = white.copy(), sigma.copy()
    build(white_stack, catalog)
    np.testing.assert_array_equal(white, before[0])
    np.testing.assert_array_equal(sigma, before[1])


def test_patch_bad_pixels_are_nonfinite_or_saturated_or_bright(tmp_path):
    """The final mask of a band is composed when a patch is cut (FrameSet.cutout)."""
    raw = np.full((30, 40), 100.0, np.float32)
    raw[5, 6] = np.nan
    raw[10, 12] = 70000.0  # above SATURATE / 1.3
    fits.PrimaryHDU(raw).writeto(tmp_path / "b.fits")
    frame = Frame(
        band="m400",
        path=str(tmp_path / "b.fits"),
        hdu=0,
        zp_auto=25.0,
        skysig=2.0,
        egain=1.0,
        saturate=80000.0,
        saturation_level=80000.0 / 1.3,
        fwhm_pix=3.0,
        scale=1.0,
    )
    frames = FrameSet(
        (frame,), Box(2, 2, 38, 28), (30, 40), 25.0, WCS(naxis=2).to_header().tostring()
    )
    bright = np.zeros(frames.shape, np.uint8)
    bright[15:18, 20:23] = 1
    box = Box(1, 1, 30, 22)
    _, invvar, _ = frames.cutout(box, extra_mask=bright[box.slices] > 0)
    expected_bad = np.zeros(box.shape, bool)
    expected_bad[5 - 2 - 1, 6 - 2 - 1] = True  # non-finite (original -> working -> box)
    expected_bad[10 - 2 - 1, 12 - 2 - 1] = True  # saturated
    expected_bad[14:17, 19:22] = True  # bright mask
    np.testing.assert_array_equal(invvar[0] == 0, expected_bad)
    assert np.allclose(invvar[0][~expected_bad], 0.25)


def test_bright_mask_figure_tints_the_masked_pixels_in_the_one_white_stack_image():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from phot7dt.pipelines.masking.plots import plot_bright_mask

    white = np.tile(np.linspace(0.0, 100.0, 60, dtype=np.float32), (40, 1))
    white[0, 0] = np.nan
    mask = np.zeros(white.shape, np.uint8)
    mask[10:20, 30:50] = 1
    detections = pd.DataFrame({"x": [40.0, 5.0], "y": [15.0, 5.0], "listed": [False, True]})
    catalog = pd.DataFrame(
        {"x_pix_white": [40.0], "y_pix_white": [15.0], "affected_by_bright_mask": [True]}
    )
    fig = plot_bright_mask((white, None), (mask, None), detections, catalog)
    ax = fig.axes[0]
    (image,) = ax.images  # the mask is painted into the white stack, not a second image
    rgba = image.to_rgba(image.get_array())
    inside, outside = rgba[15, 40], rgba[15, 20]
    assert inside[0] > inside[1] + 0.3 and abs(outside[0] - outside[1]) < 1e-6  # red tint, grey
    assert rgba[0, 0, 3] == 0  # a NaN pixel stays transparent
    assert ax.get_xlabel() and ax.get_ylabel() and "8.33%" in ax.get_title()
    FigureCanvasAgg(fig).draw()
