"""fit_status: the registry's rules on crafted rows, masked / no-PSF sources in a run, and a
failing patch that still gives a calibrated partial catalog and then a failed run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from fitting_field import run_stages
from saturated_field import BANDS, FWHM, STARS, moffat_grid

from phot7dt.hooks import PatchFailureError, RunHooks
from phot7dt.pipelines.fitting import patch_task, status
from phot7dt.pipelines.fitting.nodes import plot_patch_fits
from phot7dt.provenance import RunProvenance
from phot7dt.psf_grid import PSFChoice, PSFGrid

NOT_FITTED = {"excluded_crop", "excluded_saturation", "patch_failed", "no_psf", "masked"}


def _crafted() -> pd.DataFrame:
    n = 11
    rows = pd.DataFrame(
        {
            "excluded_crop": [True] + [False] * (n - 1),
            "excluded_saturation": [False, True] + [False] * (n - 2),
            "fit_flags": pd.array(
                [pd.NA, pd.NA, pd.NA, 0, 128 | 64, 1, 4, 0, 0, 0, 128 | 1], dtype="Int64"
            ),
            "opt_converged": pd.array(
                [pd.NA] * 3 + [True, True, False] + [True] * 4 + [False], dtype="boolean"
            ),
            "opt_hit_max_iters": [False] * n,
            "flag_bound_stalled": [False] * 6 + [True] + [False] * 4,
            "saturated_bands": [""] * 7 + ["g"] + [""] * 3,
            "psf_missing_bands": ["", "", "", "g,r"] + [""] * 7,
        }
    )
    rows["excluded_any"] = rows["excluded_crop"] | rows["excluded_saturation"]
    for band in ("g", "r"):
        rows[f"FLUX_{band}_fit"] = [np.nan] * 3 + [np.nan] * 2 + [100.0] * 3 + [2.0, 100.0, np.nan]
        rows[f"FLUXERR_{band}_fit"] = 1.0
    return rows


def test_registry_rules_and_precedence():
    got = status.row_statuses(_crafted(), ["g", "r"], 3.0, multi_band=True)
    assert got.tolist() == [
        "excluded_crop",
        "excluded_saturation",
        "patch_failed",
        "no_psf",
        "masked",
        "not_converged",
        "hit_bound",
        "saturated_core",
        "low_snr",
        "ok",
        "masked",
    ]  # the last row is masked and not converged: masked comes first
    assert set(got) <= set(status.STATUS_NAMES)


def test_counts_list_every_status_and_no_failure_without_failed_rows():
    merged = _crafted().assign(fit_status=status.row_statuses(_crafted(), ["g", "r"], 3.0, True))
    counts = status.status_counts(merged)
    assert counts["fit_status"].tolist() == list(status.STATUS_NAMES)
    assert counts.set_index("fit_status")["n_sources"].sum() == len(merged)
    assert "patch_failed" in status.format_counts(counts)
    merged = merged[merged["fit_status"] != "patch_failed"]
    assert status.failure_message({"failed_patches": []}, status.status_counts(merged)) == ""


def _working(upstream, sid: str) -> tuple[float, float]:
    x, y = next((s[1], s[2]) for s in STARS if s[0] == sid)
    return x - upstream.frames.crop.x0, y - upstream.frames.crop.y0


def _grid_without(grid: PSFGrid, cell: tuple[int, int], band: str) -> PSFGrid:
    """No PSF in any band of ``cell``, and none for ``band`` anywhere."""
    empty = PSFChoice("moffat", None, FWHM, None, 0, "no stamp")
    choices = {
        key: empty if (key[1:] == cell or key[0] == band) else choice
        for key, choice in grid.choices.items()
    }
    return dataclasses.replace(grid, choices=choices)


def test_masked_and_no_psf_sources_in_a_run(saturated_upstream, tmp_path):
    up = saturated_upstream
    mask = np.array(up.bright_mask[0], dtype=np.uint8)
    x4, y4 = _working(up, "star4")
    mask[round(y4) - 35 : round(y4) + 36, round(x4) - 35 : round(x4) + 36] = 1
    grid = moffat_grid(up.frames, 2)
    cell = grid.cell_of(*_working(up, "star1"))
    field = dataclasses.replace(
        up, bright_mask=(mask, up.bright_mask[1]), epsf_grid=_grid_without(grid, cell, "m700")
    )
    out = run_stages(field, tmp_path / "patches", patch_run={"max_workers": 1})
    merged = out["merged_catalog"].set_index("ID")
    in_cell = [s[0] for s in STARS if grid.cell_of(*_working(up, s[0])) == cell]
    assert "star1" in in_cell and (merged.loc[in_cell, "fit_status"] == "no_psf").all()
    assert merged.loc["star4", "fit_status"] == "masked"
    fluxes = [f"FLUX_{b}_fit" for b in BANDS]
    assert merged.loc[[*in_cell, "star4"], fluxes].isna().all().all()
    assert np.isnan(merged.loc["star4", "x_pix_white_fit"])  # position not measured either
    rest = merged.drop(index=[*in_cell, "star4"])
    assert (rest["psf_missing_bands"] == "m700").all() and rest["FLUX_m700_fit"].isna().all()
    assert rest[fluxes[:-1]].notna().all().all()
    assert rest["fit_status"].isin(["ok", "saturated_core"]).all()


def _with_gaia_stars(upstream):
    """Every star of the field matched to a Gaia star whose magnitudes are the truth's."""
    truth = upstream.truth
    source_ids = [str(1000 + i) for i in range(len(truth))]
    gaia = pd.DataFrame(
        {"source_id": source_ids, "ra": truth["RA"], "dec": truth["DEC"], "phot_g_mean_mag": 15.0}
    )
    for band in BANDS:
        gaia[f"mag_{band}"] = 25.0 - 2.5 * np.log10(truth[f"FLUX_{band}"])
    ids = dict(zip(truth["ID"], source_ids, strict=True))
    catalog = upstream.active_catalog.assign(gaia_source_id=upstream.active_catalog["ID"].map(ids))
    return dataclasses.replace(upstream, active_catalog=catalog), gaia


