"""Kedro dataset of a :class:`~phot7dt.psf_grid.PSFGrid`: a folder of FITS stamps + ``meta.json``.

Layout of ``filepath`` (a local folder)::

    meta.json                grid geometry, bands, and per band and cell: PSF model,
                             FWHM, beta, stars used, reason, fallback level and its
                             star count, build QA, stamp file
    <band>/rRR_cCC.fits      the stamp the fitter uses (primary HDU, float64, native
                             scale, unit sum; header BAND, CELL, NSTARS, OVERSAMP=1,
                             FWHM, MODEL, BETA, REASON; fallbacks also FBLEVEL, FBNSTARS)

A save writes a sibling temporary folder and swaps it in, so a failed save
leaves the previous grid intact and never a half-written one.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from astropy.io import fits
from kedro.io import AbstractDataset, DatasetError

from phot7dt.datasets._files import swap_folder
from phot7dt.psf_grid import MomentField, PSFChoice, PSFGrid, cell_tag

__all__ = ["PSFGridDataset"]

FORMAT = "phot7dt-psf-grid"
FORMAT_VERSION = 1


def _stamp_header(band: str, row: int, col: int, choice: PSFChoice) -> fits.Header:
    header = fits.Header()
    header["BAND"] = (band, "filter")
    header["CELL"] = (cell_tag(row, col), "ePSF grid cell rRR_cCC")
    header["NSTARS"] = (choice.nstars, "stars used by the ePSF build")
    header["OVERSAMP"] = (1, "native pixel scale")
    header["FWHM"] = (choice.fwhm_pix, "FWHM [pix]")
    header["MODEL"] = (choice.model, "epsf or fallback model")
    if choice.beta is not None:
        header["BETA"] = (choice.beta, "Moffat beta")
    if choice.fallback_level:
        header["FBLEVEL"] = (choice.fallback_level, "fallback shape from")
        header["FBNSTARS"] = (choice.fallback_nstars, "stars of the fallback fit")
    header["PSFERR"] = (choice.flux_error_frac, "fractional PSF-model flux error")
    header["REASON"] = choice.reason
    return header


def _entry(band: str, row: int, col: int, choice: PSFChoice, qa: dict | None) -> dict:
    stamp = f"{band}/{cell_tag(row, col)}.fits" if choice.stamp is not None else None
    return {
        "band": band, "cell": cell_tag(row, col), "row": row, "col": col,
        "model": choice.model, "fwhm_pix": choice.fwhm_pix, "beta": choice.beta,
        "nstars": choice.nstars, "reason": choice.reason,
        "fallback_level": choice.fallback_level, "fallback_nstars": choice.fallback_nstars,
        "flux_error_frac": choice.flux_error_frac,
        "moment_field": None if choice.moment_field is None else choice.moment_field.as_dict(),
        "stamp": stamp, "qa": qa,
    }


def _moment_field(entry: dict | None) -> MomentField | None:
    if entry is None:
        return None
    return MomentField(entry["x0"], entry["y0"], np.asarray(entry["coef"], float))


class PSFGridDataset(AbstractDataset[PSFGrid, PSFGrid]):
    """Saves and loads a :class:`PSFGrid` as FITS stamps plus ``meta.json``.

    Example catalog entry::

        epsf_grid:
          type: phot7dt.datasets.psf_grid_dataset.PSFGridDataset
          filepath: ${runtime_params:work_dir, data}/05_model_input/epsf
    """

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(filepath)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._path)}

    def _exists(self) -> bool:
        return (self._path / "meta.json").is_file()

    def save(self, data: PSFGrid) -> None:
        if not isinstance(data, PSFGrid):
            raise DatasetError(f"{self._path}: expected a PSFGrid, got {type(data).__name__}")
        tmp = self._path.with_name(f".{self._path.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            self._write(data, tmp)
            swap_folder(tmp, self._path)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DatasetError(f"{self._path}: cannot write the PSF grid: {exc}") from exc

    def _write(self, grid: PSFGrid, folder: Path) -> None:
        entries = []
        for (band, row, col), choice in grid.items():
            entry = _entry(band, row, col, choice, grid.qa.get((band, row, col)))
            if entry["stamp"] is not None:
                path = folder / PurePosixPath(entry["stamp"])
                path.parent.mkdir(parents=True, exist_ok=True)
                hdu = fits.PrimaryHDU(choice.stamp, header=_stamp_header(band, row, col, choice))
                hdu.writeto(path)
            entries.append(entry)
        meta = {
            "format": FORMAT, "version": FORMAT_VERSION,
            "shape": list(grid.shape), "ngrid": grid.ngrid, "bands": list(grid.bands),
            "cells": {cell_tag(r, c): [b.x0, b.y0, b.x1, b.y1] for (r, c), b in grid.boxes.items()},
            "psf": entries,
        }
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "meta.json").write_text(json.dumps(meta, indent=1, allow_nan=False))

    def load(self) -> PSFGrid:
        meta_path = self._path / "meta.json"
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{meta_path}: cannot read the PSF grid metadata: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise DatasetError(
                f"{meta_path}: 'format' is {meta.get('format')!r}, expected {FORMAT!r}"
            )
        choices, qa = {}, {}
        for e in meta["psf"]:
            key = (e["band"], int(e["row"]), int(e["col"]))
            stamp = self._read_stamp(e["stamp"]) if e["stamp"] else None
            choices[key] = PSFChoice(e["model"], stamp, e["fwhm_pix"], e["beta"], e["nstars"],
                                     e["reason"], e.get("fallback_level", ""),
                                     e.get("fallback_nstars", 0), e.get("flux_error_frac", 0.0),
                                     _moment_field(e.get("moment_field")))
            if e.get("qa") is not None:
                qa[key] = e["qa"]
        return PSFGrid(tuple(meta["shape"]), int(meta["ngrid"]), tuple(meta["bands"]), choices, qa)

    def _read_stamp(self, relative: str) -> np.ndarray:
        path = self._path / PurePosixPath(relative)
        try:
            with fits.open(path, memmap=False) as hdul:
                return np.array(hdul[0].data, dtype=np.float64)
        except (OSError, TypeError) as exc:
            raise DatasetError(f"{path}: cannot read the PSF stamp: {exc}") from exc
