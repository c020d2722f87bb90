"""The survey manifest: one row per tile with its inputs and per-tile parameter overrides."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

__all__ = ["MANIFEST_COLUMNS", "ManifestError", "parse_overrides", "read_manifest"]

#: Required columns, then the optional ``params`` column.
MANIFEST_COLUMNS = ("tile", "input_catalog", "image_list", "gaiaxp_synphot")
OPTIONAL_COLUMNS = ("params",)
#: Tile names become folder names under ``<work_dir>/tiles/``.
TILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: Keys a row's ``params`` may not set: the survey sets them from the manifest columns.
RESERVED_KEYS = frozenset({"input_catalog", "image_list", "gaiaxp_synphot", "work_dir"})
NO_FILE = "none"


class ManifestError(ValueError):
    """The survey manifest is missing, unreadable, or has a bad column or row."""


def parse_overrides(text: str, where: str) -> list[tuple[str, str]]:
    """``"a.b=1,c=x"`` (kedro's ``--params`` syntax) as ``[("a.b", "1"), ("c", "x")]``.

    Raises
    ------
    ManifestError
        An item without ``=`` or with an empty key, or a key the survey sets itself.
    """
    pairs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ManifestError(f"{where}: item {item!r} is not key=value")
        if key.strip() in RESERVED_KEYS:
            raise ManifestError(
                f"{where}: {key.strip()!r} is set from the manifest columns, not from params"
            )
        pairs.append((key.strip(), value.strip()))
    return pairs


def _resolve(value: str, folder: Path, where: str, optional: bool) -> str:
    if optional and value.strip().lower() == NO_FILE:
        return NO_FILE
    if not value.strip():
        raise ManifestError(f"{where}: empty; expected a file path")
    path = Path(value.strip()).expanduser()
    path = (path if path.is_absolute() else folder / path).absolute()
    if "," in str(path):
        raise ManifestError(
            f"{where}: path {path} contains a comma (kedro --params cannot pass it)"
        )
    if not path.is_file():
        raise ManifestError(f"{where}: file not found: {path}")
    return str(path)


def _check_tiles(table: pd.DataFrame, source: str) -> None:
    for index, name in table["tile"].items():
        if not TILE_NAME.match(name):
            raise ManifestError(
                f"survey manifest {source}, row {index + 1}, column tile: {name!r} is not a "
                "folder name (letters, digits, '.', '_', '-')"
            )
    repeated = table.loc[table["tile"].duplicated(keep=False), "tile"]
    if len(repeated):
        rows = [i + 1 for i in repeated.index]
        raise ManifestError(
            f"survey manifest {source}, column tile: {repeated.iloc[0]!r} repeats (rows {rows})"
        )


def read_manifest(path: str | None) -> pd.DataFrame:
    """Read and check the survey manifest; paths come back absolute.

    Rows are numbered from 1 (the first line after the header). Relative paths are
    resolved against the manifest's folder; ``gaiaxp_synphot`` may be ``none``.

    Returns
    -------
    pandas.DataFrame
        ``tile``, ``input_catalog``, ``image_list``, ``gaiaxp_synphot`` (absolute paths or
        ``none``) and ``params`` ("" when absent), in manifest order.

    Raises
    ------
    ManifestError
        One line naming the manifest, the row and the column at fault.
    """
    if not path:
        raise ManifestError("survey.manifest: not given; expected the path of the tiles CSV")
    source = Path(path).expanduser().absolute()
    if not source.is_file():
        raise ManifestError(f"survey manifest {source}: file not found")
    try:
        table = pd.read_csv(source, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ManifestError(f"survey manifest {source}: cannot be read as CSV ({exc})") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in MANIFEST_COLUMNS if c not in table.columns]
    unknown = [c for c in table.columns if c not in MANIFEST_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        what = f"missing column(s) {missing}" if missing else f"unknown column(s) {unknown}"
        raise ManifestError(
            f"survey manifest {source}: {what}; expected {', '.join(MANIFEST_COLUMNS)} "
            "and optionally params"
        )
    if table.empty:
        raise ManifestError(f"survey manifest {source}: no tiles")
    table["tile"] = table["tile"].str.strip()
    _check_tiles(table, str(source))
    table["params"] = table["params"] if "params" in table else ""
    for index, row in table.iterrows():
        where = f"survey manifest {source}, row {index + 1}"
        for column in MANIFEST_COLUMNS[1:]:
            table.loc[index, column] = _resolve(
                row[column], source.parent, f"{where}, column {column}", column == "gaiaxp_synphot"
            )
        parse_overrides(row["params"], f"{where}, column params")
    return table[[*MANIFEST_COLUMNS, *OPTIONAL_COLUMNS]].reset_index(drop=True)
