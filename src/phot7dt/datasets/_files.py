"""File-system helpers shared by the datasets: fsspec set-up and atomic writes."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from copy import deepcopy
from pathlib import Path, PurePosixPath
from typing import IO, Any

import fsspec
from kedro.io import AbstractDataset
from kedro.io.core import get_filepath_str, get_protocol_and_path

LOCAL_PROTOCOLS = frozenset({"file", "local"})


def make_filesystem(
    filepath: str, credentials: dict[str, Any] | None, fs_args: dict[str, Any] | None
) -> tuple[str, PurePosixPath, fsspec.AbstractFileSystem, dict[str, Any], dict[str, Any]]:
    """Protocol, path, filesystem and ``open`` arguments for load and save, kedro-datasets style."""
    _fs_args = deepcopy(fs_args) or {}
    open_args_load = _fs_args.pop("open_args_load", {})
    open_args_save = _fs_args.pop("open_args_save", {})
    protocol, path = get_protocol_and_path(str(filepath))
    if protocol in LOCAL_PROTOCOLS:
        _fs_args.setdefault("auto_mkdir", True)
    fs = fsspec.filesystem(protocol, **(deepcopy(credentials) or {}), **_fs_args)
    return protocol, PurePosixPath(path), fs, open_args_load, open_args_save


def current_umask() -> int:
    """The process's file-mode creation mask.

    Read from ``/proc/self/status`` where the kernel reports it (Linux >= 4.7),
    so no other thread ever sees a changed mask; elsewhere set and restored
    at once with :func:`os.umask`.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _local_atomic(path: str) -> Iterator[IO[bytes]]:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp creates 0600 files; give the result the permissions of a normal new file.
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_atomically(
    fs: fsspec.AbstractFileSystem,
    protocol: str,
    path: str,
    write: Callable[[IO[bytes]], None],
    open_args: dict[str, Any] | None = None,
) -> None:
    """Write ``path`` so that readers see the old file or the complete new one, never a part.

    Local files are written to a temporary file in the same folder and moved into
    place with :func:`os.replace`, ending with the permissions of any new file
    (``0o666`` less the user's umask, e.g. 0644); object stores commit an object
    only when it is closed, so they are written directly. The one atomic writer
    of the project's datasets.
    """
    if protocol in LOCAL_PROTOCOLS:
        with _local_atomic(path) as stream:
            write(stream)
        return
    with fs.open(path, **{"mode": "wb", **(open_args or {})}) as stream:
        write(stream)


def swap_folder(new: Path, target: Path) -> None:
    """Put the complete folder ``new`` at ``target`` (local file system), replacing any old one.

    Readers see the old folder or the new one: each step is a :func:`os.replace` of a
    whole folder (the old one is moved aside first, then removed). The folder
    counterpart of :func:`write_atomically`.
    """
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


class FileDataset(AbstractDataset):
    """Base of the single-file datasets: fsspec set-up, default arguments, atomic writes.

    Subclasses set ``DEFAULT_LOAD_ARGS`` / ``DEFAULT_SAVE_ARGS`` and implement
    ``load`` and ``save`` (writing through :meth:`_write`).
    """

    DEFAULT_LOAD_ARGS: dict[str, Any] = {}
    DEFAULT_SAVE_ARGS: dict[str, Any] = {}

    def __init__(  # noqa: PLR0913
        self,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create a dataset for the file at ``filepath``."""
        self._protocol, self._filepath, self._fs, self._open_load, self._open_save = (
            make_filesystem(filepath, credentials, fs_args)
        )
        self._load_args = {**self.DEFAULT_LOAD_ARGS, **deepcopy(load_args or {})}
        self._save_args = {**self.DEFAULT_SAVE_ARGS, **deepcopy(save_args or {})}
        self.metadata = metadata

    @property
    def _path(self) -> str:
        return get_filepath_str(self._filepath, self._protocol)

    def _write(self, write: Callable[[IO[bytes]], None]) -> None:
        write_atomically(self._fs, self._protocol, self._path, write, self._open_save)
        self._fs.invalidate_cache(self._path)

    def _exists(self) -> bool:
        return self._fs.exists(self._path)

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._path,
            "protocol": self._protocol,
            "load_args": self._load_args,
            "save_args": self._save_args,
        }
