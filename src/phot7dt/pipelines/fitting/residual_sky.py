"""Residual sky per patch and band, and pixels no model explains (before and after the fit).

Real coadds keep a background of a fraction of SKYSIG after sky subtraction, and
carry cosmic rays, hot pixels and columns and trails. Per patch and band:

1. **Pre-fit sky.** Pixels farther than ``sky_mask_fwhm`` FWHM (plus ``3 Re``
   for galaxies, plus a margin growing with the source's brightness) from every
   catalog source estimate the background: a 3-sigma-clipped median
   (``local_sky: constant``) or a plane whose level is such a median
   (``plane``). It is subtracted before the fit in the bands where its level
   exceeds ``sky_min_significance`` errors: faint wings and undetected sources
   raise the estimate by a fraction of its error even on a perfectly
   subtracted image, and at low S/N galaxy sizes, and with them fluxes, react
   strongly to a background offset, so an undetected background is left alone.
2. **Post-fit residuals.** With the fitted model ``m``, a pixel whose residual
   exceeds ``residual_clip_sigma`` times ``sqrt(1/invvar + max(m, 0)/gain +
   (residual_model_frac m)**2)`` is no part of any source model (the last term
   keeps bright-star cores that differ from the PSF model by a few per cent);
   it and its neighbours within ``residual_grow_pix`` get zero weight. The
   background is re-estimated from the residuals of pixels where the model is
   below a tenth of the noise, and the significant part of the change kept.
3. **Refit.** When pixels were clipped near a source or the background moved
   significantly, the fluxes are solved again at the fitted positions and
   shapes (a forced fit, cheap).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

__all__ = ["SkyModel", "background_image", "clip_residuals", "disk_windows", "fit_sky",
           "prefit_sky_mask"]

#: Pixels where the model is below this many noise sigmas count as empty sky after a fit.
EMPTY_MODEL_SIGMA = 0.1
#: Fewest unmasked pixels for a sky estimate (fewer: no background is fitted).
MIN_SKY_PIXELS = 100
#: Above four times this many usable pixels, a quarter of them (every other row and
#: column) estimate the background: its error stays below SKYSIG / 100.
MAX_SKY_PIXELS = 10_000


@dataclasses.dataclass(frozen=True)
class SkyModel:
    """Background of one patch, per band: ``coef[b] @ (1, x - xc, y - yc)``.

    Attributes
    ----------
    coef : (B, 3) float64 ndarray
        Level (image units) and x, y slopes (image units per px) per band.
    error : (B,) float64 ndarray
        1-sigma error of the level (image units).
    n_pixels : (B,) int ndarray
        Pixels the estimate used.
    """

    coef: np.ndarray
    error: np.ndarray
    n_pixels: np.ndarray

    @classmethod
    def zero(cls, n_band: int) -> SkyModel:
        return cls(np.zeros((n_band, 3)), np.zeros(n_band), np.zeros(n_band, int))

    def significant(self, n_sigma: float) -> SkyModel:
        """This background in the bands where its level exceeds ``n_sigma`` errors, 0 elsewhere."""
        keep = np.abs(self.coef[:, 0]) > n_sigma * np.where(self.error > 0, self.error, np.inf)
        return SkyModel(np.where(keep[:, None], self.coef, 0.0), self.error, self.n_pixels)

    def __add__(self, other: SkyModel) -> SkyModel:
        return SkyModel(self.coef + other.coef, np.hypot(self.error, other.error),
                        np.maximum(self.n_pixels, other.n_pixels))


def background_image(sky: SkyModel, shape: tuple[int, int]) -> np.ndarray:
    """The background of every band, ``(B, ny, nx)`` float32."""
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    x -= (nx - 1) / 2.0
    y -= (ny - 1) / 2.0
    c = sky.coef
    return (c[:, 0, None, None] + c[:, 1, None, None] * x + c[:, 2, None, None] * y).astype(
        np.float32)


def disk_windows(shape: tuple[int, int], x, y, radius):
    """Per source ``(index, (rows, cols) slices, disk)``: the bounding window of the disk of
    ``radius`` px around ``(x, y)`` clipped to ``shape``, and the disk inside it (bool).
    Sources off the image or with a non-finite position or radius are skipped."""
    ny, nx = shape
    for i, (xs, ys, r) in enumerate(zip(x, y, radius, strict=True)):
        if not (np.isfinite(xs) and np.isfinite(ys) and np.isfinite(r)):
            continue
        x0, x1 = max(int(xs - r), 0), min(int(xs + r) + 2, nx)
        y0, y1 = max(int(ys - r), 0), min(int(ys + r) + 2, ny)
        if x0 < x1 and y0 < y1:
            yy, xx = np.ogrid[y0:y1, x0:x1]
            yield i, np.s_[y0:y1, x0:x1], (xx - xs) ** 2 + (yy - ys) ** 2 <= r * r


def prefit_sky_mask(shape: tuple[int, int], x: np.ndarray, y: np.ndarray, radius: np.ndarray
                    ) -> np.ndarray:
    """Pixels within ``radius`` (px, per source) of any source ``(x, y)``: ``(ny, nx)`` bool."""
    mask = np.zeros(shape, bool)
    for _, window, disk in disk_windows(shape, x, y, radius):
        mask[window] |= disk
    return mask


def fit_sky(values: np.ndarray, invvar: np.ndarray, usable: np.ndarray, kind: str,
            clip_sigma: float) -> SkyModel:
    """Clipped background of ``values`` (B, ny, nx) on ``usable`` pixels.

    ``kind`` is ``constant`` or ``plane``; ``usable`` (B, ny, nx) or (ny, nx) bool.
    The slopes of a plane are inverse-variance weighted least squares; the level
    is the median of what is left, so that faint wings and undetected sources
    (a positive tail) pull it less than they would pull a mean. Pixels further
    than ``clip_sigma`` from the current fit are left out, iteratively.
    """
    n_band, ny, nx = values.shape
    usable = np.broadcast_to(usable, values.shape)
    basis = None
    if kind == "plane":
        y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
        basis = np.stack([np.ones_like(x), x - (nx - 1) / 2.0, y - (ny - 1) / 2.0])
    out = SkyModel.zero(n_band)
    for b in range(n_band):
        base = usable[b] & (invvar[b] > 0) & np.isfinite(values[b])
        if base.sum() < MIN_SKY_PIXELS:
            continue
        if base.sum() > 4 * MAX_SKY_PIXELS:  # every other pixel each way is plenty
            base = base & (np.add.outer(np.arange(ny) % 2, np.arange(nx) % 2) == 0)
        w, v = invvar[b][base].astype(np.float64), values[b][base].astype(np.float64)
        root_w = np.sqrt(w)
        terms = basis[:, base] if kind == "plane" else None
        keep, coef = np.ones(v.size, bool), np.zeros(3)
        for _ in range(10):
            if terms is None:  # a constant: the median of the kept pixels
                coef[0] = float(np.median(v[keep]))
                resid = v - coef[0]
            else:
                normal = (terms[:, keep] * w[keep]) @ terms[:, keep].T
                coef = np.linalg.solve(normal, (terms[:, keep] * w[keep]) @ v[keep])
                coef[0] += float(np.median((v - coef @ terms)[keep]))
                resid = v - coef @ terms
            new = np.abs(resid) * root_w <= clip_sigma
            if new.sum() < MIN_SKY_PIXELS or np.array_equal(new, keep):
                break
            keep = new
        out.coef[b] = coef
        # the median's error is sqrt(pi / 2) times the mean's
        out.error[b] = 1.2533 / np.sqrt(w[keep].sum())
        out.n_pixels[b] = int(keep.sum())
    return out


def clip_residuals(images: np.ndarray, invvar: np.ndarray, model: np.ndarray,
                   gain: np.ndarray | None, clip_sigma: float, model_frac: float,
                   grow_pix: int) -> np.ndarray:
    """Pixels (B, ny, nx) whose residual no source model explains (see module doc).

    A pixel is clipped in band ``b`` when its residual ``chi_b`` (in units of the
    noise plus the allowed model error) exceeds ``clip_sigma`` and the bands
    disagree: ``|chi_b - median_b chi| > clip_sigma``. A model that is wrong
    (a galaxy profile, a PSF core) is wrong in every band alike and is kept; a
    cosmic ray, hot pixel or trail is in one band. With fewer than three bands
    that test is replaced by clipping only where the model is below the noise.
    """
    from scipy import ndimage

    var = np.where(invvar > 0, 1.0 / np.where(invvar > 0, invvar, 1.0), np.inf)
    positive = np.clip(model, 0.0, None)
    if gain is not None:
        var = var + positive / np.asarray(gain, float)[:, None, None]
    var = var + (model_frac * model) ** 2
    chi = np.where(invvar > 0, (images - model) / np.sqrt(var), np.nan)
    bad = np.abs(np.nan_to_num(chi)) > clip_sigma
    if images.shape[0] >= 3:
        rows, cols = np.nonzero(bad.any(axis=0))  # the consensus is needed where a band is off
        with warnings.catch_warnings():  # pixels masked in every band: no consensus, no clip
            warnings.simplefilter("ignore", RuntimeWarning)
            consensus = np.nan_to_num(np.nanmedian(chi[:, rows, cols], axis=0))
        agree = np.abs(chi[:, rows, cols] - consensus[None]) <= clip_sigma
        bad[:, rows, cols] &= ~agree
    else:
        bad &= model * np.sqrt(np.where(invvar > 0, invvar, 0.0)) < 1.0
    if grow_pix > 0 and bad.any():
        size = 2 * grow_pix + 1
        bad = np.stack([ndimage.binary_dilation(b, np.ones((size, size), bool)) if b.any() else b
                        for b in bad])
    return bad & (invvar > 0)
