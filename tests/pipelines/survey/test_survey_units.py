"""Survey building blocks: manifest checks, tile commands, resume state, merge rule, pulls."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from phot7dt.config.survey import SurveyParams
from phot7dt.pipelines.survey.manifest import ManifestError, read_manifest
from phot7dt.pipelines.survey.merge import add_calibrated_fluxes, mark_primary, read_tile_catalog
from phot7dt.pipelines.survey.nodes import SurveyTileFailure, check_tile_runs, tile_job
from phot7dt.pipelines.survey.qa import overlap_agreement
from phot7dt.pipelines.survey.tile_run import finished_run, run_error


@pytest.fixture
def tile_files(tmp_path):
    for name in ("cat.csv", "list.txt", "gaia.csv"):
        (tmp_path / name).write_text("x\n")
    return tmp_path


def _write(path, rows, columns=("tile", "input_catalog", "image_list", "gaiaxp_synphot")):
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return str(path)


def test_manifest_paths_resolve_against_its_folder(tile_files):
    path = _write(tile_files / "tiles.csv", [["a", "cat.csv", "list.txt", "NONE"]])
    table = read_manifest(path)
    assert table.loc[0, "input_catalog"] == str(tile_files / "cat.csv")
    assert table.loc[0, "gaiaxp_synphot"] == "none" and table.loc[0, "params"] == ""


@pytest.mark.parametrize(
    ("rows", "columns", "message"),
    [
        (
            [["a", "cat.csv", "list.txt"]],
            ("tile", "input_catalog", "image_list"),
            r"tiles.csv: missing column\(s\) \['gaiaxp_synphot'\]",
        ),
        (
            [["a", "cat.csv", "nolist.txt", "none"]],
            None,
            r"tiles.csv, row 1, column image_list: file not found: .*nolist.txt",
        ),
        (
            [["a", "cat.csv", "list.txt", "none"], ["a", "cat.csv", "list.txt", "none"]],
            None,
            r"column tile: 'a' repeats \(rows \[1, 2\]\)",
        ),
        ([["a/b", "cat.csv", "list.txt", "none"]], None, r"row 1, column tile: 'a/b'"),
        (
            [["a", "cat.csv", "list.txt", "none", "work_dir=/x"]],
            ("tile", "input_catalog", "image_list", "gaiaxp_synphot", "params"),
            r"row 1, column params: 'work_dir' is set from the manifest columns",
        ),
        (
            [["a", "cat.csv", "list.txt", "none", "crop.margin"]],
            ("tile", "input_catalog", "image_list", "gaiaxp_synphot", "params"),
            r"row 1, column params: item 'crop.margin' is not key=value",
        ),
    ],
)
def test_bad_manifests_fail_naming_file_row_and_column(tile_files, rows, columns, message):
    path = _write(
        tile_files / "tiles.csv",
        rows,
        columns or ("tile", "input_catalog", "image_list", "gaiaxp_synphot"),
    )
    with pytest.raises(ManifestError, match=message):
        read_manifest(path)


def test_missing_manifest_is_named(tmp_path):
    with pytest.raises(ManifestError, match="survey.manifest: not given"):
        read_manifest(None)
    with pytest.raises(ManifestError, match="tiles.csv: file not found"):
        read_manifest(str(tmp_path / "tiles.csv"))


def test_tile_job_runs_full_with_overrides_in_order(tile_files):
    row = pd.Series(
        {
            "tile": "t1",
            "input_catalog": "/d/cat.csv",
            "image_list": "/d/l.txt",
            "gaiaxp_synphot": "none",
            "params": "crop.margin=20",
        }
    )
    params = SurveyParams(tile_params="crop.margin=50,epsf.ngrid=2", tile_env="sample")
    job = tile_job(row, params, tile_files, patch_workers=3, threads=2)
    assert job.kedro_args[:4] == ("run", "--pipeline", "full", "--params")
    assert job.kedro_args[5:] == ("--env", "sample")
    items = [tuple(item.split("=", 1)) for item in job.kedro_args[4].split(",")]
    # Later items win in kedro's --params: the row's params override the survey's, and
    # the manifest's paths and the tile's work_dir come last.
    assert items == [
        ("patch_run.max_workers", "3"),
        ("crop.margin", "50"),
        ("epsf.ngrid", "2"),
        ("crop.margin", "20"),
        ("input_catalog", "/d/cat.csv"),
        ("image_list", "/d/l.txt"),
        ("gaiaxp_synphot", "none"),
        ("work_dir", str(tile_files / "tiles" / "t1")),
    ]
    assert job.env["OMP_NUM_THREADS"] == "2"
    assert job.log_path == str(tile_files / "survey" / "logs" / "t1.log")


def test_finished_run_reads_the_run_manifest(tmp_path):
    assert not finished_run(tmp_path)
    record = {
        "status": "finished",
        "pipeline": "full",
        "error": None,
        "inputs": [
            {"name": "input_catalog", "path": "/d/cat.csv"},
            {"name": "image", "path": "/d/m400.fits"},
        ],
    }
    (tmp_path / "run_manifest.json").write_text(json.dumps(record))
    assert finished_run(tmp_path, {"input_catalog": "/d/cat.csv", "gaiaxp_synphot": "none"})
    assert not finished_run(tmp_path, {"input_catalog": "/other/cat.csv"})
    for change in ({"status": "running"}, {"status": "failed"}, {"pipeline": "psf"}):
        (tmp_path / "run_manifest.json").write_text(json.dumps({**record, **change}))
        assert not finished_run(tmp_path)
    (tmp_path / "run_manifest.json").write_text("{not json")
    assert not finished_run(tmp_path)


def test_run_error_prefers_the_run_manifest(tmp_path):
    log = "INFO starting\nTraceback (most recent call last):\nValueError: bad SKYSIG\n"
    assert run_error(tmp_path, log) == "ValueError: bad SKYSIG"
    (tmp_path / "run_manifest.json").write_text(
        json.dumps({"status": "failed", "error": "DatasetError: m550.fits not found\nmore"})
    )
    assert run_error(tmp_path, log) == "DatasetError: m550.fits not found"


def _rows(tile, ids, ra, dist, dec=0.0):
    return pd.DataFrame(
        {"TILE": tile, "ID": ids, "RA": ra, "DEC": dec, "survey_edge_dist_pix": dist}
    )


def test_primary_is_the_measurement_deepest_in_its_tile():
    arcsec = 1 / 3600
    table = pd.concat(
        [
            # "1" in both tiles; "2" in A is "x9" in B (no shared ID, 0.3" apart);
            # "3" shares an ID with B's "3" but lies 20" away: two different sources.
            _rows("A", ["1", "2", "3", "4"], [10.0, 10.01, 10.02, 10.03], [5.0, 40.0, 7.0, 9.0]),
            _rows(
                "B",
                ["1", "x9", "3"],
                [10.0 + 0.2 * arcsec, 10.01 + 0.3 * arcsec, 10.02 + 20 * arcsec],
                [30.0, 2.0, 50.0],
            ),
        ],
        ignore_index=True,
    )
    out = mark_primary(table, radius_arcsec=1.0)
    key = out["TILE"] + ":" + out["ID"]
    primary = set(key[out["survey_primary"]])
    assert primary == {"B:1", "A:2", "A:3", "A:4", "B:3"}
    groups = out.groupby("survey_source")["ID"].apply(sorted).tolist()
    assert sorted(groups) == [["1", "1"], ["2", "x9"], ["3"], ["3"], ["4"]]
    assert out.set_index(key).loc["A:2", "survey_n_meas"] == 2


def test_overlap_pulls_of_honest_errors_have_unit_scatter():
    rng = np.random.default_rng(3)
    n, sigma = 4000, rng.uniform(0.5, 5.0, (2, 4000))
    flux = rng.uniform(10, 1000, n)
    measured = flux + rng.normal(0.0, sigma)
    table = pd.DataFrame(
        {
            "TILE": np.repeat(["A", "B"], n),
            "survey_source": np.tile(np.arange(n), 2),
            "survey_primary": np.repeat([True, False], n),
            "FLUX_m400_uJy": measured.ravel(),
            "FLUXERR_m400_uJy": sigma.ravel(),
        }
    )
    stats = overlap_agreement(table).iloc[0]
    assert stats["n_pairs"] == n
    assert abs(stats["pull_median"]) < 0.05 and abs(stats["pull_std"] - 1) < 0.04
    table["FLUXERR_m400_uJy"] /= 2  # errors half the truth: pulls twice as wide
    assert abs(overlap_agreement(table).iloc[0]["pull_std"] - 2) < 0.08


def test_calibrated_fluxes_use_the_tile_zero_point():
    table = pd.DataFrame({"FLUX_m400_fit": [100.0], "FLUXERR_m400_fit": [2.0]})
    zps = pd.DataFrame({"band": ["m400"], "zp": [25.0], "zp_err": [0.01]})
    out = add_calibrated_fluxes(table, zps)
    # 100 counts at ZP 25 is AB 20.0 = 10**(-0.4 (20 - 23.9)) uJy.
    assert out.loc[0, "FLUX_m400_uJy"] == pytest.approx(10 ** (0.4 * 3.9))
    assert out.loc[0, "FLUXERR_m400_uJy"] == pytest.approx(0.02 * 10 ** (0.4 * 3.9))
    assert out.loc[0, "ZP_m400"] == 25.0 and out.loc[0, "ZPERR_m400"] == 0.01


def test_failed_tiles_end_the_survey_naming_them():
    runs = pd.DataFrame(
        {
            "tile": ["a", "b"],
            "status": ["finished", "failed"],
            "error": ["", "DatasetError: x.fits not found"],
        }
    )
    with pytest.raises(SurveyTileFailure, match=r"1 of 2 tile\(s\) failed \(b: DatasetError"):
        check_tile_runs(runs, "<html>")
    check_tile_runs(runs.assign(status="finished"), "<html>")


def test_tile_catalog_flags_with_missing_entries_become_nullable_booleans(tmp_path):
    folder = tmp_path / "07_model_output"
    folder.mkdir()
    pd.DataFrame(
        {"ID": ["007", "8"], "opt_converged": [True, None], "excluded_any": [False, True]}
    ).to_csv(folder / "output_catalog.csv", index=False)
    table = read_tile_catalog(tmp_path)
    assert table["ID"].tolist() == ["007", "8"]
    assert str(table["opt_converged"].dtype) == "boolean"
    assert table["opt_converged"].isna().tolist() == [False, True]
    assert table["excluded_any"].dtype == bool
