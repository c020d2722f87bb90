"""build_white_stack against the analytic coadd; flag_sources on known geometry."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from tiny_field import tiny_wcs, wcs_header

from phot7dt.frames import Box, Frame, FrameSet
from phot7dt.pipelines.ingest import nodes
from phot7dt.pipelines.ingest.nodes import build_white_stack, flag_sources
from phot7dt.pipelines.ingest.plots import zoom_box
from phot7dt.plotting import block_mean

SHAPE = (40, 30)


def _frame_set(
    tmp_path, bands: dict[str, tuple[np.ndarray, float, float, float]], margin=0
) -> FrameSet:
    """``bands``: name -> (raw pixels, skysig, scale, saturation level)."""
    frames = []
    for name, (pixels, skysig, scale, level) in bands.items():
        path = tmp_path / f"{name}.fits"
        fits.PrimaryHDU(pixels.astype(np.float32)).writeto(path, overwrite=True)
        frames.append(
            Frame(
                band=name,
                path=str(path),
                hdu=0,
                zp_auto=25.0,
                skysig=skysig,
                egain=1.0,
                saturate=level,
                saturation_level=level,
                fwhm_pix=3.0,
                scale=scale,
            )
        )
    ny, nx = SHAPE
    box = Box(margin, margin, nx - margin, ny - margin)
    header = wcs_header(tiny_wcs(SHAPE).slice(box.slices))
    return FrameSet(
        frames=tuple(frames), crop=box, full_shape=SHAPE, zp_ref=25.0, wcs_header=header.tostring()
    )


def test_white_stack_is_the_inverse_variance_mean(tmp_path, monkeypatch):
    monkeypatch.setattr(nodes, "WHITE_STACK_CHUNK_ROWS", 7)  # several chunks, a ragged last one
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 1, SHAPE), rng.normal(20, 2, SHAPE)
    a[3, 4] = np.nan
    a[5, 6] = b[5, 6] = np.nan
    frames = _frame_set(
        tmp_path, {"a": (a, 2.0, 1.0, math.inf), "b": (b, 1.0, 0.5, math.inf)}, margin=2
    )
    (white, header), (sigma, _) = build_white_stack(frames, {"white_stack_workers": 2})
    assert white.dtype == np.float32 and white.shape == (36, 26)
    wa, wb = 1 / 2.0**2, 1 / 0.5**2  # sky_sigma = skysig * scale
    expected = (wa * a + wb * 0.5 * b) / (wa + wb)
    np.testing.assert_allclose(white[3, 3], expected[5, 5], rtol=1e-6)
    np.testing.assert_allclose(sigma[3, 3], (wa + wb) ** -0.5, rtol=1e-6)
    assert white[1, 2] == pytest.approx(0.5 * b[3, 4], rel=1e-6)  # only band b is good there
    assert sigma[1, 2] == pytest.approx(wb**-0.5, rel=1e-6)
    assert np.isnan(white[3, 4]) and np.isnan(sigma[3, 4])  # no good band
    crop = (slice(2, 38), slice(2, 28))
    good = np.isfinite(expected[crop])
    np.testing.assert_allclose(white[good], expected[crop][good], rtol=1e-5)
    assert header["CROPX0"] == 2 and header["NBANDS"] == 2 and "CTYPE1" in header


def _catalog(frames: FrameSet, positions) -> pd.DataFrame:
    """Catalog at working-frame ``positions`` (NaN -> NaN coordinates)."""
    xy = np.array(positions, float)
    ra, dec = frames.wcs.all_pix2world(xy[:, 0], xy[:, 1], 0)
    return pd.DataFrame(
        {
            "ID": [str(i) for i in range(len(xy))],
            "RA": ra,
            "DEC": dec,
            "TYPE": "STAR",
            "row_index": np.arange(len(xy)),
        }
    )


def test_flags_crop_outside_invalid_and_saturation(tmp_path):
    sat = np.zeros(SHAPE)
    sat[20, 10] = 100.0  # one saturated pixel at original (x=10, y=20) -> working (7, 17)
    clean = np.zeros(SHAPE)
    frames = _frame_set(
        tmp_path, {"a": (sat, 1.0, 1.0, 50.0), "b": (clean, 1.0, 1.0, 50.0)}, margin=3
    )
    positions = [(12.0, 17.0), (7.4, 20.0), (7.0, 22.0), (-2.0, 5.0), (-10.0, 5.0), (0, 0)]
    catalog = _catalog(frames, positions)
    catalog.loc[5, ["RA", "DEC"]] = np.nan
    flagged = flag_sources(catalog, frames, {"mode": "exclude", "radius_pix": 3.0})
    assert flagged["x_pix_white"][0] == pytest.approx(12.0, abs=1e-6)
    assert flagged["excluded_saturation"].tolist() == [False, True, False, False, False, False]
    assert flagged["excluded_crop"].tolist() == [False, False, False, True, True, True]
    assert flagged["excluded_any"].tolist() == [False, True, False, True, True, True]
    assert flagged["excluded_reason"].tolist() == [
        "",
        "saturation",
        "",
        "crop",
        "outside_image",
        "invalid_coordinates",
    ]
    assert np.isnan(flagged["x_pix_white"][5])
    assert len(flagged) == len(catalog)


def test_saturation_any_or_all_bands_and_disabled(tmp_path):
    a = np.zeros(SHAPE)
    a[20, 10] = 100.0
    b = np.zeros(SHAPE)
    b[20, 12] = 100.0
    frames = _frame_set(tmp_path, {"a": (a, 1.0, 1.0, 50.0), "b": (b, 1.0, 1.0, 50.0)})
    catalog = _catalog(frames, [(10.0, 20.0), (12.0, 21.4), (20.0, 5.0)])
    exclude = {"mode": "exclude", "radius_pix": 2.0}
    any_band = flag_sources(catalog, frames, exclude)["excluded_saturation"].tolist()
    all_bands = flag_sources(catalog, frames, {**exclude, "require_all_bands": True})
    disabled = flag_sources(catalog, frames, {**exclude, "enabled": False})
    assert disabled["excluded_saturation"].tolist() == [False, False, False]
    assert disabled["n_sat_pix_a"].isna().all() and (disabled["saturated_bands"] == "").all()
    assert any_band == [True, True, False]
    assert all_bands["excluded_saturation"].tolist() == [True, False, False]


def test_band_without_saturate_never_saturates(tmp_path):
    a = np.full(SHAPE, 1e6)
    frames = _frame_set(tmp_path, {"a": (a, 1.0, 1.0, math.inf)})
    flagged = flag_sources(_catalog(frames, [(10.0, 10.0)]), frames, {})
    assert not flagged["excluded_saturation"].any()


def test_zoom_box_inside_or_central_quarter():
    assert zoom_box((10, 50, 20, 40), (100, 200)) == Box(10, 20, 50, 40)
    assert zoom_box((4000, 5000, 4000, 5000), (100, 200)) == Box(75, 37, 125, 62)


def test_block_mean_ignores_nan_and_drops_partial_blocks():
    image = np.arange(30, dtype=np.float32).reshape(5, 6)
    image[0, 0] = np.nan
    means = block_mean(image, 2)
    assert means.shape == (2, 3)
    assert means[0, 0] == pytest.approx((1 + 6 + 7) / 3)
    assert means[1, 2] == pytest.approx((16 + 17 + 22 + 23) / 4)


def test_fit_wings_keeps_saturated_sources_and_counts_their_core_and_bleed(tmp_path):
    a = np.zeros(SHAPE)
    a[19:22, 9:12] = 100.0  # saturated 3x3 core centred on (x=10, y=20)
    a[22:30, 10] = 100.0  # its bleed trail down the column: 8 more pixels
    a[5, 25] = 100.0  # an unrelated saturated pixel
    clean = np.zeros(SHAPE)
    frames = _frame_set(tmp_path, {"a": (a, 1.0, 1.0, 50.0), "b": (clean, 1.0, 1.0, 50.0)})
    # on the core; 2 px beside the bleed trail (inside the pad ring); 3 px from the core (outside)
    catalog = _catalog(frames, [(10.0, 20.0), (12.0, 28.0), (14.0, 20.0)])
    flagged = flag_sources(catalog, frames, {"saturation_core_pad_pix": 2})
    assert not flagged["excluded_saturation"].any() and not flagged["excluded_any"].any()
    assert flagged["saturated_bands"].tolist() == ["a", "a", ""]
    assert flagged["n_sat_pix_a"].tolist() == [17, 17, 0]
    assert flagged["n_sat_pix_b"].tolist() == [0, 0, 0]
    excluded = flag_sources(catalog, frames, {"mode": "exclude", "radius_pix": 5.0})
    assert excluded["excluded_saturation"].tolist() == [True, True, True]
    assert excluded["excluded_reason"].tolist() == ["saturation"] * 3
    assert excluded["saturated_bands"].tolist() == ["a", "a", ""]
