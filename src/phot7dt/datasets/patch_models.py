"""``PatchModelsDataset``: the fitted model images of patches, one FITS image per patch and band.

Layout under ``filepath``::

    <tag>/<band>.fits   float32 image of the patch's region (base box plus halo): the
                        fitted sources plus the background the fit subtracted, so
                        ``data - model`` is the residual the fit minimised

``fit_patches`` saves the images the QA figures draw (every band of the
patches with figures, the report's residual band of every patch), partition
by partition as patches finish; a partition saved as ``None`` is removed.
Loading gives a :class:`PatchModels` handle that reads images on demand.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from kedro.io import AbstractDataset, DatasetError

from phot7dt.datasets._files import write_atomically

__all__ = ["ModelImage", "PatchModels", "PatchModelsDataset"]

_NAME = re.compile(r"^(?!\.+$)[A-Za-z0-9_.-]+$")  # not '.' or '..'


@dataclasses.dataclass(frozen=True)
class ModelImage:
    """One band's fitted model of a patch region.

    Attributes
    ----------
    image : (ny, nx) float32 ndarray
        Model in the common flux scale (scaled counts per pixel).
    x0, y0 : int
        Working-frame pixel of ``image[0, 0]`` (the region's lower-left corner).
    """

    image: np.ndarray
    x0: int
    y0: int


def _parts(key: str) -> tuple[str, str]:
    tag, _, band = key.partition("/")
    if not (_NAME.match(tag) and _NAME.match(band)):
        raise ValueError(f"patch model {key!r}: expected '<patch tag>/<band>' of letters, "
                         "digits, '_', '.', '-'")
    return tag, band


class PatchModels:
    """Read handle on a folder of patch model images."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"PatchModels({str(self.root)!r})"

    def path(self, tag: str, band: str) -> Path:
        """File of one patch and band."""
        _parts(f"{tag}/{band}")
        return self.root / tag / f"{band}.fits"

    def get(self, tag: str, band: str) -> ModelImage | None:
        """The model of ``tag`` in ``band``, or None when it was not saved."""
        path = self.path(tag, band)
        if not path.is_file():
            return None
        try:
            with fits.open(path, memmap=False) as hdul:
                header = hdul[0].header
                return ModelImage(np.asarray(hdul[0].data, np.float32),
                                  int(header["X0_ROI"]), int(header["Y0_ROI"]))
        except (OSError, KeyError, TypeError) as exc:
            raise DatasetError(f"patch model {path}: cannot read ({exc})") from exc

    def cube(self, tag: str, bands: tuple[str, ...]) -> np.ndarray | None:
        """Models of ``bands`` stacked (B, ny, nx), or None unless every band was saved."""
        images = [self.get(tag, b) for b in bands]
        if any(m is None for m in images):
            return None
        return np.stack([m.image for m in images])

    def keys(self) -> list[str]:
        """``<tag>/<band>`` of every saved image, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(f"{p.parent.name}/{p.stem}" for p in self.root.glob("*/*.fits"))


class PatchModelsDataset(AbstractDataset[Mapping[str, Any], PatchModels]):
    """Folder of patch model images; saves ``{"<tag>/<band>": ModelImage | callable | None}``.

    Callables are called when saved (lazy partitions, as kedro's
    ``PartitionedDataset``); ``None`` removes the partition. Each file is written
    atomically (:func:`phot7dt.datasets._files.write_atomically`). Local (or
    shared, mounted) file systems only.

    Example (catalog YAML)::

        patch_models:
          type: phot7dt.datasets.PatchModelsDataset
          filepath: data/07_model_output/patch_models
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._root = Path(filepath)
        self.metadata = metadata

    def load(self) -> PatchModels:
        """A handle on the folder (which may not exist: every ``get`` then gives None)."""
        return PatchModels(self._root)

    def save(self, data: Mapping[str, ModelImage | Callable[[], ModelImage] | None]) -> None:
        """Write or (``None``) remove each ``<tag>/<band>`` partition."""
        handle = PatchModels(self._root)
        for key, value in data.items():
            tag, band = _parts(key)
            path = handle.path(tag, band)
            model = value() if callable(value) else value
            if model is None:
                path.unlink(missing_ok=True)
                if path.parent.is_dir() and not any(path.parent.iterdir()):
                    shutil.rmtree(path.parent, ignore_errors=True)
                continue
            header = fits.Header({"PATCH": tag, "BAND": band, "X0_ROI": int(model.x0),
                                  "Y0_ROI": int(model.y0), "BUNIT": "scaled counts",
                                  "CONTENT": "fitted sources + fitted background"})
            hdu = fits.PrimaryHDU(np.asarray(model.image, np.float32), header=header)
            write_atomically(None, "file", str(path), hdu.writeto)

    def _exists(self) -> bool:
        return self._root.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._root)}
