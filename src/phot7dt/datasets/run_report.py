"""``RunReportDataset``: a JSON report that a generator node saves after every chunk.

``fit_patches`` yields its run report with every finished patch so that a crash leaves a
report of what finished. Written every time, the growing file would cost the main process
O(patches²) JSON: on a tile of 1 764 patches about a third of a core during the fit. This
dataset writes a report marked ``"complete": false`` at most every ``min_interval_s``
seconds and a complete one (no ``complete`` key, or true) always, each atomically.
"""

from __future__ import annotations

import json
import time
from typing import Any

from kedro.io import DatasetError

from phot7dt.datasets._files import FileDataset

__all__ = ["RunReportDataset"]


class RunReportDataset(FileDataset):
    """A JSON object on disk, with in-progress saves thinned out in time.

    Parameters
    ----------
    filepath : str
        Path or fsspec URL of the JSON file.
    min_interval_s : float
        Least time between two writes of an incomplete report, seconds (0: every save).
    save_args : dict, optional
        Keyword arguments of ``json.dumps`` (e.g. ``indent``).
    load_args, fs_args, credentials, metadata
        As in kedro-datasets.
    """

    def __init__(self, *, filepath: str, min_interval_s: float = 10.0, **kwargs: Any) -> None:
        super().__init__(filepath, **kwargs)
        if not min_interval_s >= 0:
            raise DatasetError(f"{filepath}: min_interval_s must be >= 0, got {min_interval_s!r}")
        self._min_interval_s = float(min_interval_s)
        self._last_write = -float("inf")

    def load(self) -> dict[str, Any]:
        """The report."""
        try:
            with self._fs.open(self._path, **self._open_load) as handle:
                return json.load(handle, **self._load_args)
        except FileNotFoundError as exc:
            raise DatasetError(f"{self._path}: run report not found") from exc

    def save(self, data: dict[str, Any]) -> None:
        """Write the report if it is complete, or if the last write is old enough."""
        if not isinstance(data, dict):
            raise DatasetError(f"{self._path}: expected a JSON object, got {type(data).__name__}")
        now = time.monotonic()
        if data.get("complete", True) is False and now - self._last_write < self._min_interval_s:
            return
        text = json.dumps(data, **self._save_args).encode()
        self._write(lambda stream: stream.write(text))
        self._last_write = now

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "min_interval_s": self._min_interval_s}
