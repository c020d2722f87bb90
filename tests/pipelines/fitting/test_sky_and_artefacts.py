"""Residual sky and artefacts: a simulated field with a background offset, cosmic rays and a hot
column is measured with and without the ``sky_and_artefacts`` cleaning, against the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fitting_field import build_upstream, run_stages

from phot7dt.pipelines.fitting.residual_sky import clip_residuals, fit_sky

OFF = {"local_sky": "none", "detect_artefacts": False, "clip_residuals": False}
DEFECTS = {"sky_offset_sigma": 0.6, "cosmic_rays": 40, "hot_columns": 2, "hot_column_sigma": 3.0}


def test_fit_sky_recovers_a_constant_and_a_plane():
    rng = np.random.default_rng(0)
    ny, nx = 120, 160
    y, x = np.mgrid[0:ny, 0:nx]
    plane = 0.7 + 0.01 * (x - (nx - 1) / 2) - 0.004 * (y - (ny - 1) / 2)
    values = (plane + rng.normal(0, 2.0, (ny, nx)))[None].astype(np.float32)
    values[0, 50:60, 50:60] += 500.0  # a source the clipping must ignore
    invvar = np.full(values.shape, 0.25, np.float32)
    usable = np.ones((ny, nx), bool)
    const = fit_sky(values, invvar, usable, "constant", 3.0)
    assert const.coef[0, 0] == pytest.approx(0.7, abs=4 * const.error[0])
    assert const.error[0] == pytest.approx(1.2533 * 2.0 / np.sqrt(ny * nx), rel=0.05)  # a median
    tilt = fit_sky(values, invvar, usable, "plane", 3.0)
    np.testing.assert_allclose(tilt.coef[0], [0.7, 0.01, -0.004], atol=4 * tilt.error[0])


def test_clip_residuals_finds_a_cosmic_ray_and_spares_a_mismodelled_star_core():
    yy, xx = np.mgrid[0:41, 0:41]
    star = 5000.0 * np.exp(-((xx - 20) ** 2 + (yy - 20) ** 2) / (2 * 1.5**2))
    model = star[None].astype(np.float32)
    data = model * 1.03  # a 3 % PSF-model error on a bright core
    data[0, 5, 30] += 60.0  # a cosmic ray, 30 sigma
    invvar = np.full(model.shape, 0.25, np.float32)
    bad = clip_residuals(data, invvar, model, np.array([2.0]), 5.0, 0.1, 1)
    assert bad[0, 5, 30] and bad[0, 4:7, 29:32].all()
    assert not bad[0, 10:31, 10:31].any()


@pytest.fixture(scope="module")
def defect_field(tmp_path_factory):
    return build_upstream(tmp_path_factory.mktemp("defect_field"), {"defects": DEFECTS})


def _pulls(field, run) -> pd.DataFrame:
    """Flux pulls of reliably fitted sources per band, with the true S/N and the class."""
    merged = run["merged_catalog"]
    merged = merged[merged["fit_is_reliable"].astype(bool)].set_index("ID")
    truth = field.truth.set_index("ID")
    rows = []
    for band in field.frames.bands:
        fit = merged[[f"FLUX_{band}_fit", f"FLUXERR_{band}_fit"]].dropna()
        fit = fit[fit.index.isin(truth.index)]
        true = truth.loc[fit.index, f"FLUX_{band}"]
        rows.append(pd.DataFrame({
            "pull": (fit[f"FLUX_{band}_fit"] - true) / fit[f"FLUXERR_{band}_fit"],
            "snr": true / fit[f"FLUXERR_{band}_fit"],
            "galaxy": truth.loc[fit.index, "TYPE"] != "STAR"}))
    out = pd.concat(rows)
    return out[out["snr"] > 5]


def _medians(pulls: pd.DataFrame) -> tuple[float, float]:
    galaxy = pulls["galaxy"]
    return pulls.loc[~galaxy, "pull"].median(), pulls.loc[galaxy, "pull"].median()


def test_cleaning_removes_the_sky_and_artefact_bias(defect_field, baseline, upstream, tmp_path):
    """The same sources with and without defects: cleaned, their pulls match the clean field's."""
    reference = _pulls(upstream, baseline)
    raw = _pulls(defect_field, run_stages(defect_field, tmp_path / "raw", sky_and_artefacts=OFF))
    clean = _pulls(defect_field, run_stages(defect_field, tmp_path / "clean"))
    ref_star, ref_gal = _medians(reference)
    raw_star, raw_gal = _medians(raw)
    clean_star, clean_gal = _medians(clean)
    # the +0.3-0.6 SKYSIG background pushes fluxes up, galaxies most; artefacts widen the pulls
    assert raw_gal - ref_gal > 1.0 and raw_star - ref_star > 0.5
    assert raw["pull"].std() > 2.0
    assert abs(clean_star - ref_star) < 0.2
    assert abs(clean_gal - ref_gal) < 0.3
    assert clean["pull"].std() < 1.3 * reference["pull"].std()


def test_recorded_background_matches_the_truth(defect_field, tmp_path):
    run = run_stages(defect_field, tmp_path / "clean")
    bands = pd.read_csv(defect_field.raw / "truth_bands.csv").set_index("band")
    frames = {f.band: f for f in defect_field.frames.frames}
    levels = {}
    for record in run["fit_run_report"]["patches"]:
        for band, value in record["sky"]["level"].items():
            levels.setdefault(band, []).append(value)
    assert set(levels) == set(frames)
    for band, values in levels.items():
        true = bands.loc[band, "sky_offset"] * frames[band].scale
        assert np.median(values) == pytest.approx(true, abs=0.05 * frames[band].sky_sigma)
