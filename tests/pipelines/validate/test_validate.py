"""validate: statistics against known bias/scatter, truth matching, missing truth, pipeline run."""

from __future__ import annotations

import json
import logging
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from scipy.stats import norm

from phot7dt.datasets import OptionalDataset
from phot7dt.frames import Box
from phot7dt.pipelines.validate import create_pipeline
from phot7dt.pipelines.validate.metrics import flux_statistics, robust_sigma, wrap_angle_deg
from phot7dt.pipelines.validate.nodes import compute_validation_metrics, match_truth

BANDS = ("m400", "m500")
CROP = Box(20, 30, 420, 430)
BIAS, REL_SCATTER, ERR_SCALE = 0.02, 0.015, 1.5


def test_flux_statistics_exact_values():
    true = np.full(5, 100.0)
    fit = np.array([98.0, 99.0, 100.0, 101.0, 112.0])
    err = np.full(5, 2.0)
    stats = flux_statistics(fit, err, true)
    assert stats["n"] == 5
    assert stats["bias"] == pytest.approx(0.0)
    # |rel - median| = 0.02, 0.01, 0, 0.01, 0.12 -> MAD 0.01
    assert stats["scatter"] == pytest.approx(0.01 / norm.ppf(0.75))
    assert stats["pull_std"] == pytest.approx(np.std((fit - true) / err, ddof=1))
    assert stats["pull_robust_std"] == pytest.approx(0.5 / norm.ppf(0.75))


def test_statistics_ignore_bad_rows_and_small_samples():
    stats = flux_statistics([1.0, np.nan, 2.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0], min_n=2)
    assert stats["n"] == 1 and math.isnan(stats["bias"])
    assert math.isnan(robust_sigma(np.array([1.0])))
    assert wrap_angle_deg(np.array([100.0, -100.0, 45.0])) == pytest.approx([-80.0, 80.0, 45.0])


def _field(n_star: int = 3000, n_gal: int = 1000, seed: int = 3):
    """Truth and an output catalog with bias 2 %, relative scatter 1.5 %, errors 1.5x too small."""
    rng = np.random.default_rng(seed)
    n = n_star + n_gal
    ids = [f"s{i:05d}" for i in range(n)]
    truth = pd.DataFrame(
        {
            "ID": ids,
            "in_catalog": True,
            "role": "field",
            "TYPE": ["STAR"] * n_star + ["EXP"] * n_gal,
            "x_pix": rng.uniform(50, 350, n),
            "y_pix": rng.uniform(50, 350, n),
            "re_pix": np.r_[np.full(n_star, np.nan), np.full(n_gal, 3.0)],
            "ell": np.r_[np.full(n_star, np.nan), np.full(n_gal, 0.4)],
            "theta_deg": np.r_[np.full(n_star, np.nan), np.full(n_gal, 30.0)],
            "saturated_bands": "",
        }
    )
    out = pd.DataFrame(
        {
            "ID": ids,
            "excluded_any": False,
            "opt_converged": rng.random(n) < 0.9,
            "x_pix_white_fit": truth["x_pix"] - CROP.x0 + 0.1,
            "y_pix_white_fit": truth["y_pix"] - CROP.y0 - 0.2,
            "Re_fit": truth["re_pix"] * 1.1,
            "ELL_fit": truth["ell"] - 0.05,
            "THETA_fit": truth["theta_deg"] + 175.0,
        }
    )
    for band in BANDS:
        flux = rng.uniform(200.0, 5000.0, n)
        truth[f"FLUX_{band}"], truth[f"mag_{band}"] = flux, 25.0 - 2.5 * np.log10(flux)
        err = REL_SCATTER * flux / ERR_SCALE
        out[f"FLUX_{band}_fit"] = flux * (1 + BIAS) + rng.normal(0.0, REL_SCATTER, n) * flux
        out[f"FLUXERR_{band}_fit"] = err
    # One listed source the fit lost, one saturated in m400.
    truth.loc[n - 1, "ID"] = "lost"
    truth.loc[0, "saturated_bands"] = "m400"
    return truth, out


def _truth_bands():
    return pd.DataFrame({"band": list(BANDS), "zp_true": [26.7, 27.0], "zp_auto": [26.65, 27.04]})


def _zp_summary():
    return pd.DataFrame(
        {
            "band": list(BANDS),
            "wavelength_nm": [400.0, 500.0],
            "zp_median": [25.05 + 0.003, 24.96 - 0.010],
            "zp_ref": [25.0, 25.0],
            "zp_err": [0.002, 0.002],
            "n_kept": [50, 60],
        }
    )


def _metrics(truth, out, params=None):
    frames = SimpleNamespace(crop=CROP)
    sources, fluxes = match_truth(out, truth, frames, params or {})
    return (
        sources,
        fluxes,
        compute_validation_metrics(
            sources, fluxes, out, _zp_summary(), _truth_bands(), None, params or {}
        ),
    )


