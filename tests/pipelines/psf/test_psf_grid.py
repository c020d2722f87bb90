"""PSFGrid / PSFChoice values: geometry, immutability, pickling, dataset round trip."""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest
from astropy.io import fits
from kedro.io import DatasetError

from phot7dt.datasets.psf_grid_dataset import PSFGridDataset
from phot7dt.frames import Box
from phot7dt.pipelines.psf.stamp_models import moffat_stamp
from phot7dt.psf_grid import PSFChoice, PSFGrid, cell_boxes, cell_tag


def make_grid() -> PSFGrid:
    choices, qa = {}, {}
    for band, fwhm in [("m400", 3.0), ("m887", 4.0)]:
        for r in range(3):
            for c in range(3):
                model = "epsf" if (r + c) % 2 == 0 else "moffat"
                stamp = moffat_stamp(fwhm + 0.1 * r, 3.5, 7.0)
                choices[(band, r, c)] = PSFChoice(model, stamp, fwhm + 0.1 * r, 3.5, 12 - c,
                                                  f"reason {band} {r} {c}")
                qa[(band, r, c)] = {"nstars_used": 12 - c, "ee_2fwhm": 0.97, "status": "ok",
                                    "epsf_fwhm_pix": None}
    return PSFGrid((100, 130), 3, ("m400", "m887"), choices, qa)


def test_cell_boxes_cover_the_frame_and_last_cell_takes_the_remainder():
    boxes = cell_boxes((100, 130), 3)
    assert boxes[(0, 0)] == Box(0, 0, 43, 33)
    assert boxes[(2, 2)] == Box(86, 66, 130, 100)
    area = sum(b.shape[0] * b.shape[1] for b in boxes.values())
    assert area == 100 * 130


def test_cell_of_follows_nearest_pixel_and_clips():
    grid = make_grid()
    assert grid.cell_of(42.4, 32.4) == (0, 0)
    assert grid.cell_of(42.6, 32.6) == (1, 1)
    assert grid.cell_of(129.0, 99.0) == (2, 2)
    assert grid.cell_of(-5.0, 500.0) == (2, 0)
    for (r, c), box in grid.boxes.items():
        assert grid.cell_of(box.x0, box.y1 - 1) == (r, c)
    assert cell_tag(3, 12) == "r03_c12"


def test_choice_is_read_only_and_validated():
    grid = make_grid()
    choice = grid.choice("m400", 0, 0)
    with pytest.raises(ValueError):
        choice.stamp[0, 0] = 1.0
    with pytest.raises(ValueError, match="model must be one of"):
        PSFChoice("gauss", None, 3.0, None, 0, "")
    with pytest.raises(ValueError, match="odd size"):
        PSFChoice("epsf", np.ones((4, 4)), 3.0, None, 5, "")
    with pytest.raises(KeyError, match="m999"):
        grid.choice("m999", 0, 0)
    with pytest.raises(ValueError, match="lacks a PSF choice"):
        PSFGrid((10, 10), 2, ("m400",), {})


def test_pickle_and_copies_round_trip():
    grid = make_grid()
    for clone in (pickle.loads(pickle.dumps(grid)), copy.deepcopy(grid)):
        assert clone == grid
        choice = clone.choice("m887", 2, 1)
        assert choice == grid.choice("m887", 2, 1)
        assert hash(choice) == hash(grid.choice("m887", 2, 1))
        assert not choice.stamp.flags.writeable


def test_dataset_round_trip(tmp_path):
    grid = make_grid()
    dataset = PSFGridDataset(filepath=str(tmp_path / "epsf"))
    assert not dataset.exists()
    dataset.save(grid)
    assert dataset.exists()
    assert dataset.load() == grid
    header = fits.getheader(tmp_path / "epsf" / "m887" / "r01_c02.fits")
    assert header["BAND"] == "m887" and header["CELL"] == "r01_c02"
    assert header["NSTARS"] == 10 and header["OVERSAMP"] == 1
    assert header["FWHM"] == pytest.approx(4.1)
    meta = json.loads((tmp_path / "epsf" / "meta.json").read_text())
    assert meta["cells"]["r02_c02"] == [86, 66, 130, 100]
    assert len(meta["psf"]) == 18


def test_dataset_save_replaces_the_previous_grid_atomically(tmp_path):
    dataset = PSFGridDataset(filepath=str(tmp_path / "epsf"))
    dataset.save(make_grid())
    (tmp_path / "epsf" / "stale.txt").write_text("old")
    dataset.save(make_grid())
    assert not (tmp_path / "epsf" / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epsf"]


def test_dataset_errors_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match="meta.json"):
        PSFGridDataset(filepath=str(tmp_path / "missing")).load()
    with pytest.raises(DatasetError, match="expected a PSFGrid"):
        PSFGridDataset(filepath=str(tmp_path / "x")).save({"not": "a grid"})
