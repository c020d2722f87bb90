"""Saturation flags of many sources against a brute-force reference (whole-frame distances)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from scipy import ndimage
from tiny_field import tiny_wcs, wcs_header

from phot7dt import source_flags
from phot7dt.config.ingest import SourceSaturationCutParams
from phot7dt.frames import Box, Frame, FrameSet

SHAPE = (150, 170)
LEVEL = 50.0


def _saturated_field(seed: int) -> np.ndarray:
    """Sky with saturated disks (some touching the edges) and bleed trails."""
    rng = np.random.default_rng(seed)
    image = rng.normal(0.0, 1.0, SHAPE)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    for _ in range(12):
        x0, y0, r = rng.uniform(-3, SHAPE[1] + 3), rng.uniform(-3, SHAPE[0] + 3), rng.uniform(0, 4)
        image[(xx - x0) ** 2 + (yy - y0) ** 2 <= r * r] = 100.0
        col, top = int(np.clip(x0, 0, SHAPE[1] - 1)), int(np.clip(y0, 0, SHAPE[0] - 1))
        image[top : top + int(rng.integers(0, 90)), col] = 100.0
    return image


def _frames(tmp_path, images: dict[str, np.ndarray]) -> FrameSet:
    frames = []
    for band, pixels in images.items():
        path = tmp_path / f"{band}.fits"
        fits.PrimaryHDU(pixels.astype(np.float32)).writeto(path)
        frames.append(Frame(band=band, path=str(path), hdu=0, zp_auto=25.0, skysig=1.0,
                            egain=1.0, saturate=LEVEL, saturation_level=LEVEL, fwhm_pix=3.0,
                            scale=1.0))
    box = Box(0, 0, SHAPE[1], SHAPE[0])
    return FrameSet(tuple(frames), box, SHAPE, 25.0, wcs_header(tiny_wcs(SHAPE)).tostring())


def _reference(raw: np.ndarray, x, y, radius: float, pad: int):
    """Per source: a saturated pixel within ``radius``; pixels of the regions reaching the
    ``pad`` disk, 8-connected inside the 129 x 129 window around the source."""
    saturated = raw >= LEVEL
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    near, counts = [], []
    for xc, yc in zip(np.floor(x + 0.5).astype(int), np.floor(y + 0.5).astype(int), strict=True):
        d2 = (xx - xc) ** 2 + (yy - yc) ** 2
        near.append(bool((saturated & (d2 <= radius**2)).any()))
        half = max(source_flags.COUNT_HALF_PIX, pad)
        window = np.s_[max(yc - half, 0) : yc + half + 1, max(xc - half, 0) : xc + half + 1]
        labels, _ = ndimage.label(saturated[window], structure=np.ones((3, 3), bool))
        touched = np.unique(labels[d2[window] <= pad**2])
        touched = touched[touched > 0]
        counts.append(int(np.isin(labels, touched).sum()) if touched.size else 0)
    return np.array(near), np.array(counts)


@pytest.mark.parametrize(("radius", "pad"), [(3.0, 2), (5.5, 0), (1.0, 4)])
def test_band_saturation_equals_the_brute_force_reference(tmp_path, monkeypatch, radius, pad):
    monkeypatch.setattr(source_flags, "SCAN_ROWS", 16)  # several strips, a ragged last one
    image = _saturated_field(seed=int(radius * 10) + pad)
    frames = _frames(tmp_path, {"a": image})
    rng = np.random.default_rng(pad)
    x = np.concatenate([rng.uniform(-0.49, SHAPE[1] - 0.51, 400), [0.0, SHAPE[1] - 1.0]])
    y = np.concatenate([rng.uniform(-0.49, SHAPE[0] - 0.51, 400), [SHAPE[0] - 1.0, 0.0]])
    near, counts = source_flags.band_saturation(frames, "a", x, y, radius, pad)
    ref_near, ref_counts = _reference(image.astype(np.float32), x, y, radius, pad)
    assert ref_near.any() and not ref_near.all() and (ref_counts > 0).any()
    np.testing.assert_array_equal(near, ref_near)
    np.testing.assert_array_equal(counts, ref_counts)


def test_band_without_saturated_pixels_flags_nothing(tmp_path):
    frames = _frames(tmp_path, {"a": np.zeros(SHAPE)})
    near, counts = source_flags.band_saturation(frames, "a", np.array([5.0]), np.array([5.0]),
                                                3.0, 2)
    assert not near.any() and not counts.any()


def test_flag_catalog_columns_from_per_band_results(tmp_path):
    frames = _frames(tmp_path, {"a": _saturated_field(1), "b": _saturated_field(2)})
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, SHAPE[1] - 1, 300), rng.uniform(0, SHAPE[0] - 1, 300)
    ra, dec = frames.wcs.all_pix2world(x, y, 0)
    catalog = pd.DataFrame({"ID": np.arange(300).astype(str), "RA": ra, "DEC": dec})
    params = SourceSaturationCutParams(mode="exclude", radius_pix=4.0, saturation_core_pad_pix=2)
    flagged = source_flags.flag_catalog(catalog, frames, params)
    per_band = {b: _reference(np.asarray(fits.getdata(tmp_path / f"{b}.fits")),
                              flagged["x_pix_white"].to_numpy(), flagged["y_pix_white"].to_numpy(),
                              4.0, 2) for b in ("a", "b")}
    np.testing.assert_array_equal(flagged["excluded_saturation"],
                                  per_band["a"][0] | per_band["b"][0])
    for band, (_, counts) in per_band.items():
        np.testing.assert_array_equal(flagged[f"n_sat_pix_{band}"].to_numpy(int), counts)
    expected = [",".join(b for b in ("a", "b") if per_band[b][1][i] > 0) for i in range(300)]
    assert flagged["saturated_bands"].tolist() == expected
