"""A failing patch does not stop the run; resume fits only what is missing: the same catalog."""

from __future__ import annotations

import re
import shutil

import pandas as pd
from fitting_field import drive_fit_patches, models_dir, run_stages

from phot7dt.datasets.patch_results_dataset import PatchResultStore
from phot7dt.pipelines.fitting import nodes, patch_task, status


def _copy_results(baseline, tmp_path, drop: list[str]) -> PatchResultStore:
    target = tmp_path / "patches"
    shutil.copytree(baseline["results_dir"], target)
    shutil.copytree(models_dir(baseline["results_dir"]), models_dir(target))
    store = PatchResultStore(target)
    for tag in drop:
        store.discard(tag)
    return store


def _inputs(baseline) -> dict:
    return {"patches": baseline["patches"], "patch_payloads": baseline["patch_payloads"]}


def test_resume_after_an_interruption_gives_the_same_catalog(upstream, baseline, tmp_path):
    tags = sorted(baseline["patch_payloads"]["patch_tag"].unique())
    store = _copy_results(baseline, tmp_path, drop=tags[-3:])  # the run stopped 3 patches early
    out = run_stages(upstream, store.root, patch_run={"resume": True}, inputs=_inputs(baseline))
    report = out["fit_run_report"]
    assert (report["n_resumed"], report["n_fitted"], report["n_failed"]) == (len(tags) - 3, 3, 0)
    pd.testing.assert_frame_equal(out["merged_catalog"], baseline["merged_catalog"])


def test_a_failing_patch_is_reported_and_resume_finishes_the_job(
    upstream, baseline, tmp_path, monkeypatch
):
    tags = sorted(baseline["patch_payloads"]["patch_tag"].unique())
    bad = tags[1]
    store = _copy_results(baseline, tmp_path, drop=tags[:3])
    real_fit = patch_task._fit

    def fit_or_fail(task, meta):
        if task.tag == bad:
            raise FloatingPointError("simulated solver failure")
        return real_fit(task, meta)

    monkeypatch.setattr(patch_task, "_fit", fit_or_fail)
    run = {"resume": True, "max_workers": 1}  # in-process, so the patched function is used
    args = (
        baseline["patches"],
        baseline["patch_payloads"],
        upstream.frames,
        upstream.bright_mask,
        upstream.epsf_grid,
        store,
        run,
        {},
        {},
        {},
        {"detail": "full"},
        {},
    )
    report = drive_fit_patches(nodes.fit_patches, *args, results_dir=store.root)
    assert report["complete"]
    assert report["failed_patches"] == [bad]
    failed = next(r for r in report["patches"] if r["status"] == "failed")
    assert "FloatingPointError: simulated solver failure" in failed["error"]
    assert "Traceback" in failed["traceback"]
    assert not store.has(bad) and all(store.has(t) for t in tags if t != bad)
    merged = nodes.merge_fits(
        upstream.active_catalog,
        baseline["patch_payloads"],
        store,
        report,
        upstream.wcs_snapshot,
        None,
        upstream.frames,
        {},
        {},
    )
    in_bad = merged["patch_tag"] == bad
    assert in_bad.any() and (merged.loc[in_bad, "fit_status"] == "patch_failed").all()
    assert merged.loc[in_bad, "FLUX_m400_fit"].isna().all()
    assert (merged.loc[~in_bad, "fit_status"] != "patch_failed").all()
    assert merged["catalog_is_partial"].all()
    message = status.failure_message(report, nodes.count_fit_statuses(merged))
    assert re.match(rf"1 of {len(tags)} patches failed \({bad}\); {int(in_bad.sum())} ", message)

    monkeypatch.setattr(patch_task, "_fit", real_fit)
    out = run_stages(upstream, store.root, patch_run={"resume": True}, inputs=_inputs(baseline))
    assert (out["fit_run_report"]["n_fitted"], out["fit_run_report"]["n_failed"]) == (1, 0)
    pd.testing.assert_frame_equal(out["merged_catalog"], baseline["merged_catalog"])
