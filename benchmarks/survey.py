"""Wall time of a 4-tile simulated survey on 2 dask workers against 4 single-tile runs in a row,
and the agreement of the duplicated measurements in the tile overlaps.

Four tiles of the ``small`` preset (400 x 400 px, 4 bands, 2 x 2 grid, 120 px overlaps) are
simulated once; then each tile runs ``kedro run --pipeline full`` in turn (patch fits on
``--workers`` processes), and the survey runs the same tiles on a LocalCluster of
``--workers`` workers (one tile each, one patch process per tile). Both use the same tile
parameters. Results go to ``benchmarks/results/survey.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "src"))
from phot7dt.pipelines.simulate.survey import simulate_survey  # noqa: E402
from phot7dt.pipelines.survey.qa import overlap_pulls  # noqa: E402

TILE_PARAMS = "crop.margin=20,epsf.epsf_ngrid=1,epsf.ngrid=3"
SIMULATE = {"preset": "small", "seed": 21}
SURVEY = {"n_tiles": 4, "columns": 2, "overlap_pix": 120, "tile_params": TILE_PARAMS}


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "1",
        "MPLBACKEND": "Agg",
        "KEDRO_LOGGING_CONFIG": str(PROJECT / "conf" / "logging.yml"),
    }


def _kedro(args: list[str], log: Path) -> float:
    start = time.perf_counter()
    with log.open("w") as stream:
        code = subprocess.call(
            [sys.executable, "-m", "kedro", "run", *args],
            cwd=PROJECT,
            env=_env(),
            stdout=stream,
            stderr=subprocess.STDOUT,
        )
    if code:
        raise SystemExit(f"kedro run {' '.join(args)} failed (exit {code}); see {log}")
    return time.perf_counter() - start


def serial(manifest: pd.DataFrame, out: Path, workers: int) -> float:
    """Seconds for the tiles' full runs one after the other."""
    out.mkdir(parents=True, exist_ok=True)
    total = 0.0
    for row in manifest.itertuples():
        params = (
            f"{TILE_PARAMS},patch_run.max_workers={workers},input_catalog={row.input_catalog},"
            f"image_list={row.image_list},gaiaxp_synphot={row.gaiaxp_synphot},"
            f"work_dir={out / row.tile}"
        )
        total += _kedro(["--pipeline", "full", "--params", params], out / f"{row.tile}.log")
    return total


def pull_stats(catalog: pd.DataFrame) -> dict:
    bands = [c[5:-4] for c in catalog.columns if c.startswith("FLUX_") and c.endswith("_uJy")]
    per_band = {b: overlap_pulls(catalog, b) for b in bands}
    pooled = np.concatenate(list(per_band.values()))
    pooled = pooled[np.isfinite(pooled)]

    def stats(p: np.ndarray) -> dict:
        p = p[np.isfinite(p)]
        return {
            "n_pairs": int(len(p)),
            "median": round(float(np.median(p)), 3),
            "std": round(float(np.std(p, ddof=1)), 3),
            "mad_std": round(float(1.4826 * np.median(np.abs(p - np.median(p)))), 3),
        }

    return {"pooled": stats(pooled), "per_band": {b: stats(p) for b, p in per_band.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=PROJECT / "benchmarks/results/survey.json")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="keep the tiles and runs here (default: a temporary folder)",
    )
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="phot7dt_survey_") as tmp:
        root = (opts.work_dir or Path(tmp)).absolute()
        manifest = simulate_survey(SIMULATE, SURVEY, str(root / "raw"))
        manifest.to_csv(root / "raw" / "tiles.csv", index=False)
        load_before = os.getloadavg()[0]
        serial_s = serial(manifest, root / "serial", opts.workers)
        params = (
            f"survey.manifest={root / 'raw' / 'tiles.csv'},work_dir={root / 'survey'},"
            f"survey.n_workers={opts.workers}"
        )
        survey_s = _kedro(["--pipeline", "survey", "--params", params], root / "survey.log")
        catalog = pd.read_csv(
            root / "survey" / "survey" / "survey_catalog.csv", dtype={"ID": str, "TILE": str}
        )
        result = {
            "tiles": "4 x small preset (400 x 400 px, 4 bands), 2 x 2 grid, 120 px overlaps",
            "tile_params": TILE_PARAMS,
            "workers": opts.workers,
            "cpus": os.cpu_count(),
            "load_average_before": round(load_before, 2),
            "load_average_after": round(os.getloadavg()[0], 2),
            "serial_seconds": round(serial_s, 1),
            "survey_seconds": round(survey_s, 1),
            "speedup": round(serial_s / survey_s, 2),
            "catalog_rows": len(catalog),
            "primary_sources": int(catalog["survey_primary"].sum()),
            "sources_in_two_or_more_tiles": int(
                (catalog.loc[catalog["survey_primary"], "survey_n_meas"] > 1).sum()
            ),
            "duplicate_pulls": pull_stats(catalog),
        }
    opts.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))  # noqa: T201 - a command-line report
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
