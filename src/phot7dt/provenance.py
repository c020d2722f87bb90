"""What made a catalog: phot7dt version, git commit, parameters, input files, times.

A :class:`RunProvenance` is started when a run begins (by the run hooks). The
SHA-256 checksums of the input files are computed in a background thread, so a
tile's ~10 GB of images cost no time on the run's critical path; they are
awaited only when the record is written out (catalog headers, run manifest).
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from phot7dt import __version__

__all__ = ["RunProvenance", "git_commit", "parameters_sha256", "sha256_of", "utc_now"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 24  # bytes read per hash update (16 MiB)


def utc_now() -> str:
    """The current UTC time as ISO 8601 with seconds (``2026-12-07T18:30:00Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of the file at ``path``, read in 16 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def git_commit(folder: str | Path | None = None) -> str | None:
    """HEAD commit of the git checkout holding phot7dt (``+dirty`` when it has
    uncommitted changes), or None for an installed package outside a checkout."""
    where = Path(folder) if folder else Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=where, capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def parameters_sha256(parameters: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the parameters as canonical JSON (sorted keys)."""
    text = json.dumps(parameters, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class RunProvenance:
    """The provenance of one run.

    Parameters
    ----------
    pipeline : str
        Name of the pipeline run (``full``, ``calibration``, ...).
    parameters : dict
        The full resolved parameter set of the run.
    input_files : list of (name, path)
        The run's input files (``input_catalog``, ``image_list``, each image and
        weight image, ``gaiaxp_synphot``); their sizes and checksums are recorded.
    """

    pipeline: str
    parameters: dict[str, Any]
    input_files: list[tuple[str, str]]
    started_utc: str = field(default_factory=utc_now)
    version: str = __version__
    commit: str | None = field(default_factory=git_commit)
    _checksums: Future | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.parameters_sha256 = parameters_sha256(self.parameters)
        paths = [path for _, path in self.input_files]
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="phot7dt-checksum")
        self._checksums = pool.submit(lambda: [sha256_of(p) for p in paths])
        pool.shutdown(wait=False)

    def __deepcopy__(self, memo) -> RunProvenance:
        # one record per run, never changed after it is made: copies share it (and its
        # checksum thread)
        return self

    def inputs(self, wait: bool = True) -> list[dict[str, Any]]:
        """Each input file: name, absolute path, size (bytes) and SHA-256 (None until
        the checksums are done when ``wait`` is false)."""
        sums = None
        if wait or self._checksums.done():
            sums = self._checksums.result()
        return [
            {"name": name, "path": str(Path(path).resolve()), "bytes": Path(path).stat().st_size,
             "sha256": sums[i] if sums else None}
            for i, (name, path) in enumerate(self.input_files)
        ]

    def as_dict(self, wait: bool = True) -> dict[str, Any]:
        """The record as JSON-safe data (parameters by hash; the full set is written beside)."""
        return {
            "phot7dt_version": self.version,
            "git_commit": self.commit,
            "pipeline": self.pipeline,
            "started_utc": self.started_utc,
            "parameters_sha256": self.parameters_sha256,
            "inputs": self.inputs(wait=wait),
        }
