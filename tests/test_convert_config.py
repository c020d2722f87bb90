"""tract7dt 0.7 YAML -> phot7dt run config (``python -m phot7dt.convert_config``)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml
from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf

from phot7dt.config import registered_sections, validate_parameters
from phot7dt.convert_config import CONF_SOURCE, convert, main
from phot7dt.convert_config_keys import (
    INPUT_PATHS,
    key_table,
    not_applied_reason,
    tract7dt_paths,
)

FIXTURE = Path(__file__).parent / "fixtures" / "tract7dt_sample_config.yaml"
ROOT = Path(__file__).resolve().parents[1]


def _flat_keys(node: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in node.items():
        path = f"{prefix}{key}"
        keys |= _flat_keys(value, f"{path}.") if isinstance(value, dict) else {path}
    return keys


def _write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "tract7dt.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_fixture_holds_every_tract7dt_key():
    fixture = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))
    assert _flat_keys(fixture) == set(tract7dt_paths())


def test_every_tract7dt_key_is_mapped_or_has_a_reason():
    sections = registered_sections()
    for path in tract7dt_paths():
        if path in INPUT_PATHS or not_applied_reason(path):
            continue
        section, _, key = path.partition(".")
        model = sections[section]
        for part in key.split("."):
            assert part in model.model_fields, path
            model = model.model_fields[part].annotation


def test_inputs_are_absolute_against_the_yaml_folder():
    params = convert(FIXTURE)["run"]["params"]
    folder = FIXTURE.parent.resolve()
    assert params["input_catalog"] == str(folder / "field" / "catalog.csv")
    assert params["image_list"] == str(folder / "field" / "image_list.txt")
    assert params["gaiaxp_synphot"] == str(folder / "field" / "gaiaxp_synphot.csv")
    assert params["work_dir"] == str(folder / "runs" / "T01234")
    assert params["merge"] == {"wcs_fits": str(folder / "field" / "wcs_reference.fits")}


def test_section_keys_land_in_params_with_their_values():
    run = convert(FIXTURE)["run"]
    params = run["params"]
    assert run["pipelines"] == "full"
    assert params["image_scaling"] == {"zp_ref": 23.9}
    assert params["epsf"]["epsf_ngrid"] == 3
    assert params["epsf"]["q_range"] == [0.8, 1.25]
    assert params["patch_run"]["gal_model"] == "dev"
    assert params["patch_run"]["cutout_max_sources"] == 10
    assert params["checks"]["wcs_tolerance"] == {
        "crval": 2.0e-6,
        "crpix": 1.0e-5,
        "cd": 1.0e-9,
        "cdelt": 1.0e-9,
    }
    assert params["crop"]["overlay_crop_box"] == [100, 600, 200, 700]
    assert params["zp"]["min_box_size_pix"] == 800
    assert params["performance"] == {"white_stack_workers": 2}
    assert params["patch_inputs"] == {"skip_empty_patch": True}
    assert params["moffat_psf"] == {"beta": 3.0, "radius_pix": 20.0}


def test_keys_that_do_not_apply_warn_once_each_and_are_dropped(caplog):
    caplog.set_level(logging.INFO, logger="phot7dt")
    params = convert(FIXTURE)["run"]["params"]
    dropped = [m for m in _warnings(caplog) if "does not apply to phot7dt" in m]
    expected = [p for p in tract7dt_paths() if not_applied_reason(p)]
    assert sorted(m.split(":")[0] for m in dropped) == sorted(expected)
    for path in ("patch_run.python_exe", "logging.level", "performance.frame_prep_workers"):
        assert any(m.startswith(f"{path}: ") for m in dropped), path
    assert "logging" not in params and "python_exe" not in params["patch_run"]


def test_unknown_keys_warn_and_do_not_stop_the_conversion(tmp_path, caplog):
    config = {
        "crop": {"marign": 30, "margin": 40},
        "checks": {"wcs_tolerance": {"crvall": 1.0}},
        "colour_terms": {"a": 1},
    }
    params = convert(_write(tmp_path, config))["run"]["params"]
    messages = _warnings(caplog)
    for path in ("crop.marign", "checks.wcs_tolerance.crvall", "colour_terms"):
        assert any(m.startswith(f"{path}: unknown") for m in messages), path
    assert params["crop"] == {"margin": 40}
    assert "colour_terms" not in params


def test_missing_input_files_warn_naming_the_key(tmp_path, caplog):
    (tmp_path / "cat.csv").write_text("ID,RA,DEC\n", encoding="utf-8")
    config = {"inputs": {"input_catalog": "cat.csv", "image_list_file": "nowhere/list.txt"}}
    convert(_write(tmp_path, config))
    messages = _warnings(caplog)
    assert any(m.startswith("inputs.image_list_file: ") and "does not exist" in m for m in messages)
    assert not any(m.startswith("inputs.input_catalog: ") for m in messages)
    assert any(m.startswith("outputs.work_dir: not given") for m in messages)


def test_null_gaiaxp_runs_without_zero_points(tmp_path, caplog):
    config = {"inputs": {"gaiaxp_synphot_csv": None}, "zp": {"clip_sigma": 2.0}}
    params = convert(_write(tmp_path, config))["run"]["params"]
    assert params["gaiaxp_synphot"] == "none"
    assert params["zp"] == {"clip_sigma": 2.0, "enabled": False}
    assert any(m.startswith("inputs.gaiaxp_synphot_csv: null") for m in _warnings(caplog))


@pytest.mark.parametrize(
    ("section", "value", "expected"),
    [
        ({"epsf": {"epsf_ngrid": "many"}}, "epsf.epsf_ngrid", "valid integer"),
        ({"crop": {"margin": -5}}, "crop.margin", "greater than or equal to 0"),
        ({"checks": {"wcs_tolerance": {"cd": "tight"}}}, "checks.wcs_tolerance.cd", "valid number"),
    ],
)
def test_a_bad_value_exits_2_naming_the_key_path(tmp_path, caplog, section, value, expected):
    source = _write(tmp_path, section)
    out = tmp_path / "tile.yml"
    assert main([str(source), "-o", str(out)]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0]
    assert str(source) in errors[0] and value in errors[0] and expected in errors[0]
    assert not out.exists()


def test_round_trip_validates_over_conf_base(tmp_path):
    out = tmp_path / "tile.yml"
    assert main([str(FIXTURE), "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert f"# converted from the tract7dt config {FIXTURE.resolve()}" in text
    run = OmegaConf.to_container(OmegaConf.load(out))["run"]  # as `kedro run --config` reads it
    assert run["pipelines"] == "full"
    loader = OmegaConfigLoader(
        str(CONF_SOURCE),
        base_env="base",
        default_run_env="base",
        runtime_params=run["params"],
        merge_strategy={"parameters": "soft"},
    )
    merged = loader["parameters"]
    validated = validate_parameters(merged)
    assert validated["epsf"].epsf_ngrid == 3  # the override
    assert validated["epsf"].builder == "stack"  # a phot7dt default the file does not name
    assert validated["checks"].wcs_tolerance.crpix == pytest.approx(1.0e-5)
    assert merged["image_list"] == str(FIXTURE.parent.resolve() / "field" / "image_list.txt")


def test_output_file_is_kept_unless_forced(tmp_path, caplog):
    out = tmp_path / "tile.yml"
    out.write_text("mine\n", encoding="utf-8")
    assert main([str(FIXTURE), "-o", str(out)]) == 2
    assert out.read_text(encoding="utf-8") == "mine\n"
    assert any("--force" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    assert main([str(FIXTURE), "-o", str(out), "--force"]) == 0
    assert out.read_text(encoding="utf-8").startswith("# phot7dt run config")


def test_docs_hold_the_generated_key_table(capsys):
    assert main(["--list-keys"]) == 0
    table = capsys.readouterr().out
    assert table == key_table()
    for path in ("patch_run.python_exe", "logging.*", "inputs.image_list_file"):
        assert f"| `{path}` |" in table
    docs = (ROOT / "docs" / "migrating-from-tract7dt.md").read_text(encoding="utf-8")
    assert table in docs, "regenerate: python -m phot7dt.convert_config --list-keys"
