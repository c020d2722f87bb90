"""ImageListDataset with weight images: the second column, its checks, and the 3-tuple save."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from kedro.io import DatasetError

from phot7dt.datasets import ImageListDataset


def _load(listing):
    return ImageListDataset(filepath=str(listing)).load()


def _with_weight(field, weight=None, name="m412.weight.fits", line="m412.fits {name}"):
    """Write ``weight`` (unless None) and list it as m412's weight image."""
    if weight is not None:
        fits.PrimaryHDU(weight).writeto(field.folder / name, overwrite=True)
    text = field.image_list.read_text().replace("m412.fits", line.format(name=name))
    field.image_list.write_text(text)
    return field.image_list


def _error(listing) -> str:
    with pytest.raises(DatasetError) as info:
        _load(listing)
    message = str(info.value)
    assert "\n" not in message and str(listing) in message  # one line naming the list
    return message


def test_second_column_is_the_weight_image_resolved_against_the_list(tiny_field, monkeypatch):
    weight = np.full(tiny_field.shape, 2.0, np.float32)
    listing = _with_weight(tiny_field, weight, line="m412.fits\t  {name}  ")
    monkeypatch.chdir(tiny_field.folder.parent)
    images = _load(listing)
    assert [img.weight_path for img in images] == [
        None, str(tiny_field.folder / "m412.weight.fits"), None
    ]


def test_one_token_lines_load_exactly_as_before(tiny_field):
    images = _load(tiny_field.image_list)
    assert all(img.weight_path is None for img in images)
    np.testing.assert_array_equal(images[0].data, fits.getdata(tiny_field.fits_paths["m400"]))


def test_quoted_paths_may_hold_spaces(tiny_field):
    weight = np.ones(tiny_field.shape, np.float32)
    listing = _with_weight(tiny_field, weight, name="m412 weight.fits", line='m412.fits "{name}"')
    assert _load(listing)[1].weight_path == str(tiny_field.folder / "m412 weight.fits")


def test_missing_weight_image(tiny_field):
    message = _error(_with_weight(tiny_field, name="nothere.fits"))
    assert "weight image " + str(tiny_field.folder / "nothere.fits") in message
    assert message.endswith("file not found") and "m412.fits" in message


def test_unreadable_weight_image(tiny_field):
    (tiny_field.folder / "m412.weight.fits").write_text("not FITS\n" * 50)
    message = _error(_with_weight(tiny_field))
    assert "m412.weight.fits" in message and "not a readable FITS file" in message


def test_weight_image_that_is_not_2d(tiny_field):
    message = _error(_with_weight(tiny_field, np.ones((2, *tiny_field.shape), np.float32)))
    assert "m412.weight.fits" in message and "no 2-D image (NAXIS = 3, expected 2)" in message


def test_weight_image_of_another_shape(tiny_field):
    message = _error(_with_weight(tiny_field, np.ones((10, 12), np.float32)))
    assert "m412.weight.fits" in message
    assert "shape (10, 12) (NAXIS2, NAXIS1) differs from the image's (64, 80)" in message


def test_negative_weights(tiny_field):
    weight = np.ones(tiny_field.shape, np.float32)
    weight[3, 4:6] = -1.0
    message = _error(_with_weight(tiny_field, weight))
    assert "m412.weight.fits" in message and "2 negative value(s) (minimum -1)" in message


@pytest.mark.parametrize("fill", [0.0, np.nan, np.inf])
def test_weights_without_data(tiny_field, fill):
    weight = np.full(tiny_field.shape, fill, np.float32)
    weight[0, 0] = 0.0
    message = _error(_with_weight(tiny_field, weight))
    assert "m412.weight.fits" in message and "no positive finite value" in message


def test_more_than_two_paths_on_a_line(tiny_field):
    message = _error(_with_weight(tiny_field, line="m412.fits {name} extra.fits"))
    assert "line 4: 3 paths" in message and "extra.fits" in message
    assert "expected an image path, optionally followed by its weight image path" in message


def test_save_with_weights_round_trips(tmp_path):
    listing = tmp_path / "sample" / "image_list.txt"
    header = fits.Header({"FILTER": "m400"})
    pixels = np.arange(12, dtype=np.float32).reshape(3, 4)
    weight = np.linspace(0.5, 2.0, 12).reshape(3, 4)  # float64: written as float32
    dataset = ImageListDataset(filepath=str(listing))
    dataset.save({
        "m400": (pixels, header, weight),
        "m412": (pixels * 2, header),
        "m425": (pixels * 3, header, None),
    })
    entries = [line for line in listing.read_text().splitlines() if not line.startswith("#")]
    assert entries == ["m400.fits m400.weight.fits", "m412.fits", "m425.fits"]
    images = dataset.load()
    weight_paths = [str(listing.parent / "m400.weight.fits"), None, None]
    assert [img.weight_path for img in images] == weight_paths
    written = fits.getdata(listing.parent / "m400.weight.fits")
    assert written.dtype == np.dtype(">f4")
    np.testing.assert_array_equal(written, weight.astype(np.float32))
    np.testing.assert_array_equal(images[2].data, pixels * 3)
    assert not list(listing.parent.glob(".*tmp"))


def test_save_rejects_bad_items_before_writing_them(tmp_path):
    listing = tmp_path / "image_list.txt"
    header = fits.Header({"FILTER": "m400"})
    dataset = ImageListDataset(filepath=str(listing))
    with pytest.raises(DatasetError, match=r"band 'm400': weight shape \(2, 2\) differs"):
        dataset.save({"m400": (np.zeros((3, 4), np.float32), header, np.ones((2, 2)))})
    with pytest.raises(DatasetError, match=r"band 'm400': expected \(pixels, header\) or"):
        dataset.save({"m400": (np.zeros((3, 4), np.float32), header, None, None)})
    assert not list(tmp_path.iterdir())
