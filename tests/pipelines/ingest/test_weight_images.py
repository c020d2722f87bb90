"""Weight images: per-pixel noise of the cutouts and the white stack against the known noise map."""

from __future__ import annotations

import numpy as np
import pytest
from weighted_field import BANDS, NO_DATA, SPLIT_X, ZP_REF, write_weighted_field

from phot7dt.config import ParameterError
from phot7dt.datasets import FrameSetDataset, ImageListDataset
from phot7dt.frames import Box, FrameSet
from phot7dt.pipelines.ingest.nodes import build_white_stack, prepare_frames

WEIGHT_TYPES = ["relative", "inverse_variance", "variance", "rms"]
MARGIN = 4
BOX = Box(10, 0, 90, 112)  # working frame; crosses the noise step at x = SPLIT_X - MARGIN


def _frames(image_list, weight_type: str) -> FrameSet:
    raw = ImageListDataset(filepath=str(image_list)).load()
    scaling = {"zp_ref": ZP_REF, "weight_type": weight_type}
    return prepare_frames(raw, scaling, {"margin": MARGIN}, {})


def _in_box(array: np.ndarray, box: Box = BOX) -> np.ndarray:
    return array[box.shifted(MARGIN, MARGIN).slices]


@pytest.mark.parametrize("weight_type", WEIGHT_TYPES)
def test_cutout_invvar_is_one_over_scaled_sigma_squared(tmp_path, weight_type):
    field = write_weighted_field(tmp_path / weight_type, weight_type)
    frames = _frames(field.image_list, weight_type)
    images, invvar, _ = frames.cutout(BOX)
    assert invvar.dtype == np.float32
    for i, band in enumerate(BANDS):
        expected = _in_box(field.true_invvar(band))
        np.testing.assert_allclose(invvar[i], expected, rtol=2e-6, atol=0)
    no_data = [(y - MARGIN - BOX.y0, x - MARGIN - BOX.x0) for y, x in NO_DATA]
    assert all(invvar[:, y, x].max() == 0.0 for y, x in no_data)
    assert (invvar > 0).sum() == invvar.size - len(BANDS) * len(no_data)
    # A weight image changes only the noise: the pixels equal those of the plain list.
    plain_images, plain_invvar, _ = _frames(field.plain_list, weight_type).cutout(BOX)
    np.testing.assert_array_equal(images, plain_images)
    assert plain_invvar[0].min() == plain_invvar[0].max()  # constant SKYSIG without weights


@pytest.mark.parametrize("weight_type", WEIGHT_TYPES)
def test_pulls_are_unit_normal_on_both_sides_of_the_depth_step(tmp_path, weight_type):
    field = write_weighted_field(tmp_path / weight_type, weight_type, seed=11)
    box = Box(0, 0, 92, 112)
    split = SPLIT_X - MARGIN
    images, invvar, _ = _frames(field.image_list, weight_type).cutout(box)
    pulls = images * np.sqrt(invvar)
    for side in (slice(0, split), slice(split, None)):
        good = invvar[:, :, side] > 0
        assert np.std(pulls[:, :, side][good]) == pytest.approx(1.0, abs=0.03)
    # The header's constant SKYSIG underestimates the deep-noise side by a factor 2.
    plain_images, plain_invvar, _ = _frames(field.plain_list, weight_type).cutout(box)
    plain_pulls = (plain_images * np.sqrt(plain_invvar))[:, :, split:]
    assert np.std(plain_pulls) == pytest.approx(2.0, abs=0.06)


def test_relative_weights_use_the_median_weight_as_the_skysig_depth(tmp_path):
    field = write_weighted_field(tmp_path, "relative")
    frames = _frames(field.image_list, "relative")
    for band, (skysig, _) in BANDS.items():
        frame = frames.frame(band)
        w = field.weights[band]
        w_ref = float(np.median(w[np.isfinite(w) & (w > 0)]))
        assert frame.weight_type == "relative" and frame.weight_ref == pytest.approx(w_ref)
        assert w_ref == pytest.approx(5.0)  # the left (60 %) half, where the noise is SKYSIG
        weights = frames.weights(band, BOX)
        with np.errstate(divide="ignore", invalid="ignore"):  # no-data pixels
            sigma = skysig * np.sqrt(frame.weight_ref / weights.astype(float))  # ADU
            expected = np.where(weights > 0, 1.0 / (frame.scale * sigma) ** 2, 0.0)
        _, invvar, _ = frames.cutout(BOX, bands=[band])
        np.testing.assert_allclose(invvar[0], expected, rtol=2e-6)


@pytest.mark.parametrize("weight_type", ["inverse_variance", "variance", "rms"])
def test_absolute_weight_types_have_no_reference(tmp_path, weight_type):
    field = write_weighted_field(tmp_path, weight_type)
    frame = _frames(field.image_list, weight_type).frames[0]
    assert frame.weight_type == weight_type and frame.weight_ref is None
    assert frame.weight_path == str(field.folder / "m400.weight.fits")


def test_plain_list_frames_have_no_weights(tmp_path):
    field = write_weighted_field(tmp_path, "rms")
    frames = _frames(field.plain_list, "rms")
    assert all(f.weight_path is None and f.weight_type is None for f in frames.frames)
    assert frames.weights("m400", BOX) is None


def test_white_stack_uses_per_pixel_inverse_variance(tmp_path):
    field = write_weighted_field(tmp_path, "variance")
    frames = _frames(field.image_list, "variance")
    (white, _), (sigma, _) = build_white_stack(frames, {"white_stack_workers": 1})
    whole = Box(0, 0, *frames.shape[::-1])
    weighted = np.zeros(frames.shape)
    total = np.zeros(frames.shape)
    for band in BANDS:
        w = _in_box(field.true_invvar(band), whole)
        weighted += w * frames.frame(band).scale * frames.raw(band, whole)
        total += w
    assert np.isnan(white[[y - MARGIN for y, _ in NO_DATA], [x - MARGIN for _, x in NO_DATA]]).all()
    with np.errstate(divide="ignore", invalid="ignore"):  # NaN where no band has data
        np.testing.assert_allclose(white, weighted / total, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(sigma, np.where(total > 0, total**-0.5, np.nan), rtol=1e-6)
    deep, shallow = sigma[:, : SPLIT_X - MARGIN], sigma[:, SPLIT_X - MARGIN :]
    assert np.nanmedian(shallow) == pytest.approx(2 * np.nanmedian(deep), rel=1e-5)


def test_manifest_round_trip_keeps_the_weights(tmp_path):
    field = write_weighted_field(tmp_path, "relative")
    frames = _frames(field.image_list, "relative")
    dataset = FrameSetDataset(filepath=str(tmp_path / "frames.json"))
    dataset.save(frames)
    loaded = dataset.load()
    assert loaded.frames == frames.frames
    np.testing.assert_array_equal(loaded.cutout(BOX)[1], frames.cutout(BOX)[1])
    (field.folder / "m412.weight.fits").unlink()
    with pytest.raises(Exception, match=r"band 'm412' refers to .*m412\.weight\.fits, which no"):
        dataset.load()


def test_unknown_weight_type_is_rejected_naming_the_key(tmp_path):
    field = write_weighted_field(tmp_path, "relative")
    with pytest.raises(ParameterError, match=r"image_scaling\.weight_type: .*'relative'.*'ivar'"):
        _frames(field.image_list, "ivar")
