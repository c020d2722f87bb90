"""ImageListDataset: tract7dt's list format, memory-mapped pixels, clear errors, atomic save."""

from __future__ import annotations

import mmap

import numpy as np
import pytest
from astropy.io import fits
from kedro.io import DatasetError

from phot7dt.datasets import ImageListDataset, RawImage


def test_load_returns_memory_mapped_images_in_list_order(tiny_field):
    images = ImageListDataset(filepath=str(tiny_field.image_list)).load()
    assert [img.header["FILTER"] for img in images] == list(tiny_field.bands)
    first = images[0]
    assert isinstance(first, RawImage)
    assert first.path == str(tiny_field.fits_paths["m400"].absolute())
    assert first.shape == tiny_field.shape
    assert not first.data.flags.writeable
    np.testing.assert_array_equal(first.data, fits.getdata(tiny_field.fits_paths["m400"]))
    base = first.data
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, mmap.mmap)  # pixels stay on disk


def test_comments_blank_lines_and_absolute_paths(tiny_field, tmp_path):
    listing = tmp_path / "other" / "list.txt"
    listing.parent.mkdir()
    absolute = tiny_field.fits_paths["m412"]
    listing.write_text(f"  # comment\n\n{absolute}\n\n# {absolute}\n")
    images = ImageListDataset(filepath=str(listing)).load()
    assert [img.path for img in images] == [str(absolute)]


def test_relative_paths_resolve_against_the_list_folder(tiny_field, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # not the list's folder
    images = ImageListDataset(filepath=str(tiny_field.image_list)).load()
    assert images[-1].path == str(tiny_field.folder / "m425.fits")


def test_missing_list_names_the_file(tmp_path):
    with pytest.raises(DatasetError, match=r"image list .*nolist\.txt: file not found"):
        ImageListDataset(filepath=str(tmp_path / "nolist.txt")).load()


def test_empty_list_is_an_error(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("# only a comment\n\n")
    with pytest.raises(DatasetError, match="names no FITS file"):
        ImageListDataset(filepath=str(listing)).load()


def test_missing_fits_names_list_and_file(tiny_field):
    tiny_field.fits_paths["m412"].unlink()
    with pytest.raises(
        DatasetError, match=r"image_list\.txt: FITS file .*m412\.fits: file not found"
    ):
        ImageListDataset(filepath=str(tiny_field.image_list)).load()


def test_not_a_fits_file(tiny_field):
    tiny_field.fits_paths["m400"].write_text("this is not FITS\n" * 100)
    with pytest.raises(DatasetError, match=r"m400\.fits: not a readable FITS file"):
        ImageListDataset(filepath=str(tiny_field.image_list)).load()


def test_truncated_fits(tiny_field):
    path = tiny_field.fits_paths["m425"]
    path.write_bytes(path.read_bytes()[: 2880 + 1000])
    with pytest.raises(DatasetError, match=r"m425\.fits: .*(truncated|not a readable)"):
        ImageListDataset(filepath=str(tiny_field.image_list)).load()


def test_fits_without_a_2d_image(tiny_field):
    fits.PrimaryHDU(data=np.zeros((2, 3, 4), np.float32)).writeto(
        tiny_field.fits_paths["m400"], overwrite=True
    )
    with pytest.raises(DatasetError, match=r"m400\.fits: primary HDU holds no 2-D image"):
        ImageListDataset(filepath=str(tiny_field.image_list)).load()


def test_save_writes_bands_then_list_and_round_trips(tmp_path):
    listing = tmp_path / "sample" / "image_list.txt"
    header = fits.Header({"FILTER": "m400", "ZP_AUTO": 24.1})
    pixels = np.arange(12, dtype=np.float32).reshape(3, 4)
    dataset = ImageListDataset(filepath=str(listing))
    dataset.save({"m400": (pixels, header), "m412": (pixels * 2, header)})
    assert dataset.exists()
    assert [line for line in listing.read_text().splitlines() if not line.startswith("#")] == [
        "m400.fits",
        "m412.fits",
    ]
    images = dataset.load()
    np.testing.assert_array_equal(images[1].data, pixels * 2)
    assert images[0].header["ZP_AUTO"] == 24.1
    assert not list(listing.parent.glob(".*tmp"))


def test_rewritten_file_is_mapped_afresh(tmp_path):
    listing = tmp_path / "image_list.txt"
    dataset = ImageListDataset(filepath=str(listing))
    header = fits.Header({"FILTER": "m400"})
    dataset.save({"m400": (np.zeros((3, 4), np.float32), header)})
    assert dataset.load()[0].data.sum() == 0
    dataset.save({"m400": (np.ones((3, 4), np.float32), header)})
    assert dataset.load()[0].data.sum() == 12


def test_scaled_integer_pixels_name_the_file_and_the_keys(tiny_field):
    data = np.arange(64 * 48, dtype=np.uint16).reshape(64, 48)  # int16 with BZERO = 32768
    path = tiny_field.fits_paths["m412"]
    fits.PrimaryHDU(data=data, header=fits.getheader(path)).writeto(path, overwrite=True)
    with pytest.raises(
        DatasetError,
        match=r"m412\.fits: scaled integer pixels \(BITPIX = 16, .*BZERO.*expected float pixels",
    ):
        ImageListDataset(filepath=str(tiny_field.image_list)).load()
