"""Tile-compressed inputs (``.fits.fz``): read region by region, same results as plain FITS."""

from __future__ import annotations

import pickle
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from phot7dt.datasets import ImageListDataset
from phot7dt.frames import Box
from phot7dt.pipelines.ingest.nodes import (
    build_white_stack,
    check_frames,
    flag_sources,
    load_input_catalog,
    prepare_frames,
)
from phot7dt.pipelines.ingest.plots import sampled_white
from phot7dt.pixel_maps import CompressedImage, open_pixels, read_region, window
from phot7dt.weights import summarize_weights

#: Lossless: no quantisation of the float pixels, GZIP of their bytes.
LOSSLESS = {"compression_type": "GZIP_2", "quantize_level": 0.0}


def write_fz(path: Path, data: np.ndarray, header: fits.Header | None = None, **options) -> Path:
    """fpack's layout: an empty primary HDU, then the compressed image with the header keys."""
    hdu = fits.CompImageHDU(data, header, **(options or LOSSLESS))
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
    return path


def compressed_copy(field, folder: Path, drop: dict[str, str] | None = None) -> Path:
    """The field's bands as ``.fits.fz`` plus their image list; ``drop``: band -> header key."""
    folder.mkdir()
    names = []
    for band, path in field.fits_paths.items():
        data, header = fits.getdata(path, header=True)
        if drop and band in drop:
            del header[drop[band]]
        write_fz(folder / f"{band}.fits.fz", data, header)
        names.append(f"{band}.fits.fz")
    listing = folder / "image_list.txt"
    listing.write_text("\n".join(names) + "\n")
    return listing


def _frames(listing: Path, catalog: pd.DataFrame):
    images = ImageListDataset(filepath=str(listing)).load()
    prepared = prepare_frames(images, {}, {"margin": 4}, {})
    return check_frames(prepared, images, catalog, {})


@pytest.fixture
def both(tiny_field, tmp_path):
    raw = pd.read_csv(tiny_field.catalog_csv, dtype=str, keep_default_na=False)
    catalog = load_input_catalog(raw, str(tiny_field.catalog_csv))
    plain = _frames(tiny_field.image_list, catalog)
    packed = _frames(compressed_copy(tiny_field, tmp_path / "fz"), catalog)
    return plain, packed, catalog


def test_headers_come_from_the_compressed_image_hdu(tiny_field, tmp_path):
    images = ImageListDataset(filepath=str(compressed_copy(tiny_field, tmp_path / "fz"))).load()
    assert [image.hdu for image in images] == [1, 1, 1]
    assert [image.header["FILTER"] for image in images] == list(tiny_field.bands)
    assert all(isinstance(image.data, CompressedImage) for image in images)
    assert images[0].shape == tiny_field.shape


def test_frames_validate_like_plain_fits(both):
    plain, packed, _ = both
    assert packed.crop == plain.crop and packed.full_shape == plain.full_shape
    assert packed.wcs_header == plain.wcs_header
    for a, b in zip(plain.frames, packed.frames, strict=True):
        assert (b.band, b.hdu, b.zp_auto, b.skysig, b.egain, b.saturation_level, b.scale) == (
            a.band, 1, a.zp_auto, a.skysig, a.egain, a.saturation_level, a.scale
        )


def test_white_stack_patch_and_flags_are_identical_for_lossless_compression(both):
    plain, packed, catalog = both
    for workers in (1, 2):
        (white_a, _), (sigma_a, _) = build_white_stack(plain, {"white_stack_workers": workers})
        (white_b, _), (sigma_b, _) = build_white_stack(packed, {"white_stack_workers": workers})
        np.testing.assert_array_equal(white_b, white_a)
        np.testing.assert_array_equal(sigma_b, sigma_a)
    box = Box(10, 7, 51, 40)
    cut_a, cut_b = plain.cutout(box, saturation_pad_pix=2), packed.cutout(box, saturation_pad_pix=2)
    for a, b in zip(cut_a, cut_b, strict=True):  # images, inverse variance, saturation
        np.testing.assert_array_equal(b, a)
    sat = {"mode": "exclude", "radius_pix": 5.0}
    pd.testing.assert_frame_equal(flag_sources(catalog, packed, sat),
                                  flag_sources(catalog, plain, sat))
    np.testing.assert_array_equal(sampled_white(packed, 3), sampled_white(plain, 3))


def test_missing_filter_in_the_compressed_hdu_names_the_file(tiny_field, tmp_path):
    listing = compressed_copy(tiny_field, tmp_path / "fz", drop={"m412": "FILTER"})
    images = ImageListDataset(filepath=str(listing)).load()
    with pytest.raises(ValueError) as err:
        prepare_frames(images, {}, {"margin": 4}, {})
    message = str(err.value)
    assert "\n" not in message
    path = tmp_path / "fz" / "m412.fits.fz"
    assert message == f"FITS file {path}: missing header key FILTER (the band name)"


