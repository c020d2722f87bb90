"""The survey end to end on a 2-worker LocalCluster: merge, failed tile, lost worker, resume."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pandas as pd
import psutil
import pytest
from pandas.testing import assert_frame_equal
from survey_field import BROKEN, read_catalog, run_survey, start_survey

from phot7dt.pipelines.survey.qa import overlap_pulls
from phot7dt.pipelines.survey.tile_run import finished_run

pytestmark = pytest.mark.xdist_group("survey")


def test_every_true_source_is_primary_once_and_duplicates_agree(survey_field, baseline):
    root, _ = baseline
    catalog = read_catalog(root)
    truth = survey_field.truth
    primary = catalog[catalog["survey_primary"]]
    assert primary["ID"].is_unique
    listed = truth.loc[truth["tiles"] != "", "ID"]
    assert set(listed) <= set(primary["ID"])
    gaia_ids = {f"gaia_{g}" for g in truth["gaia_source_id"] if g}
    assert set(primary["ID"]) <= set(truth["ID"]) | gaia_ids
    # Sources listed by two tiles are measured twice; one measurement is primary.
    shared = truth.loc[truth["tiles"].str.contains(";"), "ID"]
    assert len(shared) >= 20
    rows = catalog[catalog["ID"].isin(shared)]
    assert (rows.groupby("ID").size() == 2).all()
    assert (rows.groupby("ID")["survey_primary"].sum() == 1).all()
    # The primary one lies deeper inside its tile's usable area.
    best = rows.groupby("ID")["survey_edge_dist_pix"].max()
    assert np.array_equal(
        rows[rows["survey_primary"]].set_index("ID").loc[best.index, "survey_edge_dist_pix"], best
    )
    pulls = np.concatenate([overlap_pulls(catalog, b) for b in ("m400", "m550", "m625")])
    pulls = pulls[np.isfinite(pulls)]
    assert len(pulls) >= 40
    assert 0.8 <= np.std(pulls, ddof=1) <= 1.25
    assert abs(np.median(pulls)) < 0.4
    zps = pd.read_csv(root / "survey" / "zero_points.csv", dtype={"tile": str, "band": str})
    assert sorted(zps["tile"].unique()) == ["t00", "t01", "t02"] and len(zps) == 9
    t00 = catalog[catalog["TILE"] == "t00"]
    zp = zps.set_index(["tile", "band"]).loc[("t00", "m550"), "zp"]
    assert np.allclose(t00["ZP_m550"], zp)
    report = (root / "survey" / "survey_report.html").read_text()
    assert "zp_per_tile.png" in report and (root / "survey" / "zp_per_tile.png").is_file()


def test_a_broken_tile_is_reported_by_name_and_the_others_complete(baseline):
    root, process = baseline
    assert process.returncode != 0
    assert f"{BROKEN}:" in process.stderr + process.stdout
    runs = pd.read_csv(root / "survey" / "tile_runs.csv", dtype=str, keep_default_na=False)
    status = dict(zip(runs["tile"], runs["status"], strict=True))
    assert status == {"t00": "finished", "t01": "finished", "t02": "finished", BROKEN: "failed"}
    error = runs.set_index("tile").loc[BROKEN, "error"]
    assert "m550.fits" in error
    assert set(read_catalog(root)["TILE"]) == {"t00", "t01", "t02"}
    for tile in ("t00", "t01", "t02"):
        manifest = json.loads((root / "tiles" / tile / "run_manifest.json").read_text())
        assert manifest["status"] == "finished"


def _tile_run(process: psutil.Process) -> psutil.Process | None:
    """A running tile (``kedro run --pipeline full``) among the survey's descendants."""
    for child in process.children(recursive=True):
        try:
            cmdline = child.cmdline()
        except psutil.Error:
            continue
        if "kedro" in cmdline and "full" in cmdline:
            return child
    return None


def test_a_lost_worker_costs_a_rerun_not_the_tile(survey_field, baseline, tmp_path):
    root = tmp_path / "killed"
    survey = start_survey(survey_field.manifest, root)
    try:
        deadline, tile = time.monotonic() + 300, None
        while tile is None and time.monotonic() < deadline and survey.poll() is None:
            time.sleep(0.5)
            tile = _tile_run(psutil.Process(survey.pid))
        assert tile is not None, "no tile run started"
        time.sleep(3.0)  # the tile is under way
        worker = tile.parent()
        worker.send_signal(signal.SIGKILL)
        assert survey.wait(timeout=1800) == 0
    finally:
        if survey.poll() is None:
            survey.kill()
    logs = {p.stem: p.read_text() for p in (root / "survey" / "logs").glob("*.log")}
    attempts = {name: text.count(" kedro run --pipeline full") for name, text in logs.items()}
    assert sorted(attempts.values()) == [1, 1, 2], attempts
    assert_frame_equal(read_catalog(root), read_catalog(baseline[0]))


def test_resume_after_a_stop_reruns_only_unfinished_tiles(survey_field, baseline, tmp_path):
    root = tmp_path / "stopped"
    tiles = ("t00", "t01", "t02")
    # its own process group: the stop reaches every tile run
    survey = start_survey(survey_field.manifest, root, start_new_session=True)
    try:
        deadline = time.monotonic() + 900
        while survey.poll() is None and time.monotonic() < deadline:
            if any(finished_run(root / "tiles" / t) for t in tiles):
                break
            time.sleep(0.2)
        assert survey.poll() is None, "the survey ended before it could be stopped"
        os.killpg(survey.pid, signal.SIGKILL)  # stopped part-way, as by a batch system
        survey.wait(timeout=60)
    finally:
        if survey.poll() is None:
            os.killpg(survey.pid, signal.SIGKILL)
    finished = [t for t in tiles if finished_run(root / "tiles" / t)]
    assert 1 <= len(finished) < len(tiles), finished
    kept = {t: (root / "tiles" / t / "07_model_output" / "output_catalog.csv") for t in finished}
    stamps = {t: path.stat().st_mtime_ns for t, path in kept.items()}
    resumed = run_survey(survey_field.manifest, root, ",survey.resume=true")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    runs = pd.read_csv(root / "survey" / "tile_runs.csv", dtype=str, keep_default_na=False)
    status = dict(zip(runs["tile"], runs["status"], strict=True))
    assert status == {t: "skipped" if t in finished else "finished" for t in tiles}
    assert {t: path.stat().st_mtime_ns for t, path in kept.items()} == stamps
    assert_frame_equal(read_catalog(root), read_catalog(baseline[0]))
