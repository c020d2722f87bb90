"""Turn a tract7dt 0.7 YAML configuration into a phot7dt run config.

``python -m phot7dt.convert_config tract7dt.yaml > tile.yml`` (or ``-o tile.yml``)
writes the file ``kedro run --config tile.yml`` reads: ``run.pipelines: full`` and
``run.params`` holding the inputs, ``work_dir`` and every parameter section of the
tract7dt file. Relative input paths are resolved against the YAML file's folder, as
tract7dt does, and written absolute. Keys that do not apply to phot7dt and keys
neither program knows are dropped with one warning each (see
:mod:`phot7dt.convert_config_keys`); the result is validated against the parameter
models over ``conf/base`` before it is written. ``--list-keys`` prints the mapping
as a Markdown table.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from kedro.config import OmegaConfigLoader
from pydantic import BaseModel

from phot7dt import __version__
from phot7dt.config import ParameterError, registered_sections, validate_parameters
from phot7dt.convert_config_keys import (
    CONFIG_RELATIVE_PATHS,
    INPUT_PATHS,
    NOT_APPLIED,
    NOTES,
    TRACT7DT_KEYS,
    is_tract7dt_key,
    key_table,
    not_applied_reason,
)
from phot7dt.project_paths import conf_source

logger = logging.getLogger(__name__)

#: The project's configuration folder (``conf/base`` holds the parameter defaults).
CONF_SOURCE = conf_source()
_INPUT_SECTIONS = ("inputs", "outputs")


class ConversionError(ValueError):
    """The tract7dt file cannot be converted (unreadable, bad value, output exists)."""


def load_tract7dt(path: Path) -> dict[str, Any]:
    """The tract7dt YAML at ``path`` as a dict (``{}`` for an empty file)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConversionError(f"{path}: cannot read a YAML mapping ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConversionError(f"{path}: expected a YAML mapping of sections, got {data!r}")
    return data


def _absolute(value: Any, base: Path, key: str) -> str:
    """``value`` as an absolute path, relative ones taken from ``base`` (tract7dt's rule)."""
    if not isinstance(value, str | Path) or not str(value).strip():
        raise ConversionError(f"{key}: expected a file path, got {value!r}")
    path = Path(value).expanduser()
    return str((path if path.is_absolute() else base / path).resolve())


def _inputs(section: str, node: Mapping, base: Path, params: dict[str, Any]) -> None:
    """Copy the input/output paths of tract7dt's ``inputs`` or ``outputs`` section."""
    for key, value in node.items():
        path = f"{section}.{key}"
        if path in INPUT_PATHS:
            if path == "inputs.gaiaxp_synphot_csv" and value is None:
                params["gaiaxp_synphot"] = "none"
                continue
            params[INPUT_PATHS[path]] = _absolute(value, base, path)
        else:
            _drop(path)


def _drop(path: str) -> None:
    """Warn that the key ``path`` is left out of the run config, and why."""
    reason = not_applied_reason(path)
    if reason is not None:
        logger.warning("%s: does not apply to phot7dt, dropped: %s", path, reason)
    elif is_tract7dt_key(path):
        logger.warning("%s: a tract7dt key phot7dt does not model; dropped", path)
    else:
        logger.warning("%s: unknown key (neither tract7dt 0.7 nor phot7dt has it); dropped", path)


def _nested_model(model: type[BaseModel], key: str) -> type[BaseModel] | None:
    annotation = model.model_fields[key].annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _section(prefix: str, node: Mapping, model: type[BaseModel], base: Path) -> dict[str, Any]:
    """The keys of one section phot7dt models, copied; the others dropped with a warning."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        path = f"{prefix}.{key}"
        if not_applied_reason(path) is not None or key not in model.model_fields:
            _drop(path)
            continue
        nested = _nested_model(model, key)
        if nested is not None and isinstance(value, Mapping):
            out[key] = _section(path, value, nested, base)
            continue
        if path in CONFIG_RELATIVE_PATHS and value is not None:
            value = _absolute(value, base, path)
            if not Path(value).is_file():
                logger.warning("%s: %s does not exist (the run checks it again)", path, value)
        if path in NOTES and value is not None:
            logger.info("%s: %s", path, NOTES[path])
        out[key] = value
    return out


def _check_inputs(params: dict[str, Any]) -> None:
    """Warn about inputs that are absent from the tract7dt file or missing on disk."""
    for tract_key, name in INPUT_PATHS.items():
        value = params.get(name)
        if value is None:
            logger.warning(
                "%s: not given; add run.params.%s to the run config before running", tract_key, name
            )
        elif name != "work_dir" and value != "none" and not Path(value).is_file():
            logger.warning("%s: %s does not exist (the run checks it again)", tract_key, value)


def _no_gaiaxp(params: dict[str, Any]) -> None:
    """Without a GaiaXP table phot7dt cannot calibrate: switch the zero points off."""
    zp = params.setdefault("zp", {})
    if zp.get("enabled", True) is not False:
        logger.warning(
            "inputs.gaiaxp_synphot_csv: null or absent, so gaiaxp_synphot is `none` and "
            "zp.enabled is set to false (zero points need the GaiaXP table)"
        )
        zp["enabled"] = False


def to_run_params(config: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """The nested ``run.params`` of a tract7dt configuration whose folder is ``base``."""
    params: dict[str, Any] = {}
    sections = registered_sections()
    for name, node in config.items():
        if name not in sections and f"{name}.*" in NOT_APPLIED:
            for key in node if isinstance(node, Mapping) else ["*"]:
                _drop(f"{name}.{key}")
            continue
        if name not in sections and name not in _INPUT_SECTIONS:
            logger.warning(
                "%s: unknown section (neither tract7dt 0.7 nor phot7dt has it); dropped", name
            )
            continue
        if not isinstance(node, Mapping):
            raise ConversionError(f"{name}: expected a mapping of keys, got {node!r}")
        if name in _INPUT_SECTIONS:
            _inputs(name, node, base, params)
        elif copied := _section(name, node, sections[name], base):
            params[name] = copied
    if params.get("gaiaxp_synphot", "none") == "none":
        params.setdefault("gaiaxp_synphot", "none")
        _no_gaiaxp(params)
    _check_inputs(params)
    return _ordered(params)


def _ordered(params: dict[str, Any]) -> dict[str, Any]:
    """Inputs first, then the sections in tract7dt's order, then phot7dt's own."""
    rank = {name: i for i, name in enumerate([*INPUT_PATHS.values(), *TRACT7DT_KEYS])}
    return dict(sorted(params.items(), key=lambda kv: rank.get(kv[0], len(rank))))


def validate_run_params(params: Mapping[str, Any], conf_source: Path = CONF_SOURCE) -> None:
    """Merge ``params`` over ``conf_source``'s base parameters as ``kedro run`` does; validate.

    Raises
    ------
    ConversionError
        Naming every rejected key path, what was expected and what was given.
    """
    if not (conf_source / "base").is_dir():
        raise ConversionError(f"{conf_source}: no base/ folder here; pass --conf-source")
    with warnings.catch_warnings():  # OmegaConf's resolver-API deprecation, not the user's
        warnings.simplefilter("ignore", UserWarning)
        loader = OmegaConfigLoader(
            str(conf_source),
            base_env="base",
            default_run_env="base",
            runtime_params=dict(params),
            merge_strategy={"parameters": "soft"},
        )
        parameters = loader["parameters"]
    try:
        validate_parameters(parameters)
    except ParameterError as exc:
        raise ConversionError(str(exc)) from None


def convert(source: Path, conf_source: Path = CONF_SOURCE) -> dict[str, Any]:
    """The run config (``{"run": {"pipelines": "full", "params": ...}}``) of a tract7dt file."""
    source = source.expanduser().resolve()
    params = to_run_params(load_tract7dt(source), source.parent)
    try:
        validate_run_params(params, conf_source)
    except ConversionError as exc:
        raise ConversionError(f"{source}: {exc}") from None
    return {"run": {"pipelines": "full", "params": params}}


class _Dumper(yaml.SafeDumper):
    """Block style for mappings, flow style (``[a, b]``) for lists of plain values."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flat = all(not isinstance(item, list | dict) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_Dumper.add_representer(list, _represent_list)


def render(run_config: Mapping[str, Any], source: Path, when: datetime) -> str:
    """The run config as YAML text with a header naming the source file and the date."""
    header = (
        "# phot7dt run config for one tile: kedro run --config <this file>\n"
        f"# converted from the tract7dt config {source.expanduser().resolve()}\n"
        f"# on {when:%Y-%m-%d %H:%M %Z} by python -m phot7dt.convert_config "
        f"(phot7dt {__version__}).\n"
        "# Every key is described in docs/parameters.md.\n"
    )
    return header + yaml.dump(dict(run_config), Dumper=_Dumper, sort_keys=False)


def _write_new(path: Path, text: str, force: bool) -> None:
    """Write ``text`` to ``path`` atomically; an existing file only with ``force``."""
    import fsspec

    from phot7dt.datasets._files import write_atomically

    if path.exists() and not force:
        raise ConversionError(f"{path}: exists; pass --force to replace it")
    write_atomically(fsspec.filesystem("file"), "file", str(path), lambda s: s.write(text.encode()))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m phot7dt.convert_config",
        description="Convert a tract7dt 0.7 YAML config into a `kedro run --config` file.",
    )
    parser.add_argument("config", nargs="?", type=Path, help="tract7dt YAML configuration")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    parser.add_argument("--force", action="store_true", help="replace an existing --output file")
    parser.add_argument("--conf-source", type=Path, default=CONF_SOURCE,
                        help="phot7dt conf folder whose base/ parameters validate the result")
    parser.add_argument("--list-keys", action="store_true",
                        help="print how every tract7dt key maps (Markdown) and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 when conversion fails)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
    if args.list_keys:
        sys.stdout.write(key_table())
        return 0
    if args.config is None:
        _parser().error("the tract7dt config file is required (or --list-keys)")
    try:
        text = render(convert(args.config, args.conf_source), args.config, datetime.now(UTC))
        if args.output is None:
            sys.stdout.write(text)
        else:
            _write_new(args.output, text, args.force)
            logger.info("wrote %s", args.output)
    except ConversionError as exc:
        logger.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
