"""report: datasets, residual stamps against a noiseless scene, HTML content, pipeline slice."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, DatasetError, MemoryDataset
from kedro.runner import SequentialRunner
from matplotlib.figure import Figure
from PIL import Image

from phot7dt.datasets import OptionalDataset, PNGDataset
from phot7dt.datasets.patch_models import ModelImage
from phot7dt.pipelines.report import create_pipeline
from phot7dt.pipelines.report.html import shrink_png
from phot7dt.pipelines.report.nodes import REPORT_FIGURES, select_figures, summarise_run
from phot7dt.pipelines.report.plots import residual_montage_figure
from phot7dt.pipelines.report.residuals import (
    ResidualStamp,
    choose_sources,
    fitted_sources,
    residual_stamp,
)
from phot7dt.scene import PixelizedPSF, catalog_to_soft, render_model


def _png(width: int = 40, height: int = 30) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_png_dataset_round_trip_and_errors(tmp_path):
    dataset = PNGDataset(filepath=str(tmp_path / "f" / "plot.png"), save_args={"dpi": 50})
    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [0, 1])
    dataset.save(fig)
    data = dataset.load()
    assert data.startswith(b"\x89PNG") and Image.open(io.BytesIO(data)).size == (100, 50)
    with pytest.raises(DatasetError, match="expected a matplotlib Figure or PNG bytes"):
        dataset.save(b"not a png")
    with pytest.raises(DatasetError, match="PNG file not found"):
        PNGDataset(filepath=str(tmp_path / "missing.png")).load()


def test_optional_dataset_loads_none_when_absent(tmp_path):
    dataset = OptionalDataset(
        dataset={"type": "json.JSONDataset", "filepath": str(tmp_path / "a.json")}
    )
    assert dataset.load() is None and not dataset.exists()
    dataset.save({"x": 1})
    assert dataset.load() == {"x": 1}


def test_shrink_png_keeps_aspect():
    small = Image.open(io.BytesIO(shrink_png(_png(400, 200), 100)))
    assert small.size == (100, 50)
    assert shrink_png(_png(40, 30), 100) == _png(40, 30)


def _gaussian_stamp(size: int = 25, sigma: float = 1.6) -> np.ndarray:
    y, x = np.mgrid[:size, :size] - size // 2
    stamp = np.exp(-0.5 * (x**2 + y**2) / sigma**2)
    return stamp / stamp.sum()


def _scene():
    """A noiseless 120x100 frame with a star and an exponential galaxy, and its catalog."""
    stamp = _gaussian_stamp()
    catalog = pd.DataFrame(
        {
            "ID": ["star1", "gal1"],
            "stype_fit": ["star", "exp"],
            "x_pix_white_fit": [40.3, 70.0],
            "y_pix_white_fit": [50.6, 62.2],
            "Re_fit": [np.nan, 3.0],
            "ELL_fit": [np.nan, 0.3],
            "THETA_fit": [np.nan, 40.0],
            "sersic_n_fit": [np.nan, np.nan],
            "FLUX_m500_fit": [5000.0, 3000.0],
            "FLUXERR_m500_fit": [50.0, 60.0],
            "excluded_any": [False, False],
            "patch_tag": ["p0", "p0"],
        }
    )
    logre, e1, e2 = catalog_to_soft(3.0, 0.3, 40.0)
    params = np.array(
        [[40.3, 50.6, 0, 0, 0, 4.0], [70.0, 62.2, float(logre), float(e1), float(e2), 4.0]]
    )
    image = render_model(
        (100, 120), [PixelizedPSF(stamp)], ["STAR", "EXP"], params, np.array([[5000.0], [3000.0]])
    )[0]

    def cutout(box, bands):
        return image[None, box.y0 : box.y1, box.x0 : box.x1], np.ones((1, *box.shape)), None

    frames = SimpleNamespace(shape=image.shape, cutout=cutout)
    # the fit's model of patch p0, whose region is the frame less a 5 px border
    region = image[5:-5, 5:-5].astype(np.float32)
    models = SimpleNamespace(
        get=lambda tag, band: ModelImage(region, 5, 5) if (tag, band) == ("p0", "m500") else None
    )
    return catalog, frames, models


def test_residual_stamp_shows_the_fitted_model_inside_the_patch_region():
    catalog, frames, models = _scene()
    fitted = fitted_sources(catalog, "m500")
    chosen = choose_sources(fitted, n_stars=1, n_galaxies=1, min_snr=10)
    assert list(chosen["ID"]) == ["star1", "gal1"]
    for _, row in chosen.iterrows():
        stamp = residual_stamp(row, frames, models, "m500", 31)
        assert stamp.data.shape == (31, 31)
        assert np.abs(stamp.data - stamp.model).max() < 1e-6 * stamp.data.max()
    fig = residual_montage_figure([stamp], "m500")
    assert len(fig.axes) == 4
    elsewhere = chosen.iloc[0].copy()
    elsewhere["patch_tag"] = "p9"
    assert residual_stamp(elsewhere, frames, models, "m500", 31) is None


def _summary_inputs():
    catalog = pd.DataFrame(
        {
            "ID": ["a", "b", "c"],
            "excluded_any": [False, False, True],
            "excluded_reason": ["", "", "saturation"],
            "x_pix_white_fit": [1.0, 2.0, np.nan],
            "opt_converged": [True, False, pd.NA],
            "FLUX_m500_fit": [100.0, 40.0, np.nan],
            "FLUXERR_m500_fit": [4.0, 4.0, np.nan],
        }
    )
    zp = pd.DataFrame(
        {"band": ["m500"], "zp_median": [24.9612], "zp_err": [0.0021], "n_kept": [17]}
    )
    fit_report = {"n_patches": 4, "n_fitted": 4, "n_failed": 0, "seconds": 3.0}
    provenance = {"catalog_utc": "2026-12-07T18:00:00Z", "phot7dt_version": "0.1.0",
                  "parameters_sha256": "ab" * 32, "inputs": []}
    validation = {
        "truth_available": True,
        "catalog_utc": "2026-12-07T18:00:00Z",
        "headline": {
            "star_pull_std": 1.0432,
            "star_pull_robust_std": 0.9876,
            "star_median_abs_bias_snr_gt": 0.0031,
            "headline_snr_min": 20.0,
            "max_abs_zp_error_mag": 0.0123,
            "fraction_converged": 0.5,
        },
    }
    return catalog, zp, fit_report, validation, provenance


def test_summary_leaves_out_the_validation_of_another_catalog():
    catalog, zp, fit_report, validation, provenance = _summary_inputs()
    stale = {**validation, "catalog_utc": "2026-12-06T09:00:00Z"}
    summary = summarise_run(catalog, zp, fit_report, stale, provenance)
    assert summary["validation"] == {"truth_available": False}
    assert summary["provenance"]["parameters_sha256"] == "ab" * 32
    current = summarise_run(catalog, zp, fit_report, validation, provenance)
    assert current["validation"]["truth_available"] is True


def test_summary_numbers():
    summary = summarise_run(*_summary_inputs())
    assert summary["catalog"] == {
        "n_rows": 3,
        "n_fitted": 2,
        "n_excluded": 1,
        "fraction_converged": 0.5,
    }
    assert summary["excluded_reasons"] == {"saturation": 1}
    assert summary["bands"][0]["median_snr"] == pytest.approx(17.5)
    assert summary["validation"]["star_pull_std"] == pytest.approx(1.0432)


def test_select_figures_by_pattern():
    figures = {
        "zp/zp_vs_mag/zp_vs_mag__m400": lambda: b"1",
        "zp/zp_offset_vs_wavelength": lambda: b"2",
        "psf/plots/stamps_m400": lambda: b"3",
    }
    chosen = select_figures(figures, {"ZP": ["zp/zp_offset_*", "zp/zp_vs_mag/*"], "none": ["x/*"]})
    assert [n for n, _ in chosen["ZP"]] == [
        "zp/zp_offset_vs_wavelength",
        "zp/zp_vs_mag/zp_vs_mag__m400",
    ]
    assert chosen["none"] == []


def test_report_html_is_self_contained_with_headline_numbers():
    catalog, zp, fit_report, validation, provenance = _summary_inputs()
    figures = {name: OptionalDataset(dataset=MemoryDataset()) for name in REPORT_FIGURES}
    figures["source_overlay_plot"] = MemoryDataset(_png())
    figures["validation_pull_plots"] = MemoryDataset(
        {"pull_histograms": lambda: _png()}, copy_mode="assign")
    figures["patch_overview_plot"] = MemoryDataset(_png())
    figures["residual_montage_plot"] = MemoryDataset(_png())
    data = DataCatalog(
        {
            "output_catalog": MemoryDataset(catalog),
            "zp_summary": MemoryDataset(zp),
            "fit_run_report": MemoryDataset(fit_report),
            "validation_metrics": MemoryDataset(validation),
            "catalog_provenance": MemoryDataset(provenance),
            "params:report": MemoryDataset({"title": "test report"}),
            **figures,
        }
    )
    pipe = create_pipeline().only_nodes("summarise_run", "build_report")
    page = SequentialRunner().run(pipe, data)["report_html"].load()
    assert "<title>test report</title>" in page
    for text in ("24.9612", "0.0021", "17.50", "1.0432", "0.0123", "50.0 %", "saturation"):
        assert text in page, text
    assert page.count("src='data:image/png;base64,") == 4
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page, re.IGNORECASE)
    assert "No figure produced for this section" in page  # ePSF section on this run


def test_residual_montage_is_one_image_per_column_with_a_label_per_source():
    rng = np.random.default_rng(1)
    data = [rng.normal(10.0, 1.0, (9, 9)), rng.normal(10.0, 1.0, (7, 9))]  # one clipped stamp
    stamps = [
        ResidualStamp(f"s{i}", "star", 50.0, d, d - 1.0, np.full(d.shape, 4.0))
        for i, d in enumerate(data)
    ]
    fig = residual_montage_figure(stamps, "m500")
    columns = fig.axes[:3]
    assert all(len(ax.images) == 1 for ax in columns) and len(fig.axes) == 4
    chi = np.ma.filled(columns[2].images[0].get_array(), np.nan)
    assert chi.shape == (2 * 9 + 2, 9)  # two 9 px slots, 2 blank rows between them
    assert np.allclose(chi[np.isfinite(chi)], 2.0)  # (data - model) * sqrt(invvar)
    assert np.isnan(chi[9:11]).all() and np.isnan(chi[0]).all()  # separator; 7-row stamp centred
    labels = [t.get_text() for t in columns[0].texts]
    assert labels == ["s0\nstar, S/N 50", "s1\nstar, S/N 50"]
    assert [ax.get_title() for ax in columns] == ["data (m500)", "model (m500)", "residual (m500)"]
