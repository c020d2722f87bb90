"""FITSImageDataset and FITSTableDataset: round trips, atomic saves, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from kedro.io import DatasetError

from phot7dt.datasets import FITSImageDataset, FITSTableDataset


def test_image_round_trip_keeps_pixels_dtype_and_header(tmp_path):
    path = tmp_path / "sub" / "white.fits"
    pixels = np.linspace(-1, 1, 20, dtype=np.float32).reshape(4, 5)
    header = fits.Header({"ZP_REF": 25.0, "BUNIT": "counts"})
    dataset = FITSImageDataset(filepath=str(path))
    assert not dataset.exists()
    dataset.save((pixels, header))
    assert dataset.exists()
    loaded, loaded_header = dataset.load()
    np.testing.assert_array_equal(loaded, pixels)
    assert loaded.dtype.kind == "f" and loaded.dtype.itemsize == 4
    assert loaded_header["ZP_REF"] == 25.0 and loaded_header["BUNIT"] == "counts"
    assert sorted(p.name for p in path.parent.iterdir()) == ["white.fits"]  # no temp file left


def test_image_memmap_load_is_read_only(tmp_path):
    path = tmp_path / "white.fits"
    FITSImageDataset(filepath=str(path)).save((np.ones((3, 3), np.float32), fits.Header()))
    pixels, _ = FITSImageDataset(filepath=str(path), load_args={"memmap": True}).load()
    assert not pixels.flags.writeable
    assert float(pixels.sum()) == 9.0


def test_header_only_file(tmp_path):
    path = tmp_path / "wcs.fits"
    header = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CROPX0": 20})
    FITSImageDataset(filepath=str(path)).save((None, header))
    pixels, loaded = FITSImageDataset(filepath=str(path)).load()
    assert pixels is None and loaded["CROPX0"] == 20


def test_image_save_rejects_non_2d(tmp_path):
    with pytest.raises(DatasetError, match="expected a 2-D array"):
        FITSImageDataset(filepath=str(tmp_path / "x.fits")).save((np.zeros(4), fits.Header()))


def test_failed_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "white.fits"
    dataset = FITSImageDataset(filepath=str(path))
    dataset.save((np.ones((2, 2), np.float32), fits.Header()))
    bad_header = fits.Header()
    bad_header.append(fits.Card.fromstring("BADKEY  = 'unterminated"))
    with pytest.raises(DatasetError, match="not FITS standard"):
        dataset.save((np.zeros((2, 2), np.float32), bad_header))
    np.testing.assert_array_equal(dataset.load()[0], np.ones((2, 2)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["white.fits"]


def test_image_missing_and_corrupt_files(tmp_path):
    with pytest.raises(DatasetError, match=r"FITS image .*none\.fits: file not found"):
        FITSImageDataset(filepath=str(tmp_path / "none.fits")).load()
    (tmp_path / "junk.fits").write_text("junk")
    with pytest.raises(DatasetError, match=r"FITS image .*junk\.fits: cannot read"):
        FITSImageDataset(filepath=str(tmp_path / "junk.fits")).load()


def test_table_round_trip(tmp_path):
    frame = pd.DataFrame(
        {
            "ID": pd.Series(["00019", "a_b", "3"], dtype="str"),
            "RA": [150.1, 150.2, np.nan],
            "excluded_any": [True, False, True],
            "row_index": np.arange(3, dtype=np.int64),
        }
    )
    dataset = FITSTableDataset(filepath=str(tmp_path / "cat.fits"))
    dataset.save(frame)
    loaded = dataset.load()
    assert loaded["ID"].tolist() == ["00019", "a_b", "3"]
    np.testing.assert_array_equal(loaded["RA"].to_numpy(), frame["RA"].to_numpy())
    assert loaded["excluded_any"].tolist() == [True, False, True]
    assert loaded["row_index"].tolist() == [0, 1, 2]
    with fits.open(tmp_path / "cat.fits") as hdul:
        assert hdul[1].name == "TABLE"


def test_table_missing_file(tmp_path):
    with pytest.raises(DatasetError, match=r"FITS table .*none\.fits: file not found"):
        FITSTableDataset(filepath=str(tmp_path / "none.fits")).load()
