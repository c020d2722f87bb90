"""A tiny simulated survey (three 300x300 px tiles in a row, 3 bands) and how to run it."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from phot7dt.pipelines.simulate.survey import simulate_survey

PROJECT = Path(__file__).resolve().parents[3]
#: Small, quick tile runs: 20 px crop margin, one ePSF cell of 2x2 patches, few plots.
TILE_PARAMS = ",".join(
    [
        "crop.margin=20",
        "crop.plot_pre_crop=false",
        "crop.overlay_catalog=false",
        "plotting.dpi=40",
        "epsf.epsf_ngrid=1",
        "epsf.ngrid=2",
        "epsf.max_workers=1",
        "epsf.save_epsf_montage=false",
        "epsf.save_patch_background_diagnostics=false",
        "epsf.save_growth_curve=false",
        "epsf.save_residual_diagnostics=false",
        "report.residual_n_stars=1",
        "report.residual_n_galaxies=1",
    ]
)
SIMULATE = {
    "preset": "small",
    "seed": 5,
    "width": 300,
    "height": 300,
    "bands": ["m400", "m550", "m625"],
    "psf_star_grid": 4,
    "n_field_stars": 5,
    "n_galaxies": 12,
    "n_blends": 2,
    "n_saturated": 0,
    "n_unlisted": 1,
    "n_gaia_stars": 6,
}
SURVEY = {"n_tiles": 3, "columns": 3, "overlap_pix": 120, "tile_params": TILE_PARAMS}
BROKEN = "t03_broken"


@dataclasses.dataclass(frozen=True)
class SurveyField:
    """Paths of the simulated survey: the sky truth and two manifests."""

    raw: Path
    manifest: Path  # the three tiles
    manifest_broken: Path  # the three tiles and one whose image list names a missing image
    truth: pd.DataFrame


def write_survey_field(raw: Path) -> SurveyField:
    """Simulate the three tiles under ``raw`` and write both manifests."""
    table = simulate_survey(SIMULATE, SURVEY, str(raw))
    table.to_csv(raw / "tiles.csv", index=False)
    broken = raw / BROKEN
    shutil.copytree(raw / "t02", broken)
    (broken / "m550.fits").unlink()
    row = table.iloc[-1].copy()
    row["tile"] = BROKEN
    for column in ("input_catalog", "image_list", "gaiaxp_synphot"):
        row[column] = str(broken / Path(row[column]).name)
    pd.concat([table, row.to_frame().T]).to_csv(raw / "tiles_broken.csv", index=False)
    truth = pd.read_csv(
        raw / "truth.csv",
        dtype={"ID": str, "gaia_source_id": str, "tiles": str},
        keep_default_na=False,
    )
    return SurveyField(raw, raw / "tiles.csv", raw / "tiles_broken.csv", truth)


def survey_command(manifest: Path, root: Path, extra: str = "") -> list[str]:
    """``kedro run --pipeline survey`` of ``manifest`` into ``root`` on 2 local workers."""
    params = f"survey.manifest={manifest},work_dir={root},survey.n_workers=2{extra}"
    return [sys.executable, "-m", "kedro", "run", "--pipeline", "survey", "--params", params]


def survey_env() -> dict[str, str]:
    return {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "1",
        "MPLBACKEND": "Agg",
        "KEDRO_LOGGING_CONFIG": str(PROJECT / "conf" / "logging.yml"),
    }


def start_survey(manifest: Path, root: Path, **popen_args) -> subprocess.Popen:
    """The survey CLI started in the background, its output discarded."""
    return subprocess.Popen(
        survey_command(manifest, root),
        cwd=PROJECT,
        env=survey_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **popen_args,
    )


def run_survey(manifest: Path, root: Path, extra: str = "") -> subprocess.CompletedProcess:
    """Run the survey CLI to its end (30 min at most)."""
    return subprocess.run(
        survey_command(manifest, root, extra),
        cwd=PROJECT,
        env=survey_env(),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


def read_catalog(root: Path) -> pd.DataFrame:
    """The survey catalog, rows in (TILE, ID) order."""
    table = pd.read_csv(
        root / "survey" / "survey_catalog.csv",
        dtype={"TILE": str, "ID": str, "gaia_source_id": str},
    )
    return table.sort_values(["TILE", "ID"]).reset_index(drop=True)
