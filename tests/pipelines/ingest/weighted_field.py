"""A noise-only tile whose noise doubles on the right, with a weight image per band.

The truth is the noise map: ``sigma = SKYSIG * factor`` ADU with ``factor`` 1 on
columns ``< SPLIT_X`` and 2 from ``SPLIT_X`` on (40 % of the pixels, so the
median depth is the left half's). Each band's weight image encodes that map in
one of the ``image_scaling.weight_type`` conventions, plus a few no-data pixels.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from astropy.io import fits
from tiny_field import tiny_wcs, wcs_header

SHAPE = (120, 100)
SPLIT_X = 60
ZP_REF = 24.0
#: band -> (SKYSIG ADU, ZP_AUTO mag): the scales 10**(-0.4 (ZP_AUTO - ZP_REF)) differ from 1.
BANDS = {"m400": (2.0, 24.6), "m412": (3.0, 25.3)}
#: Original-image pixels ``(y, x)`` the weight images mark as having no data.
NO_DATA = ((10, 20), (30, 70), (50, 40))
#: Arbitrary normalisation of the ``relative`` weights (only ratios matter).
RELATIVE_NORM = 5.0


@dataclasses.dataclass(frozen=True)
class WeightedField:
    """Paths and truth of a field written by :func:`write_weighted_field`."""

    folder: Path
    image_list: Path  # "<band>.fits <band>.weight.fits" per line
    plain_list: Path  # the same images without weight images
    sigma: dict[str, np.ndarray]  # true noise per pixel, raw ADU
    weights: dict[str, np.ndarray]  # what was written to each weight image

    def scale(self, band: str) -> float:
        """Raw ADU to common-scale counts at ``ZP_REF``."""
        return 10 ** (-0.4 * (BANDS[band][1] - ZP_REF))

    def true_invvar(self, band: str) -> np.ndarray:
        """``1 / (scale sigma)**2`` on the common scale, 0 on the no-data pixels (float64)."""
        invvar = 1.0 / (self.scale(band) * self.sigma[band]) ** 2
        for y, x in NO_DATA:
            invvar[y, x] = 0.0
        return invvar


def noise_factor() -> np.ndarray:
    """1 on the left, 2 from column ``SPLIT_X`` on."""
    factor = np.ones(SHAPE)
    factor[:, SPLIT_X:] = 2.0
    return factor


def weight_values(weight_type: str, sigma: np.ndarray, skysig: float) -> np.ndarray:
    """The weight image of ``weight_type`` for the noise map ``sigma`` (ADU), no-data pixels set."""
    values = {
        "relative": RELATIVE_NORM * (skysig / sigma) ** 2,
        "inverse_variance": 1.0 / sigma**2,
        "variance": sigma**2,
        "rms": sigma,
    }[weight_type].astype(np.float32)
    no_data = (0.0, np.nan, 0.0) if weight_type in ("relative", "inverse_variance") else (
        np.inf, np.nan, 0.0
    )
    for (y, x), value in zip(NO_DATA, no_data, strict=True):
        values[y, x] = value
    return values


def write_weighted_field(folder: Path, weight_type: str, seed: int = 3) -> WeightedField:
    """Noise-only images, weight images of ``weight_type`` and both image lists in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sigma, weights, lines = {}, {}, []
    for band, (skysig, zp_auto) in BANDS.items():
        header = wcs_header(tiny_wcs(SHAPE))
        header.update(FILTER=band, ZP_AUTO=zp_auto, SKYSIG=skysig, EGAIN=1.5, PEEING=3.0)
        header["SATURATE"] = 6e4
        sigma[band] = skysig * noise_factor()
        pixels = rng.normal(0.0, sigma[band]).astype(np.float32)
        fits.PrimaryHDU(pixels, header).writeto(folder / f"{band}.fits", overwrite=True)
        weights[band] = weight_values(weight_type, sigma[band], skysig)
        fits.PrimaryHDU(weights[band]).writeto(folder / f"{band}.weight.fits", overwrite=True)
        lines.append(band)
    (folder / "image_list.txt").write_text(
        "# with weights\n" + "".join(f"{b}.fits   {b}.weight.fits\n" for b in lines)
    )
    (folder / "plain_list.txt").write_text("".join(f"{b}.fits\n" for b in lines))
    return WeightedField(
        folder, folder / "image_list.txt", folder / "plain_list.txt", sigma, weights
    )