def test_a_file_without_any_image_names_the_hdu(tmp_path):
    path = tmp_path / "table.fits.fz"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(name="a", format="E", array=np.zeros(3))])]).writeto(path)
    (tmp_path / "list.txt").write_text("table.fits.fz\n")
    with pytest.raises(Exception, match=r"primary HDU holds no 2-D image \(NAXIS = 0, expected 2\) "
                       r"and no tile-compressed image HDU follows"):
        ImageListDataset(filepath=str(tmp_path / "list.txt")).load()


@pytest.fixture
def image(tmp_path) -> np.ndarray:
    data = np.random.default_rng(3).normal(100.0, 5.0, (700, 90)).astype(np.float32)
    data[5, 7] = np.nan
    write_fz(tmp_path / "img.fits.fz", data)
    return data


@pytest.mark.parametrize(
    "key",
    [(slice(None), slice(None)), (slice(3, 650, 7), slice(1, 89, 3)), (5, slice(None)),
     (slice(10, 20), 4), (slice(600, 900),), (Ellipsis, slice(2, 5)), (-1, -2), (slice(9, 3),)],
)
def test_compressed_indexing_matches_numpy(image, tmp_path, key):
    pixels = open_pixels(str(tmp_path / "img.fits.fz"))
    np.testing.assert_array_equal(pixels[key], image[key])


def test_read_region_with_steps_matches_numpy(image, tmp_path):
    pixels = open_pixels(str(tmp_path / "img.fits.fz"))
    rows, cols = slice(1, 700, 300), slice(None, None, 8)  # steps wider than a row block
    np.testing.assert_array_equal(read_region(pixels, rows, cols), image[rows, cols])


def test_windows_read_lazily_and_survive_pickling(image, tmp_path):
    pixels = open_pixels(str(tmp_path / "img.fits.fz"))
    part = window(pixels, slice(100, 600), slice(20, 80))
    assert part.shape == (500, 60)
    np.testing.assert_array_equal(part[::5, 3:9], image[100:600:5, 23:29])
    again = pickle.loads(pickle.dumps(part))
    np.testing.assert_array_equal(read_region(again, slice(0, 300)), image[100:400, 20:80])
    np.testing.assert_array_equal(np.asarray(part), image[100:600, 20:80])
    assert not read_region(part, slice(0, 2)).flags.writeable


def _traced_peak(read) -> tuple[np.ndarray, int]:
    tracemalloc.start()
    try:
        result = read()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_region_read_decompresses_only_its_rows_a_block_at_a_time(tmp_path):
    data = np.random.default_rng(4).normal(0.0, 1.0, (2048, 2048)).astype(np.float32)
    pixels = open_pixels(str(write_fz(tmp_path / "big.fits.fz", data)))  # 16.8 MB decompressed
    region, peak = _traced_peak(lambda: read_region(pixels, slice(1000, 1100), slice(500, 600)))
    np.testing.assert_array_equal(region, data[1000:1100, 500:600])
    assert peak < 2e6  # 100 full-width rows: 0.8 MB
    column, peak = _traced_peak(lambda: read_region(pixels, slice(None), slice(500, 600)))
    np.testing.assert_array_equal(column, data[:, 500:600])
    assert peak < 8e6  # 256-row blocks of 2 MB, not the 16.8 MB of every row at once


def test_compressed_weight_image_scans_like_the_plain_one(tmp_path):
    weights = np.random.default_rng(5).uniform(0.5, 2.0, (300, 40)).astype(np.float32)
    weights[:3] = 0.0
    fits.PrimaryHDU(weights).writeto(tmp_path / "w.fits")
    packed = summarize_weights(str(write_fz(tmp_path / "w.fits.fz", weights)))
    assert packed == summarize_weights(str(tmp_path / "w.fits"))
    assert packed.n_usable == 297 * 40


@pytest.mark.parametrize(("tiles", "warned"), [(None, True), ((16, 256), False)])
def test_wide_images_in_full_row_tiles_get_one_warning(tmp_path, caplog, tiles, warned):
    data = np.zeros((32, 2048), np.float32)
    options = {**LOSSLESS, **({"tile_shape": tiles} if tiles else {})}
    for band in ("m400", "m412"):
        write_fz(tmp_path / f"{band}.fits.fz", data, fits.Header({"FILTER": band}), **options)
    (tmp_path / "list.txt").write_text("m400.fits.fz\nm412.fits.fz\n")
    ImageListDataset(filepath=str(tmp_path / "list.txt")).load()
    messages = [r.getMessage() for r in caplog.records if "full-row tiles" in r.getMessage()]
    assert messages == ([f"image list {tmp_path / 'list.txt'}: 2 image(s) tile-compressed in "
                         f"full-row tiles ({tmp_path / 'm400.fits.fz'}: tiles 1x2048): every "
                         "region read decompresses whole 2048 px rows, so patches and ePSF cells "
                         "cost their height x 2048 px of decompression per band; for a tile you "
                         "will fit, decompress the files once (funpack) or recompress them in "
                         "square tiles (fpack -t 256,256)"] if warned else [])
