"""Patch overview and cutout montages: switched by patch_run, drawn lazily, model close to data."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from phot7dt.config.ingest import SUMMARY_PATCHES
from phot7dt.frames import roi_box
from phot7dt.pipelines.fitting.nodes import plot_patch_fits
from phot7dt.pipelines.fitting.patch_views import patch_view


def _args(upstream, baseline, patch_run, detail="full", merged=None):
    return (
        baseline["patches"],
        baseline["merged_catalog"] if merged is None else merged,
        upstream.frames,
        upstream.bright_mask,
        baseline["patch_models"],
        patch_run,
        {"detail": detail},
    )


def test_switched_off_by_default_keys(upstream, baseline):
    assert (
        plot_patch_fits(*_args(upstream, baseline, {"no_cutouts": True, "no_patch_overview": True}))
        == {}
    )


def test_figures_are_drawn_lazily(upstream, baseline):
    figures = plot_patch_fits(
        *_args(upstream, baseline, {"cutout_max_sources": 1, "cutout_size": 31})
    )
    tags = sorted(baseline["merged_catalog"]["patch_tag"].dropna().unique())
    assert sum(k.endswith("/patch_overview") for k in figures) == len(tags)
    assert sum("/cutouts/src_" in k for k in figures) == len(tags)
    first = [k for k in figures if k.startswith(tags[0])]
    assert all(isinstance(figures[k](), Figure) for k in first)


def test_summary_draws_the_patches_with_the_most_unconverged_fits(upstream, baseline):
    merged = baseline["merged_catalog"].copy()
    tags = sorted(merged["patch_tag"].dropna().unique())
    assert len(tags) > SUMMARY_PATCHES
    troubled = tags[-1]  # the last patch in tag order, with the fewest sources or not
    merged["opt_converged"] = merged["opt_converged"].astype(object)
    merged.loc[merged["patch_tag"] == troubled, "opt_converged"] = False
    figures = plot_patch_fits(*_args(upstream, baseline, {"cutout_max_sources": 1}, "summary",
                                     merged))
    overviews = sorted(k.split("/")[0] for k in figures if k.endswith("/patch_overview"))
    assert len(overviews) == SUMMARY_PATCHES and troubled in overviews
    assert sorted({k.split("/")[0] for k in figures if "/cutouts/" in k}) == overviews


def test_rendered_model_explains_the_data(upstream, baseline):
    first_tag = sorted(baseline["patch_payloads"]["patch_tag"])[0]
    patch = baseline["patches"].set_index("patch_tag").loc[first_tag]
    view = patch_view(
        roi_box(patch),
        first_tag,
        baseline["merged_catalog"],
        upstream.frames,
        upstream.bright_mask[0],
        baseline["patch_models"],
    )
    assert view.has_model
    good = view.invvar > 0
    chi = view.residual[good] * np.sqrt(view.invvar[good])
    assert np.abs(view.model).sum() > 0
    snr = view.data[good] * np.sqrt(view.invvar[good])
    assert np.sum(chi**2) < 0.1 * np.sum(snr**2)  # the model takes out most of the signal
    assert 1.4826 * np.median(np.abs(chi - np.median(chi))) < 1.2  # residuals at the noise level


def test_qa_residual_is_the_fit_residual_with_a_gaussian_mixture_psf(
    upstream, baseline, tmp_path, monkeypatch
):
    """The figures' model is the fitted one: fitted with Gaussian-mixture PSFs, the QA
    residual equals the residual the fit minimised (not a pixelized-PSF re-render)."""
    from fitting_field import run_stages

    from phot7dt.pipelines.fitting import patch_task
    from phot7dt.pipelines.fitting.refit import model_images

    fits, real_prepare, real_table = {}, patch_task.cleaning.prepare, patch_task.result_table

    def prepare(*args, **kwargs):
        fits["data"] = real_prepare(*args, **kwargs)
        return fits["data"]

    def table(task, results, meta, lever):
        fits[task.tag] = (fits.pop("data"), results)
        return real_table(task, results, meta, lever)

    monkeypatch.setattr(patch_task.cleaning, "prepare", prepare)
    monkeypatch.setattr(patch_task, "result_table", table)
    run = {"psf_model": "gaussian_mixture_from_stamp", "max_workers": 1}  # in-process
    inputs = {"patches": baseline["patches"], "patch_payloads": baseline["patch_payloads"]}
    out = run_stages(upstream, tmp_path / "patches", patch_run=run, inputs=inputs)
    tag = sorted(t for t in fits if t != "data")[0]
    data, results = fits[tag]
    fit_residual = data.images - model_images(results)  # what the fit minimised
    patch = out["patches"].set_index("patch_tag").loc[tag]
    view = patch_view(roi_box(patch), tag, out["merged_catalog"], upstream.frames,
                      upstream.bright_mask[0], out["patch_models"])
    assert view.has_model
    good = (view.invvar > 0) & (data.invvar > 0)
    scale = np.abs(view.data[good]).max()
    np.testing.assert_allclose(view.residual[good], fit_residual[good], rtol=0, atol=1e-5 * scale)
    # the catalog re-rendered through the pixelized ePSF would not be this model
    base = patch_view(roi_box(patch), tag, baseline["merged_catalog"], upstream.frames,
                      upstream.bright_mask[0], baseline["patch_models"])
    assert np.abs(base.model - view.model).max() > 1e-3 * scale