def test_metrics_recover_known_bias_scatter_and_pulls():
    truth, out = _field()
    _, fluxes, metrics = _metrics(truth, out)
    assert metrics["truth_available"] is True
    for band in BANDS:
        star = metrics["flux"][band]["star"]["all"]
        assert star["bias"] == pytest.approx(BIAS, abs=0.001)
        assert star["scatter"] == pytest.approx(REL_SCATTER, rel=0.05)
        assert star["pull_std"] == pytest.approx(ERR_SCALE, rel=0.05)
        assert star["pull_robust_std"] == pytest.approx(ERR_SCALE, rel=0.06)
        assert star["pull_median"] == pytest.approx(BIAS / (REL_SCATTER / ERR_SCALE), rel=0.05)
        assert sum(b["n"] for b in metrics["flux"][band]["star"]["snr_bins"]) <= star["n"]
    head = metrics["headline"]
    assert head["star_pull_std"] == pytest.approx(ERR_SCALE, rel=0.05)
    assert head["star_median_abs_bias_snr_gt"] == pytest.approx(BIAS, abs=0.001)
    # ZP errors: (zp_median - zp_ref) - (zp_true - zp_auto) = +3 and -10 mmag.
    errors = {z["band"]: z["zp_error"] for z in metrics["zero_points"]}
    assert errors == pytest.approx({"m400": 0.003, "m500": -0.010})
    assert head["max_abs_zp_error_mag"] == pytest.approx(0.010)
    assert head["fraction_converged"] == pytest.approx(out["opt_converged"].mean())
    # the saturated source is left out of m400 only
    assert ((fluxes["ID"] == "s00000") & (fluxes["band"] == "m400")).sum() == 0
    assert ((fluxes["ID"] == "s00000") & (fluxes["band"] == "m500")).sum() == 1


def test_positions_shapes_and_missing_sources():
    truth, out = _field(n_star=200, n_gal=100)
    sources, _, metrics = _metrics(truth, out, {"max_listed_missing": 5})
    assert metrics["matching"]["n_missing"] == 1 and metrics["matching"]["missing_ids"] == ["lost"]
    assert metrics["matching"]["truth_matches_field"] is True
    assert not sources.loc[sources["ID"] == "lost", "in_output"].item()
    star = metrics["positions_pix"]["star"]
    assert star["dx_median"] == pytest.approx(0.1) and star["dy_median"] == pytest.approx(-0.2)
    shapes = metrics["shapes"]
    assert shapes["re_ratio_minus_1"]["median"] == pytest.approx(0.1)
    assert shapes["ell_difference"]["median"] == pytest.approx(-0.05)
    assert shapes["theta_difference_deg"]["median"] == pytest.approx(-5.0)
    json.dumps(metrics, allow_nan=False)


def test_missing_truth_writes_a_no_truth_json(tmp_path, caplog):
    _, out = _field(n_star=20, n_gal=5)
    absent = OptionalDataset(
        dataset={"type": "pandas.CSVDataset", "filepath": str(tmp_path / "truth.csv")}
    )
    assert absent.load() is None
    metrics_file = OptionalDataset(
        dataset={"type": "json.JSONDataset", "filepath": str(tmp_path / "validation.json")}
    )
    catalog = DataCatalog(
        {
            "output_catalog": MemoryDataset(out),
            "validation_truth": absent,
            "validation_truth_bands": MemoryDataset(None),
            "frames": MemoryDataset(None),
            "zp_summary": MemoryDataset(None),
            "catalog_provenance": MemoryDataset(None),
            "params:validate": MemoryDataset({}),
            "validation_metrics": metrics_file,
        }
    )
    caplog.set_level(logging.INFO)
    SequentialRunner().run(create_pipeline(), catalog)
    saved = json.loads((tmp_path / "validation.json").read_text())
    assert saved["truth_available"] is False
    assert saved["catalog"]["n_fitted"] == 25
    assert "no truth.csv" in caplog.text


def test_pipeline_in_memory_with_truth():
    truth, out = _field(n_star=60, n_gal=30)
    catalog = DataCatalog(
        {
            "output_catalog": MemoryDataset(out),
            "validation_truth": MemoryDataset(truth),
            "validation_truth_bands": MemoryDataset(_truth_bands()),
            "frames": MemoryDataset(SimpleNamespace(crop=CROP), copy_mode="assign"),
            "zp_summary": MemoryDataset(_zp_summary()),
            "catalog_provenance": MemoryDataset(None),
            "params:validate": MemoryDataset({}),
        }
    )
    result = SequentialRunner().run(create_pipeline(), catalog)
    plots = {name: ds.load() for name, ds in result.items() if name.endswith("_plots")}
    assert set(plots["validation_flux_plots"]) == {"flux_ratio_m400.png", "flux_ratio_m500.png"}
    assert set(plots["validation_pull_plots"]) == {"pull_histograms.png"}
    assert set(plots["validation_recovery_plots"]) == {
        "position_recovery.png",
        "shape_recovery.png",
        "zp_recovery.png",
    }


def test_truth_without_required_columns_is_named():
    truth, out = _field(n_star=5, n_gal=1)
    with pytest.raises(ValueError, match=r"truth.csv: missing column\(s\) \['x_pix'\]"):
        match_truth(out, truth.drop(columns="x_pix"), SimpleNamespace(crop=CROP), {})


def test_truth_of_another_field_is_flagged(caplog):
    truth, out = _field(n_star=50, n_gal=10)
    out["x_pix_white_fit"] += 40.0
    _, _, metrics = _metrics(truth, out)
    assert metrics["matching"]["truth_matches_field"] is False
    assert "seems to describe another field" in caplog.text
