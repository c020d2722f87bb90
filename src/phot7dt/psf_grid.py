"""The PSF of every band and ePSF grid cell, as the fitter consumes it.

The working frame is divided into ``ngrid x ngrid`` cells (tract7dt's
``epsf.epsf_ngrid``): ``step = N // ngrid`` pixels per cell along each axis, the
last row and column absorbing the remainder. Each (band, cell) has one
:class:`PSFChoice`: the empirical PSF built from the cell's stars, or an
analytic fallback with the reason why. Stamps are at native pixel scale, odd
sized, centred on the central pixel and normalised to unit sum; they sample the
pixel-convolved PSF, so a point source is the stamp shifted and scaled.

Plain values only (no Kedro): a :class:`PSFGrid` pickles cheaply to worker
processes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from phot7dt.frames import Box

__all__ = [
    "FALLBACK_LEVELS",
    "PSF_MODELS",
    "MomentField",
    "PSFChoice",
    "PSFGrid",
    "cell_boxes",
    "cell_index",
    "cell_tag",
    "gaussian_smear",
    "sky_limited_fraction",
]

#: Largest exponent of the Fourier gain when :func:`gaussian_smear` narrows a stamp
#: (``exp(1)``: narrowing by more than the stamp's information allows is capped).
MAX_SHARPEN_EXPONENT = 1.0


def gaussian_smear(stamp: np.ndarray, dsigma: np.ndarray) -> np.ndarray:
    """``stamp`` convolved with a Gaussian of covariance ``dsigma`` (px**2), unit sum kept.

    ``dsigma = (s_xx, s_xy, s_yy)`` may be negative (definite or not): the stamp
    is then narrowed by the inverse filter ``exp(+k^T |dsigma| k / 2)``, capped at
    :data:`MAX_SHARPEN_EXPONENT`. This is how a PSF of second moments ``M``
    becomes one of moments ``M + dsigma`` to first order in ``dsigma``. A stack
    of stamps ``(..., n, n)`` takes one ``dsigma`` each, ``(..., 3)``.
    """
    dsigma = np.asarray(dsigma, float)
    sxx, sxy, syy = (dsigma[..., k, None, None] for k in range(3))
    n = stamp.shape[-1]
    kx = 2.0 * np.pi * np.fft.rfftfreq(n)[None, :]
    ky = 2.0 * np.pi * np.fft.fftfreq(n)[:, None]
    exponent = -0.5 * (sxx * kx**2 + 2.0 * sxy * kx * ky + syy * ky**2)
    gain = np.exp(np.minimum(exponent, MAX_SHARPEN_EXPONENT))
    out = np.fft.irfft2(np.fft.rfft2(stamp) * gain, s=stamp.shape[-2:])
    return out / out.sum(axis=(-2, -1), keepdims=True)


def sky_limited_fraction(
    weight: np.ndarray, sky_weight: np.ndarray, stamp: np.ndarray
) -> np.ndarray:
    """``kappa = sum(w P**2) / sum(w0 P**2)`` over the stamp's axes: the flux Fisher
    information with the source's own photon noise over that with sky noise alone.

    A PSF fit weighs pixels by ``w = 1 / (sky variance + photon variance)``; a
    mismatch ``dP`` of a unit-sum model moves its flux by ``sum(w P dP) / sum(w P**2)``,
    which is the sky-limited value scaled by about ``kappa`` (1 for a faint
    source, towards 0 for a photon-limited one, whose weights ``~1/P`` turn the
    fit into a sum in which ``sum(dP) = 0``).
    """
    axes = tuple(range(-stamp.ndim, 0))
    num = (weight * stamp**2).sum(axis=axes)
    den = (sky_weight * stamp**2).sum(axis=axes)
    return np.clip(np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0), 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class MomentField:
    """Change of a cell PSF's second moments with position: ``dsigma(x, y)``, px**2.

    ``dsigma(x, y) = coef[0] + coef[1] (x - x0) + coef[2] (y - y0)``, each row a
    ``(s_xx, s_xy, s_yy)`` triple: the PSF at ``(x, y)`` is the cell stamp
    convolved with a Gaussian of that covariance (:func:`gaussian_smear`).

    Attributes
    ----------
    x0, y0 : float
        Reference position, working-frame px (the cell's star-weighted centre).
    coef : (3, 3) float64 ndarray
        Rows: offset (px**2), x gradient and y gradient (px**2 per px).
    """

    x0: float
    y0: float
    coef: np.ndarray

    def __post_init__(self) -> None:
        coef = np.array(self.coef, dtype=np.float64).reshape(3, 3)
        if not np.all(np.isfinite(coef)):
            raise ValueError(f"MomentField.coef must be finite, got {coef.tolist()}")
        coef.setflags(write=False)
        object.__setattr__(self, "coef", coef)
        object.__setattr__(self, "x0", float(self.x0))
        object.__setattr__(self, "y0", float(self.y0))

    def at(self, x: float, y: float) -> np.ndarray:
        """``(s_xx, s_xy, s_yy)`` at working-frame ``(x, y)``, px**2."""
        return self.coef[0] + self.coef[1] * (x - self.x0) + self.coef[2] * (y - self.y0)

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return {"x0": self.x0, "y0": self.y0, "coef": self.coef.tolist()}


#: Models a :class:`PSFChoice` may name: the ePSF or one of tract7dt's fallbacks.
PSF_MODELS = ("epsf", "moffat", "gaussian_mixture", "ncircular_gaussian")
#: Where a fallback's FWHM and beta come from, most local first.
FALLBACK_LEVELS = ("cell_stars", "neighbour_stars", "band_stars", "header")


def cell_tag(row: int, col: int) -> str:
    """tract7dt's cell tag ``rRR_cCC`` (zero-padded row and column)."""
    return f"r{row:02d}_c{col:02d}"


def grid_edges(lo: int, hi: int, n: int) -> list[int]:
    """``n + 1`` edges (px) splitting ``[lo, hi)`` into ``n`` parts, the last taking the rest."""
    step = (hi - lo) // n
    return [lo + i * step for i in range(n)] + [hi]


def cell_boxes(shape: tuple[int, int], ngrid: int) -> dict[tuple[int, int], Box]:
    """Boxes of the ``ngrid x ngrid`` cells of a frame of ``shape = (ny, nx)``.

    Returns ``{(row, col): Box}``; row indexes y, column indexes x.
    """
    ny, nx = shape
    if ngrid < 1 or ny < ngrid or nx < ngrid:
        raise ValueError(f"cannot split a {ny}x{nx} frame into {ngrid}x{ngrid} cells")
    ye, xe = grid_edges(0, ny, ngrid), grid_edges(0, nx, ngrid)
    return {
        (r, c): Box(xe[c], ye[r], xe[c + 1], ye[r + 1]) for r in range(ngrid) for c in range(ngrid)
    }


def cell_index(shape: tuple[int, int], ngrid: int, x: float, y: float) -> tuple[int, int]:
    """``(row, col)`` of the cell holding working-frame position ``(x, y)``.

    A position belongs to the cell of its nearest pixel; positions outside the
    frame (or not finite) go to the nearest (first) cell.
    """

    def index(v: float, n: int) -> int:
        step = n // ngrid
        i = math.floor(math.floor(v + 0.5) / step) if math.isfinite(v) else 0
        return min(max(i, 0), ngrid - 1)

    return index(y, shape[0]), index(x, shape[1])


def occupied_cells(
    x: np.ndarray, y: np.ndarray, shape: tuple[int, int], ngrid: int
) -> set[tuple[int, int]]:
    """``(row, col)`` of every cell holding one of the working-frame positions ``(x, y)`` (px).

    Positions belong to the cell of their nearest pixel (:func:`cell_index`); positions
    outside the frame or not finite hold no cell.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    px, py = np.floor(x + 0.5), np.floor(y + 0.5)
    ny, nx = shape
    inside = np.isfinite(px) & np.isfinite(py) & (px >= 0) & (px < nx) & (py >= 0) & (py < ny)
    return {cell_index(shape, ngrid, xi, yi) for xi, yi in zip(x[inside], y[inside], strict=True)}


@dataclasses.dataclass(frozen=True, eq=False)
class PSFChoice:
    """The PSF the fitter uses for one band in one cell.

    Attributes
    ----------
    model : str
        ``"epsf"`` or the fallback model (``"moffat"``, ``"gaussian_mixture"``,
        ``"ncircular_gaussian"``), see :data:`PSF_MODELS`.
    stamp : (n, n) float64 ndarray or None
        Native-scale stamp, ``n`` odd, centred, unit sum; read-only.
    fwhm_pix : float
        FWHM in pixels: measured on the ePSF, or the fallback's input FWHM.
    beta : float or None
        Moffat index (measured for an ePSF, configured for a Moffat fallback).
    nstars : int
        Stars actually used by the ePSF build of this cell (0 if none was built).
    reason : str
        Why this model was chosen, for the audit columns of the catalog.
    fallback_level : str
        For a fallback, where its shape comes from: ``cell_stars``,
        ``neighbour_stars``, ``band_stars`` (a Moffat fitted to those PSF stars)
        or ``header`` (header FWHM and the configured beta), see
        :data:`FALLBACK_LEVELS`; ``""`` for the ePSF.
    fallback_nstars : int
        Stars the fallback's fit used (0 for the ePSF and the header level).
    flux_error_frac : float
        Fractional flux error a PSF fit inherits from this model (the PSF-model
        error term, dimensionless; 0 = none), added in quadrature to the
        statistical flux error by the fitting stage.
    moment_field : MomentField or None
        How the PSF's second moments change across the cell (ePSF only; None:
        the stamp holds everywhere in the cell), see :meth:`stamp_at`.
    """

    model: str
    stamp: np.ndarray | None
    fwhm_pix: float
    beta: float | None
    nstars: int
    reason: str
    fallback_level: str = ""
    fallback_nstars: int = 0
    flux_error_frac: float = 0.0
    moment_field: MomentField | None = None

    def __post_init__(self) -> None:
        if self.model not in PSF_MODELS:
            raise ValueError(f"PSFChoice.model must be one of {PSF_MODELS}, got {self.model!r}")
        if self.fallback_level not in ("", *FALLBACK_LEVELS):
            raise ValueError(
                f"PSFChoice.fallback_level must be one of {FALLBACK_LEVELS}, got "
                f"{self.fallback_level!r}"
            )
        if self.stamp is not None:
            stamp = np.array(self.stamp, dtype=np.float64)
            if stamp.ndim != 2 or stamp.shape[0] != stamp.shape[1] or stamp.shape[0] % 2 == 0:
                raise ValueError(f"PSF stamp must be square with odd size, got {stamp.shape}")
            stamp.setflags(write=False)
            object.__setattr__(self, "stamp", stamp)
        object.__setattr__(self, "fwhm_pix", float(self.fwhm_pix))
        object.__setattr__(self, "nstars", int(self.nstars))
        object.__setattr__(self, "fallback_nstars", int(self.fallback_nstars))
        object.__setattr__(self, "flux_error_frac", float(self.flux_error_frac))
        if not (self.flux_error_frac >= 0 and math.isfinite(self.flux_error_frac)):
            raise ValueError(
                f"PSFChoice.flux_error_frac must be finite and >= 0, got {self.flux_error_frac!r}"
            )
        if self.beta is not None:
            object.__setattr__(self, "beta", float(self.beta))

    @property
    def is_fallback(self) -> bool:
        """True when an analytic model replaces the ePSF."""
        return self.model != "epsf"

    def _fields(self) -> tuple:
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))

    def _key(self) -> tuple:
        """The fields, with the stamp as its SHA-1 and the moment field as its dict's repr."""
        stamp = None if self.stamp is None else hashlib.sha1(self.stamp.tobytes()).hexdigest()
        moments = None if self.moment_field is None else repr(self.moment_field.as_dict())
        plain = {"stamp": stamp, "moment_field": moments}
        return tuple(plain.get(f.name, getattr(self, f.name)) for f in dataclasses.fields(self))

    def stamp_at(self, x: float, y: float) -> np.ndarray | None:
        """The stamp for working-frame position ``(x, y)``: :attr:`stamp` with the
        cell's :attr:`moment_field` applied there (the stamp itself without one)."""
        if self.stamp is None or self.moment_field is None:
            return self.stamp
        return gaussian_smear(self.stamp, self.moment_field.at(x, y))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PSFChoice):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self):
        # Rebuild through __init__ so the unpickled stamp is read-only again.
        return (PSFChoice, self._fields())


