"""A tile run as users start it: ``kedro run --config tile.yml``, inputs never defaulted.

The command-line tests run ``kedro`` in a subprocess from the project folder, as users do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits
from astropy.table import Table

from phot7dt.run_inputs import MissingRunInputError, check_run_inputs, missing_run_inputs

ROOT = Path(__file__).resolve().parents[1]
KEDRO = [sys.executable, "-m", "kedro"]
ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg",
       "KEDRO_LOGGING_CONFIG": str(ROOT / "conf" / "logging.yml")}

#: Parameters for an 80x64 px field (a real tile uses conf/base as it is).
TINY_FIELD_PARAMS = {
    "crop": {"margin": 4},
    "epsf": {"epsf_ngrid": 1, "ngrid": 1},
    "zp": {"enabled": False},
    "plotting": {"dpi": 40},
}


def _kedro(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*KEDRO, "run", *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_missing_inputs_are_named_from_the_catalog_configuration():
    configs = {
        "input_catalog_raw": {"filepath": "/p/__required__/input_catalog"},
        "merged": {"dataset": {"filepath": "/p/__required__/work_dir/07/x.csv"}},
        "given": {"filepath": "/data/tile/catalog.csv"},
    }
    assert missing_run_inputs(["input_catalog_raw", "merged", "given"], configs) == [
        "input_catalog", "work_dir"]
    assert missing_run_inputs(["given", "params:crop"], configs) == []
    with pytest.raises(MissingRunInputError, match=r"^missing run input\(s\): work_dir - .*"
                       r"--params \"work_dir=/abs/path\""):
        check_run_inputs(["merged"], configs)


@pytest.mark.xdist_group("kedro_cli")
def test_a_run_without_its_inputs_stops_before_any_work_and_never_reads_the_sample(tmp_path):
    work = tmp_path / "work"
    done = _kedro("--pipeline", "full", "--params", f"work_dir={work}", timeout=300)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "missing run input(s): gaiaxp_synphot, image_list, input_catalog" in last
    assert "-e sample" in last
    assert not work.exists(), "nothing may be written before the inputs are checked"
    assert "01_raw/sample" not in done.stderr  # the sample field is never a fallback

    rerun = _kedro("--pipeline", "full", "--from-nodes", "build_epsf", timeout=300)
    assert rerun.returncode != 0
    last = rerun.stderr.strip().splitlines()[-1]
    assert "missing run input(s):" in last and "work_dir" in last


@pytest.mark.xdist_group("kedro_cli")
def test_a_tile_runs_from_one_config_file(tiny_field, tmp_path):
    work = tmp_path / "out"
    config = {"run": {"pipelines": "full", "params": {
        "input_catalog": str(tiny_field.catalog_csv),
        "image_list": str(tiny_field.image_list),
        "gaiaxp_synphot": "none",
        "work_dir": str(work),
        **TINY_FIELD_PARAMS,
    }}}
    tile = tmp_path / "tile.yml"
    tile.write_text(yaml.safe_dump(config))
    done = _kedro("--config", str(tile))
    assert done.returncode == 0, done.stderr[-3000:]

    for path in ("07_model_output/output_catalog.csv", "07_model_output/output_catalog.fits",
                 "07_model_output/output_catalog.parquet", "08_reporting/report.html",
                 "run.log", "run_manifest.json", "07_model_output/run_parameters.yml"):
        assert (work / path).is_file(), path
    manifest = json.loads((work / "run_manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["error"] is None
    assert manifest["pipeline"] == "full" and manifest["ended_utc"]
    listed = {Path(item["path"]).name for item in manifest["inputs"]}
    assert listed == {"catalog.csv", "image_list.txt", *(f"{b}.fits" for b in tiny_field.bands)}
    image = next(i for i in manifest["inputs"] if i["path"].endswith("m400.fits"))
    assert image["bytes"] == tiny_field.fits_paths["m400"].stat().st_size
    assert len(image["sha256"]) == 64
    assert "fit_patches" in (work / "run.log").read_text()

    table = Table.read(work / "07_model_output/output_catalog.fits")
    table.convert_bytestring_to_unicode()
    header = fits.getheader(work / "07_model_output/output_catalog.fits", 1)
    assert table.meta["PARHASH"] == manifest["parameters_sha256"]
    assert table.meta["NINPUT"] == len(manifest["inputs"])
    assert str(table["RA_fit"].unit) == "deg" and str(table["MAG_m400_fit"].unit) == "mag"
    assert str(table["FLUX_m400_uJy"].unit) == "uJy"
    assert str(table["Re_fit"].unit) == "pix"
    comments = {header[f"TTYPE{i}"]: header.get(f"TCOMM{i}")
                for i in range(1, len(table.colnames) + 1)}
    assert all(comments.values()), [k for k, v in comments.items() if not v]

    # µJy against the truth: zp disabled, so the zero point is the nominal zp_ref (25 mag);
    # the tiny field's few-star PSF fits its Gaussian sources to ~10 %, a wrong
    # convention (sign, 23.9 vs 25) is off by a factor 2.8 or more
    truth = tiny_field.sources.set_index("ID")
    rows = table.to_pandas().set_index("ID").loc[["001", "002", "003", "004"]]
    expected = truth.loc[rows.index, "flux"] * 10 ** (0.4 * (23.9 - 25.0))
    np.testing.assert_allclose(rows["FLUX_m400_uJy"] / expected, 1.0, atol=0.15)
    ratio = rows["FLUXERR_m400_uJy"] / rows["FLUXERR_m400_fit"]
    np.testing.assert_allclose(ratio, 10 ** (0.4 * (23.9 - 25.0)), rtol=1e-12)
    mags = rows["MAG_m400_fit"]
    np.testing.assert_allclose(23.9 - 2.5 * np.log10(rows["FLUX_m400_uJy"]), mags, atol=1e-9)
    parquet = Table.read(work / "07_model_output/output_catalog.parquet")
    assert str(parquet["FLUX_m400_uJy"].unit) == "uJy"
    assert parquet.meta["PARHASH"] == manifest["parameters_sha256"]
    html = (work / "08_reporting/report.html").read_text()
    assert "Provenance" in html and manifest["parameters_sha256"] in html


def test_the_example_run_file_validates_over_conf_base():
    from kedro.config import OmegaConfigLoader

    from phot7dt.config import validate_parameters

    run = yaml.safe_load((ROOT / "examples" / "tile.yml").read_text())["run"]
    assert run["pipelines"] == "full"
    loader = OmegaConfigLoader(str(ROOT / "conf"), base_env="base", default_run_env="local",
                               runtime_params=run["params"], merge_strategy={"parameters": "soft"})
    validated = validate_parameters(loader["parameters"])
    assert validated["zp"].clip_sigma == run["params"]["zp"]["clip_sigma"]
    assert {"input_catalog", "image_list", "gaiaxp_synphot", "work_dir"} <= set(run["params"])
