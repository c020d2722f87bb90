"""prepare_frames and check_frames: header rules, calibration values, consistency checks."""

from __future__ import annotations

import logging
import math

import pandas as pd
import pytest
from astropy.wcs import WCS
from tiny_field import tiny_wcs

from phot7dt.config.ingest import WCSTolerance
from phot7dt.datasets import ImageListDataset
from phot7dt.pipelines.ingest.headers import wcs_differences
from phot7dt.pipelines.ingest.nodes import check_frames, prepare_frames

CROP = {"margin": 5}


def _images(field):
    return ImageListDataset(filepath=str(field.image_list)).load()


def _prepare(field, crop=CROP, **params):
    return prepare_frames(
        _images(field), params.get("image_scaling", {}), crop, params.get("saturation", {})
    )


def test_calibration_values_from_headers(tiny_field):
    frames = _prepare(
        tiny_field, image_scaling={"zp_ref": 23.0}, saturation={"saturation_divisor": 2.0}
    )
    m412 = frames.frame("m412")
    assert m412.scale == pytest.approx(10 ** (-0.4 * (25.1 - 23.0)))
    assert m412.sky_sigma == pytest.approx(2.5 * m412.scale)
    assert m412.saturation_level == 15000.0 and m412.saturate == 30000.0
    assert m412.fwhm_pix == pytest.approx(3.1)
    assert frames.zp_ref == 23.0 and frames.full_shape == (64, 80)
    assert frames.crop.x0 == 5 and frames.shape == (54, 70)


def test_working_wcs_is_the_cropped_wcs(tiny_field):
    frames = _prepare(tiny_field)
    ra, dec = tiny_field.wcs.all_pix2world([[30.0, 20.0]], 0)[0]
    x, y = frames.wcs.all_world2pix([[ra, dec]], 0)[0]
    assert (x, y) == pytest.approx((25.0, 15.0), abs=1e-6)


def test_fwhm_from_seeing_and_missing(make_field):
    field = make_field(
        header_overrides={"m400": {"PEEING": None, "SEEING": 2.02}, "m412": {"PEEING": None}}
    )
    frames = _prepare(field)
    assert frames.frame("m400").fwhm_pix == pytest.approx(2.02 / 0.505, rel=1e-6)
    assert math.isnan(frames.frame("m412").fwhm_pix)


def test_missing_saturate_warns_and_uses_inf(make_field, caplog):
    field = make_field(header_overrides={"m425": {"SATURATE": None}})
    with caplog.at_level(logging.WARNING):
        frames = _prepare(field)
    assert frames.frame("m425").saturation_level == math.inf
    assert "SATURATE missing in" in caplog.text and "m425.fits" in caplog.text


def test_crop_disabled_uses_the_whole_image(tiny_field):
    frames = _prepare(tiny_field, crop={"enabled": False, "margin": 500})
    assert frames.shape == (64, 80) and frames.crop.x0 == 0


def test_margin_leaving_nothing_is_an_error(tiny_field):
    with pytest.raises(ValueError, match=r"crop\.margin = 32 leaves no pixel of the 80x64 images"):
        _prepare(tiny_field, crop={"margin": 32})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"FILTER": None}, r"m412\.fits: missing header key FILTER"),
        ({"FILTER": "  "}, r"m412\.fits: empty FILTER"),
        ({"ZP_AUTO": None}, r"m412\.fits: missing ZP_AUTO"),
        (
            {"ZP_AUTO": "bright"},
            r"m412\.fits: bad ZP_AUTO: expected a finite number \(mag\), got 'bright'",
        ),
        (
            {"SKYSIG": None},
            r"m412\.fits: bad/missing SKYSIG: expected a positive finite number \(ADU\), "
            r"got absent",
        ),
        ({"SKYSIG": 0.0}, r"m412\.fits: bad/missing SKYSIG: .* got 0\.0"),
        ({"SKYSIG": -1.0}, r"m412\.fits: bad/missing SKYSIG"),
        ({"SKYSIG": "n/a"}, r"m412\.fits: bad/missing SKYSIG: .* got 'n/a'"),
        (
            {"EGAIN": None},
            r"m412\.fits: bad/missing EGAIN: expected a positive finite number \(e-/ADU\)",
        ),
        ({"EGAIN": 0}, r"m412\.fits: bad/missing EGAIN"),
        ({"EGAIN": "x"}, r"m412\.fits: bad/missing EGAIN"),
        ({"CTYPE1": None, "CTYPE2": None}, r"m412\.fits: no celestial WCS"),
    ],
)
def test_header_errors_name_file_and_key(make_field, override, message):
    field = make_field(header_overrides={"m412": override})
    with pytest.raises(ValueError, match=message):
        _prepare(field)


