"""PSF-star selection modes: SEP only, GaiaXP only, and no GaiaXP file."""

from __future__ import annotations

import dataclasses
import logging

import pandas as pd
from psf_field import EPSF_TEST_PARAMS, FEW_STAR_CELL

from phot7dt.datasets.psf_grid_dataset import PSFGridDataset
from phot7dt.pipelines.psf.nodes import build_epsf

GOOD = [(0, 0), (0, 1), (1, 0)]


def run(field, gaia, bands=1, **overrides):
    """build_epsf on the first ``bands`` bands of the field."""
    frames = dataclasses.replace(field.frames, frames=field.frames.frames[:bands])
    epsf = EPSF_TEST_PARAMS | {"save_patch_background_diagnostics": False} | overrides
    return build_epsf(frames, field.flagged_catalog, gaia, epsf, {}, {})


def origins(qa) -> set[str]:
    frames = [r.candidates for r in qa if len(r.candidates)]
    used = pd.concat(frames)
    return set(used.loc[used["reason"] == "", "origin"])


def test_sep_only_uses_sep_detections(psf_field):
    grid, summary, qa = run(psf_field, psf_field.gaiaxp, psfstar_mode="sep")
    assert origins(qa) == {"sep"}
    assert (summary["nstars_seed"] == 0).all()
    assert all(grid.choice(b, r, c).model == "epsf" for b in grid.bands for r, c in GOOD)


def test_gaia_only_uses_gaia_seeds(psf_field):
    grid, summary, qa = run(psf_field, psf_field.gaiaxp, psfstar_mode="gaia")
    assert origins(qa) == {"gaia"}
    assert all(grid.choice(b, r, c).model == "epsf" for b in grid.bands for r, c in GOOD)


def test_without_gaiaxp_file_sep_gaia_mode_uses_sep(psf_field, caplog):
    caplog.set_level(logging.WARNING)
    grid, _, qa = run(psf_field, None)
    assert origins(qa) == {"sep"}
    assert "no GaiaXP rows" in caplog.text
    assert all(grid.choice(b, r, c).model == "epsf" for b in grid.bands for r, c in GOOD)


def test_use_gaiaxp_false_ignores_the_catalog(psf_field):
    _, summary, _ = run(psf_field, psf_field.gaiaxp, use_gaiaxp=False)
    assert (summary["nstars_seed"] == 0).all()


def test_gaia_mode_without_gaiaxp_falls_back_everywhere(psf_field):
    grid, summary, _ = run(psf_field, pd.DataFrame(columns=["ra", "dec"]), psfstar_mode="gaia")
    assert set(summary["status"]) == {"no_stars"}
    for _, choice in grid.items():
        assert choice.model == "moffat" and choice.fallback_level == "header"
        assert choice.reason.startswith("no usable PSF star in the cell")
        assert "no usable PSF star in the band" in choice.reason


def test_band_without_gaiaxp_column_uses_sep(psf_field, caplog):
    caplog.set_level(logging.WARNING)
    gaia = psf_field.gaiaxp.drop(columns="mag_m650")
    _, summary, _ = run(psf_field, gaia, bands=2)
    assert "mag_m650" in caplog.text
    assert (summary.loc[summary.band == "m650", "nstars_seed"] == 0).all()
    assert (summary.loc[summary.band == "m500", "nstars_seed"] > 0).all()


def test_skip_empty_cells(psf_field, tmp_path):
    r, c = FEW_STAR_CELL
    catalog = psf_field.flagged_catalog.copy()
    in_cell = (catalog.x_pix_white >= 200 * c) & (catalog.y_pix_white >= 200 * r)
    catalog.loc[in_cell, "excluded_any"] = True
    psf_field = dataclasses.replace(psf_field, flagged_catalog=catalog)
    grid, summary, qa = run(psf_field, psf_field.gaiaxp)
    skipped = summary[summary.cell == "r01_c01"]
    assert (skipped.status == "skipped").all()
    assert "not built" in grid.choice("m500", r, c).reason
    assert all((q.row, q.col) != FEW_STAR_CELL for q in qa)
    dataset = PSFGridDataset(filepath=str(tmp_path / "epsf"))
    dataset.save(grid)
    loaded = dataset.load()
    assert loaded == grid
    assert loaded.qa[("m500", r, c)]["epsf_fwhm_pix"] is None