@dataclasses.dataclass(frozen=True, eq=False)
class PSFGrid:
    """PSF choices of every band and cell of the working frame.

    Attributes
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the working frame.
    ngrid : int
        Cells per axis.
    bands : tuple of str
        Bands in image-list order.
    choices : mapping
        ``{(band, row, col): PSFChoice}`` for every band and cell.
    qa : mapping
        ``{(band, row, col): dict}`` of JSON-serialisable build metadata
        (star counts, FWHM, encircled energy, status), possibly empty.
    """

    shape: tuple[int, int]
    ngrid: int
    bands: tuple[str, ...]
    choices: Mapping[tuple[str, int, int], PSFChoice]
    qa: Mapping[tuple[str, int, int], Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(v) for v in self.shape))
        object.__setattr__(self, "bands", tuple(self.bands))
        missing = [
            f"{b}/{cell_tag(r, c)}"
            for b in self.bands
            for (r, c) in self.boxes
            if (b, r, c) not in self.choices
        ]
        if missing:
            raise ValueError(f"PSFGrid lacks a PSF choice for {', '.join(missing[:5])}")
        object.__setattr__(self, "choices", MappingProxyType(dict(self.choices)))
        object.__setattr__(self, "qa", MappingProxyType(dict(self.qa)))

    @property
    def boxes(self) -> dict[tuple[int, int], Box]:
        """``{(row, col): Box}`` of the cells in working-frame pixels."""
        return cell_boxes(self.shape, self.ngrid)

    def box(self, row: int, col: int) -> Box:
        """The box of cell ``(row, col)``."""
        return self.boxes[(row, col)]

    def cell_of(self, x: float, y: float) -> tuple[int, int]:
        """``(row, col)`` of the cell holding working-frame position ``(x, y)``."""
        return cell_index(self.shape, self.ngrid, x, y)

    def choice(self, band: str, row: int, col: int) -> PSFChoice:
        """The PSF of ``band`` in cell ``(row, col)``."""
        try:
            return self.choices[(band, row, col)]
        except KeyError:
            raise KeyError(
                f"no PSF for band {band!r} cell {cell_tag(row, col)}; bands are {list(self.bands)}"
            ) from None

    def items(self) -> Iterator[tuple[tuple[str, int, int], PSFChoice]]:
        """``((band, row, col), choice)`` in band, row, column order."""
        for band in self.bands:
            for r in range(self.ngrid):
                for c in range(self.ngrid):
                    yield (band, r, c), self.choices[(band, r, c)]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PSFGrid):
            return NotImplemented
        return (
            (self.shape, self.ngrid, self.bands) == (other.shape, other.ngrid, other.bands)
            and dict(self.choices) == dict(other.choices)
            and dict(self.qa) == dict(other.qa)
        )

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self):
        return (PSFGrid, (self.shape, self.ngrid, self.bands, dict(self.choices), dict(self.qa)))
