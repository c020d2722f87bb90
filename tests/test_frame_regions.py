"""frames: region reads release the file pages they touched; whole-frame reads stay lazy."""

from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np
import pytest
from astropy.io import fits

from phot7dt.frames import Box, Frame, FrameSet, open_pixels, release_pages

SHAPE = (4096, 1024)  # 16 MB of float32: far more than the release margin


def _resident_kb(path: str) -> int:
    """Resident kB of ``path``'s mappings in this process (Linux /proc/self/smaps)."""
    total, current = 0, ""
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:
                current = fields[5] if len(fields) > 5 else ""
            elif fields[0] == "Rss:" and current == path:
                total += int(fields[1])
    return total


@pytest.fixture()
def frame_set(tmp_path) -> FrameSet:
    path = tmp_path / "band.fits"
    data = np.arange(SHAPE[0] * SHAPE[1], dtype=np.float32).reshape(SHAPE)
    fits.PrimaryHDU(data).writeto(path)
    frame = Frame("m400", str(path), 0, 25.0, 2.0, 1.5, math.inf, math.inf, 3.0, 1.0)
    return FrameSet((frame,), Box(12, 8, 1000, 4090), SHAPE, 25.0, "")


needs_proc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_region_read_is_a_read_only_copy_of_the_right_pixels(frame_set):
    box = Box(3, 5, 40, 30)
    pixels = frame_set.raw("m400", box)
    expected = np.arange(SHAPE[0] * SHAPE[1], dtype=np.float32).reshape(SHAPE)[13:38, 15:52]
    np.testing.assert_array_equal(pixels, expected)
    assert not pixels.flags.writeable
    assert not np.shares_memory(pixels, open_pixels(pixels_path(frame_set)))


def pixels_path(frame_set: FrameSet) -> str:
    return frame_set.frames[0].path


@needs_proc
def test_region_reads_leave_no_resident_file_pages(frame_set):
    path = pixels_path(frame_set)
    for y0 in range(0, 1000, 100):
        frame_set.raw("m400", Box(0, y0, 988, y0 + 100)).sum()
        frame_set.cutout(Box(0, y0, 500, y0 + 100))
    assert _resident_kb(path) <= 64


@needs_proc
def test_release_pages_drops_only_the_span_of_the_view(frame_set):
    whole = frame_set.raw("m400")
    float(whole[:100].sum()), float(whole[-100:].sum())
    before = _resident_kb(pixels_path(frame_set))
    release_pages(whole[:100])
    after = _resident_kb(pixels_path(frame_set))
    assert before >= 700 and 300 <= after <= before - 300  # the last rows stay mapped
    release_pages(whole)
    assert _resident_kb(pixels_path(frame_set)) <= 64  # header pages


@needs_proc
def test_weight_scan_and_weighted_cutouts_leave_no_resident_weight_pages(tmp_path, frame_set):
    from phot7dt.weights import summarize_weights

    path = str(tmp_path / "band.weight.fits")
    fits.PrimaryHDU(np.full(SHAPE, 2.0, np.float32)).writeto(path)
    summary = summarize_weights(path)  # the whole image, in row chunks
    assert summary.n_usable == SHAPE[0] * SHAPE[1] and summary.reference == 2.0
    assert _resident_kb(path) <= 64
    weighted = FrameSet(
        (dataclasses.replace(frame_set.frames[0], weight_path=path, weight_type="rms"),),
        frame_set.crop, SHAPE, 25.0, "",
    )
    for y0 in range(0, 1000, 100):
        _, invvar, _ = weighted.cutout(Box(0, y0, 500, y0 + 100))
        assert invvar.dtype == np.float32 and np.all(invvar[invvar > 0] == np.float32(0.25))
    assert _resident_kb(path) <= 64
