"""``FrameSetDataset``: a :class:`phot7dt.frames.FrameSet` as a JSON manifest.

The manifest holds every calibration value, the crop box and the working WCS;
the pixels stay in the input FITS files and are memory-mapped again on use.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

from kedro.io import DatasetError

from phot7dt.datasets._files import FileDataset
from phot7dt.frames import Box, Frame, FrameSet

__all__ = ["FrameSetDataset"]

MANIFEST_FORMAT = "phot7dt.frameset"
MANIFEST_VERSION = 1
_FRAME_FIELDS = [f.name for f in dataclasses.fields(Frame)]
#: Written only for a band with a weight image (a manifest without them is unchanged).
_WEIGHT_FIELDS = ("weight_path", "weight_type", "weight_ref")
_REQUIRED_FIELDS = [name for name in _FRAME_FIELDS if name not in _WEIGHT_FIELDS]
_FLOAT_FIELDS = (
    "zp_auto", "skysig", "egain", "saturate", "saturation_level", "fwhm_pix", "scale", "weight_ref"
)


def _encode_float(value: float) -> float | str:
    """Non-finite floats as the strings ``"inf"``, ``"-inf"``, ``"nan"`` (strict JSON)."""
    return value if math.isfinite(value) else str(value)


def frame_set_to_manifest(frames: FrameSet) -> dict[str, Any]:
    """The JSON-ready manifest of ``frames``."""
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "zp_ref": frames.zp_ref,
        "full_shape": list(frames.full_shape),
        "crop": dataclasses.asdict(frames.crop),
        "wcs_header": frames.wcs_header,
        "frames": [_frame_entry(frame) for frame in frames.frames],
    }


def _frame_entry(frame: Frame) -> dict[str, Any]:
    values = dataclasses.asdict(frame)
    if frame.weight_path is None:
        values = {key: v for key, v in values.items() if key not in _WEIGHT_FIELDS}
    return {key: _encode_float(v) if isinstance(v, float) else v for key, v in values.items()}


def frame_set_from_manifest(manifest: dict[str, Any], source: str) -> FrameSet:
    """Re-create a FrameSet from its manifest; ``source`` names the manifest in errors."""
    if manifest.get("format") != MANIFEST_FORMAT or manifest.get("version") != MANIFEST_VERSION:
        raise DatasetError(
            f"frame set manifest {source}: format {manifest.get('format')!r} version "
            f"{manifest.get('version')!r}, expected {MANIFEST_FORMAT!r} version {MANIFEST_VERSION}"
        )
    frames = []
    for entry in manifest["frames"]:
        missing = sorted(set(_REQUIRED_FIELDS) - set(entry))
        if missing:
            raise DatasetError(f"frame set manifest {source}: frame entry lacks {missing}")
        for key in ("path", "weight_path"):
            if entry.get(key) is not None and not os.path.exists(entry[key]):
                raise DatasetError(
                    f"frame set manifest {source}: band {entry['band']!r} refers to "
                    f"{entry[key]}, which no longer exists (rerun the ingest pipeline)"
                )
        values = {key: entry[key] for key in _FRAME_FIELDS if key in entry}
        for key in _FLOAT_FIELDS:
            if values.get(key) is not None:
                values[key] = float(values[key])
        frames.append(Frame(**values))
    return FrameSet(
        frames=tuple(frames),
        crop=Box(**manifest["crop"]),
        full_shape=(int(manifest["full_shape"][0]), int(manifest["full_shape"][1])),
        zp_ref=float(manifest["zp_ref"]),
        wcs_header=manifest["wcs_header"],
    )


class FrameSetDataset(FileDataset):
    """A prepared frame set stored as a JSON manifest (pixels stay in the input FITS files).

    Examples
    --------
    .. code-block:: yaml

        frames:
          type: phot7dt.datasets.FrameSetDataset
          filepath: ${runtime_params:work_dir, data}/02_intermediate/frames.json
    """

    def __init__(
        self,
        filepath: str,
        fs_args: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create a dataset for the manifest at ``filepath``."""
        super().__init__(filepath, fs_args=fs_args, credentials=credentials, metadata=metadata)

    def load(self) -> FrameSet:
        """Read the manifest; the referenced FITS files must still exist."""
        try:
            with self._fs.open(self._path, **{"mode": "r", **self._open_load}) as stream:
                manifest = json.load(stream)
        except FileNotFoundError as exc:
            raise DatasetError(f"frame set manifest {self._path}: file not found") from exc
        except (OSError, ValueError) as exc:
            raise DatasetError(f"frame set manifest {self._path}: not valid JSON ({exc})") from exc
        try:
            return frame_set_from_manifest(manifest, self._path)
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"frame set manifest {self._path}: malformed ({exc!r})") from exc

    def save(self, data: FrameSet) -> None:
        """Write the manifest of ``data`` atomically."""
        text = json.dumps(frame_set_to_manifest(data), indent=2, allow_nan=False) + "\n"
        payload = text.encode()
        self._write(lambda stream: stream.write(payload))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._path, "protocol": self._protocol}
