"""simulate_survey: overlapping tiles of one sky, each with its own pointing, noise and PSFs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from phot7dt.config import ParameterError
from phot7dt.pipelines.simulate.survey import simulate_survey

SIMULATE = {
    "preset": "small",
    "seed": 3,
    "width": 200,
    "height": 200,
    "bands": ["m475", "m625"],
    "psf_star_grid": 2,
    "n_field_stars": 4,
    "n_galaxies": 6,
    "n_blends": 1,
    "n_saturated": 0,
    "n_unlisted": 1,
    "n_gaia_stars": 3,
}


def test_two_tiles_share_the_sources_of_their_overlap(tmp_path):
    survey = {"n_tiles": 2, "columns": 2, "overlap_pix": 70, "tile_params": "crop.margin=20"}
    manifest = simulate_survey(SIMULATE, survey, str(tmp_path))
    assert list(manifest.columns) == [
        "tile",
        "input_catalog",
        "image_list",
        "gaiaxp_synphot",
        "params",
    ]
    assert list(manifest["tile"]) == ["t00", "t01"]
    assert set(manifest["params"]) == {"crop.margin=20"}
    truth = pd.read_csv(
        tmp_path / "truth.csv", dtype={"ID": str, "tiles": str}, keep_default_na=False
    )
    catalogs, bands = {}, {}
    for tile in ("t00", "t01"):
        catalogs[tile] = pd.read_csv(tmp_path / tile / "catalog.csv", dtype={"ID": str})
        bands[tile] = pd.read_csv(tmp_path / tile / "truth_bands.csv")
        header = fits.getheader(tmp_path / tile / "m475.fits")
        x, y = WCS(header).all_world2pix(catalogs[tile]["RA"], catalogs[tile]["DEC"], 0)
        # Listed sources lie on the tile (catalog positions scatter by 0.3 px).
        assert (x > -2).all() and (x < 201).all() and (y > -2).all() and (y < 201).all()
    shared = set(catalogs["t00"]["ID"]) & set(catalogs["t01"]["ID"])
    assert len(shared) >= 3
    assert shared == set(truth.loc[truth["tiles"] == "t00;t01", "ID"])
    listed = truth[truth["in_catalog"]]
    assert (listed["tiles"] != "").all()  # every listed sky source is in some tile
    # Same sky position for a shared source in both tiles' catalogs (0.3 px scatter each).
    a = catalogs["t00"].set_index("ID").loc[sorted(shared)]
    b = catalogs["t01"].set_index("ID").loc[sorted(shared)]
    sep = np.hypot((a["RA"] - b["RA"]) * np.cos(np.radians(a["DEC"])), a["DEC"] - b["DEC"])
    assert (sep * 3600 < 1.5).all()
    # Own calibration and PSF per tile; pointings 200 - 70 = 130 px apart (plus jitter).
    assert not np.allclose(bands["t00"]["zp_auto"], bands["t01"]["zp_auto"])
    assert not np.allclose(bands["t00"]["fwhm_pix"], bands["t01"]["fwhm_pix"])
    h0 = fits.getheader(tmp_path / "t00" / "m475.fits")
    h1 = fits.getheader(tmp_path / "t01" / "m475.fits")
    step_pix = (h1["CRVAL1"] - h0["CRVAL1"]) * np.cos(np.radians(h0["CRVAL2"])) * 3600 / 0.505
    assert abs(abs(step_pix) - 130) < 10


def test_tiles_must_fill_the_grid():
    with pytest.raises((ParameterError, ValueError), match="multiple of columns"):
        simulate_survey(SIMULATE, {"n_tiles": 3, "columns": 2}, "/nonexistent")
