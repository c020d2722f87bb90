"""A patch's data cleaned before and after its fit: artefacts, residual sky, residual clipping.

:func:`prepare` runs before the fit (artefact pixels get zero weight, the
pre-fit background is subtracted); :func:`refine` after it (pixels no model
explains get zero weight, the background is re-estimated from the residuals
and, when either changed anything that matters, the fluxes are solved again at
the fitted positions and shapes). The method is in
:mod:`phot7dt.pipelines.fitting.residual_sky`; settings are the
``sky_and_artefacts`` section (:class:`~phot7dt.config.scene.SkyArtefactParams`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd

from phot7dt.pipelines.fitting.residual_sky import (
    EMPTY_MODEL_SIGMA,
    SkyModel,
    background_image,
    clip_residuals,
    disk_windows,
    fit_sky,
    prefit_sky_mask,
)

__all__ = ["Cleaned", "masked_psf_fraction", "masked_pixels_per_source", "prepare", "refine",
           "source_radii"]


@dataclasses.dataclass
class Cleaned:
    """Data of one patch as it is fitted, with what cleaning did to it.

    Attributes
    ----------
    images, invvar : (B, ny, nx) float32 ndarrays
        Background-subtracted pixels and weights (0 on artefact pixels).
    sky : SkyModel
        Background subtracted so far, per band.
    artefacts : (B, ny, nx) bool ndarray
        Pixels given zero weight by artefact detection or residual clipping.
    refitted : bool
        The fluxes were solved again after the residual pass.
    """

    images: np.ndarray
    invvar: np.ndarray
    sky: SkyModel
    artefacts: np.ndarray
    refitted: bool = False


def source_radii(sources: pd.DataFrame, fwhm: np.ndarray, k_fwhm: float,
                 flux: np.ndarray | None = None, sigma: np.ndarray | None = None) -> np.ndarray:
    """Radius (px) around each source holding its light: ``k FWHM + 3 Re``, plus a
    margin of ``2 FWHM log10(S/N / 100)`` for sources brighter than S/N 100 (their wings).

    ``fwhm`` (B,) px; ``flux`` (n, B) on the image scale and ``sigma`` (B,) the
    typical pixel noise give the brightness margin (none without them); the widest
    band counts.
    """
    re = np.nan_to_num(sources["re_pix"].to_numpy(float), nan=0.0)
    re = np.where(sources["model_type"].to_numpy(str) == "STAR", 0.0, re)
    wing = np.zeros((1, len(fwhm)))
    if flux is not None and sigma is not None:
        snr = np.clip(flux, 0.0, None) / (sigma * 2.0 * fwhm)[None, :]
        wing = 2.0 * fwhm[None, :] * np.log10(np.clip(snr / 100.0, 1.0, None))
    return np.max(k_fwhm * fwhm[None, :] + wing, axis=1) + 3.0 * np.clip(re, 0.0, 30.0)


#: (peak significance, extra growth in px): an artefact whose peak exceeds the significance is
#: grown by that many more pixels, so its fainter edges (charge diffusion, the sub-pixel
#: spread of a track) go too; the detector's own growth covers artefacts near the noise.
BRIGHT_ARTEFACT_GROWTH = ((50.0, 1), (500.0, 2))


def grow_bright_artefacts(mask: np.ndarray, significance: np.ndarray) -> np.ndarray:
    """``mask`` (B, ny, nx) with bright components grown (:data:`BRIGHT_ARTEFACT_GROWTH`)."""
    from scipy import ndimage

    out = mask.copy()
    for b in range(mask.shape[0]):
        if not mask[b].any():
            continue
        labels, n = ndimage.label(mask[b])
        peaks = np.asarray(ndimage.maximum(significance[b], labels, np.arange(1, n + 1)))
        for threshold, grow in BRIGHT_ARTEFACT_GROWTH:
            bright = np.isin(labels, 1 + np.flatnonzero(peaks > threshold))
            if bright.any():
                disk = np.hypot(*np.mgrid[-grow : grow + 1, -grow : grow + 1]) <= grow + 0.5
                out[b] |= ndimage.binary_dilation(bright, disk)
    return out


def prepare(images, invvar, sources: pd.DataFrame, flux0, fwhm, gain, p) -> Cleaned:
    """Artefact pixels zero-weighted and the pre-fit background subtracted (see module doc)."""
    from phot7dt.artefacts import find_artefacts
    from phot7dt.scene import noise_sigma
    artefacts = np.zeros(images.shape, bool)
    if p.detect_artefacts:
        found = find_artefacts(images, invvar, fwhm, gain=gain).mask
        artefacts = grow_bright_artefacts(found, images * np.sqrt(invvar))
        invvar = np.where(artefacts, np.float32(0.0), invvar)
    sky = SkyModel.zero(images.shape[0])
    if p.local_sky != "none":
        radius = source_radii(sources, fwhm, p.sky_mask_fwhm, flux0, noise_sigma(invvar))
        x, y = sources["x_pix_patch"].to_numpy(float), sources["y_pix_patch"].to_numpy(float)
        near = prefit_sky_mask(images.shape[1:], x, y, radius)
        sky = fit_sky(images, invvar, ~near, p.local_sky, p.sky_clip_sigma)
        sky = sky.significant(p.sky_min_significance)
        images = images - background_image(sky, images.shape[1:])
    return Cleaned(images, invvar, sky, artefacts)


def refine(data: Cleaned, model: np.ndarray, gain, p, refit: Callable[[Cleaned], list]):
    """The residual pass (see module doc); returns the refitted results or None.

    ``model`` (B, ny, nx) is the fitted model of ``data.images``; ``refit``
    solves the fluxes of the cleaned data again and returns the fit results.
    ``data`` is updated in place.
    """
    sigma = np.where(data.invvar > 0, 1.0 / np.sqrt(np.where(data.invvar > 0, data.invvar, 1.0)),
                     np.inf)
    clipped = np.zeros(model.shape, bool)
    if p.clip_residuals:
        clipped = clip_residuals(data.images, data.invvar, model, gain, p.residual_clip_sigma,
                                 p.residual_model_frac, p.residual_grow_pix)
    near_model = model > EMPTY_MODEL_SIGMA * sigma
    change = SkyModel.zero(model.shape[0])
    if p.local_sky != "none":
        invvar = np.where(clipped, np.float32(0.0), data.invvar)
        change = fit_sky(data.images - model, invvar, ~near_model, p.local_sky, p.sky_clip_sigma)
        change = change.significant(p.sky_min_significance)
    if not ((clipped & near_model).any() or change.coef.any()):
        return None
    data.invvar = np.where(clipped, np.float32(0.0), data.invvar)
    data.artefacts |= clipped
    data.images = data.images - background_image(change, model.shape[1:])
    data.sky = data.sky + change
    data.refitted = True
    return refit(data)


def masked_pixels_per_source(artefacts: np.ndarray, x, y, radius) -> np.ndarray:
    """Artefact pixels (summed over bands) within ``radius`` of each source, (n,) int."""
    total = artefacts.sum(axis=0)
    out = np.zeros(len(x), int)
    if total.any():
        for i, window, disk in disk_windows(total.shape, x, y, radius):
            out[i] = int(total[window][disk].sum())
    return out


def masked_psf_fraction(invvar: np.ndarray, stamps: list[np.ndarray], x, y) -> np.ndarray:
    """Fraction of each source's PSF flux that falls on pixels without weight, (n, B).

    The band's stamp (unit sum, odd size) is centred on the pixel nearest each
    source ``(x, y)``; the part of it outside the patch counts as unmasked.
    """
    n_band, ny, nx = invvar.shape
    out = np.zeros((len(x), n_band))
    dead = invvar <= 0
    for b, stamp in enumerate(stamps):
        if stamp is None or not dead[b].any():
            continue
        h = stamp.shape[0] // 2
        for i, (xs, ys) in enumerate(zip(x, y, strict=True)):
            if not (np.isfinite(xs) and np.isfinite(ys)):
                continue
            ix, iy = int(round(xs)), int(round(ys))
            x0, x1 = max(ix - h, 0), min(ix + h + 1, nx)
            y0, y1 = max(iy - h, 0), min(iy + h + 1, ny)
            if x0 >= x1 or y0 >= y1:
                continue
            part = stamp[y0 - iy + h : y1 - iy + h, x0 - ix + h : x1 - ix + h]
            out[i, b] = float(part[dead[b, y0:y1, x0:x1]].sum())
    return out
