"""FrameSetDataset: JSON manifest round trip; pixels stay in the input FITS files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from kedro.io import DatasetError

from phot7dt.datasets import FrameSetDataset
from phot7dt.frames import Box, Frame, FrameSet


def _frame_set(tiny_field) -> FrameSet:
    frames = tuple(
        Frame(
            band=band,
            path=str(tiny_field.fits_paths[band]),
            hdu=0,
            zp_auto=25.0 + i,
            skysig=2.0,
            egain=1.5,
            saturate=math.inf if i == 0 else 30000.0,
            saturation_level=math.inf if i == 0 else 30000.0 / 1.3,
            fwhm_pix=math.nan if i == 1 else 3.0,
            scale=10 ** (-0.4 * i),
        )
        for i, band in enumerate(tiny_field.bands)
    )
    header = tiny_field.wcs.slice((slice(5, 59), slice(5, 75))).to_header().tostring()
    return FrameSet(
        frames=frames,
        crop=Box(5, 5, 75, 59),
        full_shape=tiny_field.shape,
        zp_ref=25.0,
        wcs_header=header,
    )


def test_round_trip_restores_every_field(tiny_field, tmp_path):
    original = _frame_set(tiny_field)
    dataset = FrameSetDataset(filepath=str(tmp_path / "02_intermediate" / "frames.json"))
    dataset.save(original)
    manifest = json.loads((tmp_path / "02_intermediate" / "frames.json").read_text())  # strict JSON
    assert manifest["frames"][0]["saturate"] == "inf"
    loaded = dataset.load()
    assert loaded.crop == original.crop and loaded.full_shape == original.full_shape
    assert loaded.wcs_header == original.wcs_header and loaded.bands == original.bands
    assert loaded.frames[0].saturation_level == math.inf
    assert math.isnan(loaded.frames[1].fwhm_pix)
    assert loaded.frames[2] == original.frames[2]
    box = Box(0, 0, 70, 54)
    np.testing.assert_array_equal(loaded.raw("m412", box), original.raw("m412", box))


def test_missing_fits_is_an_error_naming_band_and_file(tiny_field, tmp_path):
    dataset = FrameSetDataset(filepath=str(tmp_path / "frames.json"))
    dataset.save(_frame_set(tiny_field))
    tiny_field.fits_paths["m425"].unlink()
    with pytest.raises(
        DatasetError, match=r"band 'm425' refers to .*m425\.fits, which no longer exists"
    ):
        dataset.load()


def test_missing_and_malformed_manifest(tmp_path):
    with pytest.raises(DatasetError, match="file not found"):
        FrameSetDataset(filepath=str(tmp_path / "none.json")).load()
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(DatasetError, match="expected 'phot7dt.frameset'"):
        FrameSetDataset(filepath=str(tmp_path / "bad.json")).load()


def test_frames_without_weight_images_write_no_weight_keys(tiny_field, tmp_path):
    dataset = FrameSetDataset(filepath=str(tmp_path / "frames.json"))
    dataset.save(_frame_set(tiny_field))
    manifest = json.loads((tmp_path / "frames.json").read_text())
    assert not any(key.startswith("weight") for entry in manifest["frames"] for key in entry)
    assert all(frame.weight_path is None for frame in dataset.load().frames)
