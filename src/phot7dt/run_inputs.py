"""A run's inputs: which ones it must be given, and which files it reads.

``conf/base/globals.yml`` sets every input path and ``work_dir`` to
``__required__/<name>``, so a run that needs one that was not given (run config,
``--params`` or ``conf/local/globals.yml``; the sample field with ``-e sample``)
stops before any work with :class:`MissingRunInputError` naming it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "RAW_INPUTS",
    "MissingRunInputError",
    "check_run_inputs",
    "input_files",
    "missing_run_inputs",
]

#: Marker of a path that has no default (conf/base/globals.yml).
REQUIRED = "__required__"
_MARKER = re.compile(REQUIRED + r"/(\w+)")

#: The tile's raw inputs: catalog dataset name -> parameter that gives its path.
RAW_INPUTS = {
    "input_catalog_raw": "input_catalog",
    "raw_frames": "image_list",
    "gaiaxp_synphot": "gaiaxp_synphot",
}


class MissingRunInputError(ValueError):
    """A run needs an input path or ``work_dir`` that was not given."""


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def missing_run_inputs(dataset_names: Iterable[str], configs: Mapping[str, Any]) -> list[str]:
    """Parameters (``input_catalog``, ``work_dir``, ...) that the datasets
    ``dataset_names`` need and that were not given, in sorted order.

    ``configs`` maps dataset names to their resolved catalog configuration.
    """
    missing = set()
    for name in dataset_names:
        for text in _strings(configs.get(name, {})):
            missing.update(_MARKER.findall(text))
    return sorted(missing)


def check_run_inputs(dataset_names: Iterable[str], configs: Mapping[str, Any]) -> None:
    """Raise :class:`MissingRunInputError` when the datasets need a path not given.

    The message is one line naming the parameter(s) and how to give them.
    """
    missing = missing_run_inputs(dataset_names, configs)
    if not missing:
        return
    names = ", ".join(missing)
    example = ",".join(f"{key}=/abs/path" for key in missing)
    raise MissingRunInputError(
        f"missing run input(s): {names} - give them in the run config (run: params: "
        f"{missing[0]}: ... in `kedro run --config tile.yml`), on the command line "
        f"(--params \"{example}\") or in conf/local/globals.yml; the built-in sample field "
        "needs `-e sample`"
    )


def input_files(configs: Mapping[str, Any], read_image_entries) -> list[tuple[str, str]]:
    """The tile's raw input files that exist, as ``(name, path)``: the catalog, the image
    list and every image and weight image it names, and the GaiaXP table.

    ``read_image_entries`` parses an image list into ``(image, weight or None)`` paths.
    Inputs that were not given (``__required__``) or are ``none`` are left out.
    """
    files: list[tuple[str, str]] = []
    for dataset, name in RAW_INPUTS.items():
        path = str((configs.get(dataset) or {}).get("filepath", ""))
        if not path or REQUIRED in path or not Path(path).is_file():
            continue
        files.append((name, path))
        if dataset == "raw_frames":
            for image, weight in read_image_entries(path):
                files += [("image", image)] + ([("weight", weight)] if weight else [])
    return [(name, path) for name, path in files if Path(path).is_file()]