def test_duplicate_filter_is_an_error(make_field):
    field = make_field(header_overrides={"m425": {"FILTER": "m400"}})
    with pytest.raises(
        ValueError, match=r"FILTER must differ between images; repeated: \{'m400': \["
    ):
        _prepare(field)


def _check(field, checks=None, catalog_columns=("FLUX_m400", "FLUX_m412", "FLUX_m425")):
    images = _images(field)
    frames = prepare_frames(images, {}, CROP, {})
    catalog = pd.DataFrame(columns=["ID", "RA", "DEC", *catalog_columns])
    return check_frames(frames, images, catalog, checks or {})


def test_consistent_field_passes_unchanged(tiny_field):
    assert _check(tiny_field).bands == ["m400", "m412", "m425"]


def test_catalog_without_flux_columns_skips_the_band_check(tiny_field):
    assert _check(tiny_field, catalog_columns=("ELL", "FLUX_m400_ERR")).bands == list(
        tiny_field.bands
    )


def test_band_mismatch_lists_both_sides(tiny_field):
    with pytest.raises(
        ValueError,
        match=r"Band mismatch .*catalog-only bands \['m999'\].*image-only bands \['m425'\]",
    ):
        _check(tiny_field, catalog_columns=("FLUX_m400", "FLUX_m412", "FLUX_m999", "FLUX_m999_ERR"))


def test_shape_mismatch(make_field, tmp_path):
    field = make_field()
    other = make_field(name="other", shape=(60, 80))
    field.fits_paths["m425"].write_bytes(other.fits_paths["m425"].read_bytes())
    with pytest.raises(
        ValueError,
        match=r"Image shape mismatch: .*m425\.fits is \(60, 80\).*the first image .*m400\.fits",
    ):
        _check(field)


@pytest.mark.parametrize(
    ("override", "what"),
    [
        ({"CRVAL1": 150.0 + 1e-5}, "CRVAL differs by 1e-05"),
        ({"CRPIX2": 33.0}, "CRPIX differs by 0.5"),
        ({"CD1_2": 1e-6}, "CD differs by 1e-06"),
        ({"CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN"}, "CTYPE"),
    ],
)
def test_wcs_mismatch(make_field, override, what):
    field = make_field(header_overrides={"m412": override})
    with pytest.raises(
        ValueError, match=rf"WCS mismatch with reference .*m400\.fits: .*m412\.fits: .*{what}"
    ):
        _check(field)


def test_wcs_mismatch_within_tolerance_or_not_required(make_field, caplog):
    field = make_field(header_overrides={"m412": {"CRVAL1": 150.0 + 1e-5}})
    assert _check(field, {"wcs_tolerance": {"crval": 1e-4}})
    with caplog.at_level(logging.WARNING):
        assert _check(field, {"require_wcs_alignment": False})
    assert "WCS mismatch" in caplog.text


def test_pc_cdelt_headers_compare_cdelt():
    reference = WCS(naxis=2)
    reference.wcs.ctype = list(tiny_wcs((64, 80)).wcs.ctype)
    reference.wcs.crval = [150.0, 2.0]
    reference.wcs.pc = [[-1.0, 0.0], [0.0, 1.0]]
    reference.wcs.cdelt = [0.505 / 3600, 0.505 / 3600]
    other = reference.deepcopy()
    other.wcs.cdelt = [0.505 / 3600 * 1.01, 0.505 / 3600]
    assert wcs_differences(reference, reference, WCSTolerance()) == []
    assert wcs_differences(reference, other, WCSTolerance())[0].startswith(
        "CDELT differs by 1.4e-06"
    )