def _run_with_failures(upstream, tmp_path, monkeypatch, failing):
    """Patching to calibration in memory, the solver raising in the patches ``failing(tag)``."""
    real_fit = patch_task._fit

    def fit_or_fail(task, meta):
        if failing(task.tag):
            raise FloatingPointError("simulated solver failure")
        return real_fit(task, meta)

    monkeypatch.setattr(patch_task, "_fit", fit_or_fail)
    field, gaia = _with_gaia_stars(upstream)
    out = run_stages(
        field,
        tmp_path / "patches",
        patch_run={"max_workers": 1},
        calibration={
            "gaiaxp_synphot": gaia,
            "params:zp": {},
            "params:image_scaling": {"zp_ref": 25.0},
            "run_provenance": RunProvenance("test", {}, []),
        },
    )
    return field, out


def test_a_failed_patch_gives_a_calibrated_partial_catalog_then_a_failed_run(
    saturated_upstream, saturated_run, tmp_path, monkeypatch
):
    payloads = saturated_run["patch_payloads"]
    bad = payloads.loc[(payloads["ID"] == "star3") & ~payloads["is_halo"], "patch_tag"].iloc[0]
    _, out = _run_with_failures(saturated_upstream, tmp_path, monkeypatch, lambda tag: tag == bad)
    catalog = out["output_catalog"].set_index("ID")
    failed = catalog["patch_tag"] == bad
    assert failed.any() and (catalog.loc[failed, "fit_status"] == "patch_failed").all()
    assert (catalog.loc[~failed, "fit_status"] != "patch_failed").all()
    assert catalog["catalog_is_partial"].all()
    zp = out["zp_summary"].set_index("band")  # calibration ran on the partial catalog
    assert zp["zp_offset"].abs().max() < 0.01
    assert (zp.loc[["m400", "m500"], "n_saturated"] == 3).all()
    assert catalog.loc[~failed, "MAG_m600_fit"].notna().all()
    for band in BANDS:
        assert catalog.loc[failed, [f"FLUX_{band}_fit", f"MAG_{band}_fit"]].isna().all().all()
        assert not (catalog[f"FLUX_{band}_fit"] == 0.0).any()  # unmeasured is NaN, never 0
    not_fitted = catalog["fit_status"].isin(NOT_FITTED)
    assert catalog.loc[not_fitted, "FLUXERR_m400_fit"].isna().all()
    with pytest.raises(
        PatchFailureError,
        match=rf"1 of \d+ patches failed \({bad}\).*"
        r"FloatingPointError: simulated solver failure",
    ):
        RunHooks().after_pipeline_run(
            run_params={}, pipeline=out["pipeline"], catalog=out["catalog"]
        )


def test_the_hook_passes_a_clean_run_and_ignores_runs_without_fits(saturated_run, tmp_path):
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.pipeline import Pipeline

    catalog = DataCatalog(
        {
            "fit_status_counts": MemoryDataset(saturated_run["fit_status_counts"]),
            "fit_run_report": MemoryDataset(saturated_run["fit_run_report"]),
        }
    )
    from phot7dt.pipelines.fitting import create_pipeline

    RunHooks().after_pipeline_run(run_params={}, pipeline=create_pipeline(), catalog=catalog)
    RunHooks().after_pipeline_run(run_params={}, pipeline=Pipeline([]), catalog=DataCatalog({}))


def test_a_run_where_every_patch_fails_ends_with_the_patch_failure_error(
    saturated_upstream, tmp_path, monkeypatch
):
    field, out = _run_with_failures(saturated_upstream, tmp_path, monkeypatch, lambda tag: True)
    catalog = out["output_catalog"]
    assert (catalog["fit_status"] == "patch_failed").all()
    assert catalog[[f"FLUX_{band}_fit" for band in BANDS]].isna().all().all()
    figures = plot_patch_fits(
        out["patches"],
        out["merged_catalog"],
        field.frames,
        field.bright_mask,
        out["patch_models"],
        {"cutout_max_sources": 1},
        {},
    )
    assert figures and all(draw() is not None for draw in figures.values())  # drawn without a fit
    with pytest.raises(
        PatchFailureError, match=r"(\d+) of \1 patches failed.*simulated solver failure"
    ):
        RunHooks().after_pipeline_run(
            run_params={}, pipeline=out["pipeline"], catalog=out["catalog"]
        )
