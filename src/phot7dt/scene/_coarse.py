"""The coarse pass of a many-band fit: positions and shapes on coadds of bands (internal).

Positions and shapes are shared by every band, so most of their information
survives when bands are coadded.  With ``FitSettings.coarse_bands`` = K and
at least 2K bands with data, :func:`coarse_pass` fits the scene on K coadds
first (warm-up and all-parameter stages, no final check), and the all-band
fit starts from there with one "all" stage, its final check and polish.

* **Bins.**  Bands are sorted by PSF width and cut into K bins of equal
  count (:func:`psf_bins`), so the bands of a bin have nearly the same PSF
  and one PSF models their coadd whatever a source's spectrum
  (:class:`BlendedPSF`, the bands' PSFs weighted like their pixels).
* **Coadds.**  Inverse-variance weighted mean images; a pixel is kept only
  where every band of its bin has data.  The source Poisson term uses an
  effective gain such that the variance of the mean is model / gain.
* **What the all-band fit keeps.**  The coarse positions and shapes (its
  start), the coarse decision on unconstrained shapes (the test of
  :mod:`._schedule` on the coadds), and the coarse values of sources that
  are not targets (a patch's halo: modelled for their light, fitted in the
  coarse pass only).

A coarse evaluation costs about K / n_band of an all-band one, and the
all-band fit usually converges in 2-5 steps from the coarse optimum, which
differs from its own only through PSF differences within a bin.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ._engine import PatchModel
from ._problem import make_problem
from ._schedule import fit_scene

__all__ = ["BlendedPSF", "binned_patch", "coarse_pass", "psf_bins", "use_coarse"]


class BlendedPSF:
    """A weighted mean of PSFs (weights summing to 1), e.g. the PSF of a coadd (a ``psf.PSF``)."""

    caches_fourier = True

    def __init__(self, psfs, weights):
        self.psfs = list(psfs)
        self.weights = np.asarray(weights, float) / np.sum(weights)

    @property
    def half_size(self):
        return max(p.half_size for p in self.psfs)

    def fourier(self, size):
        cache = self.__dict__.setdefault("_ft_cache", {})
        if size not in cache:
            cache[size] = sum(
                w * p.fourier(size) for w, p in zip(self.weights, self.psfs, strict=True)
            )
        return cache[size]

    def wing_radius(self, threshold):
        """Beyond the largest member radius every member, hence the mean, is below ``threshold``."""
        return np.max([p.wing_radius(threshold) for p in self.psfs], axis=0)

    def rms_width(self):
        """RMS width per axis (px): second moments add over the weighted members."""
        return float(
            np.sqrt(
                sum(w * p.rms_width() ** 2 for w, p in zip(self.weights, self.psfs, strict=True))
            )
        )


def psf_bins(psfs, sigma, n_bins):
    """Bands grouped into ``n_bins`` bins of similar PSF width (list of index arrays).

    Bands are sorted by the second-moment width of their PSF and cut into
    bins of equal count, so that the coadd of a bin is modelled by one PSF
    whatever the sources' spectra; bands without data (sigma = inf) are
    left out.
    """
    good = np.flatnonzero(np.isfinite(sigma))
    order = good[np.argsort([psfs[b].rms_width() for b in good], kind="stable")]
    n_bins = max(1, min(n_bins, order.size))
    return [np.sort(part) for part in np.array_split(order, n_bins)]


def binned_patch(images, invvar, psfs, table, sigma, n_bins, gain=None):
    """(images, invvar, psfs, table, gain) of ``n_bins`` coadds of bands of similar PSF.

    ``sigma`` is each band's typical pixel noise (bands without data, sigma =
    inf, are left out).  A coadd pixel is kept only where every band of its
    bin has data, so one PSF and one flux per source describe it.
    """
    bins = psf_bins(psfs, sigma, n_bins)
    a = 1.0 / sigma**2
    shape = (len(bins),) + images.shape[1:]
    out_img, out_iv = np.zeros(shape), np.zeros(shape)
    out_psf, out_gain = [], np.ones(len(bins))
    flux = np.full((len(table), len(bins)), np.nan)
    for k, bands in enumerate(bins):
        has = np.ones(shape[1:], bool)
        for b in bands:
            iv = np.asarray(invvar[b], float)
            d = np.asarray(images[b], float)
            ok = np.isfinite(iv) & np.isfinite(d) & (iv > 0)
            has &= ok
            out_iv[k] += np.where(ok, iv, 0.0)
            out_img[k] += np.where(ok, iv * np.where(ok, d, 0.0), 0.0)
        out_iv[k] = np.where(has, out_iv[k], 0.0)
        out_img[k] = np.where(has, out_img[k] / np.where(has, out_iv[k], 1.0), 0.0)
        wk = a[bands]
        out_psf.append(BlendedPSF([psfs[b] for b in bands], wk))
        if gain is not None:
            out_gain[k] = np.sum(wk) ** 2 / np.sum(wk**2 / gain[bands])
        f = table.flux[:, bands]
        fin = np.isfinite(f)
        with np.errstate(invalid="ignore", divide="ignore"):
            flux[:, k] = np.sum(np.where(fin, f * wk, 0.0), 1) / np.sum(np.where(fin, wk, 0.0), 1)
    return (
        out_img,
        out_iv,
        out_psf,
        table.with_flux(flux),
        (None if gain is None else out_gain),
        bins,
    )


def use_coarse(settings, sigma):
    """Whether a fit with these settings on bands of noise ``sigma`` takes a coarse pass."""
    k = settings.coarse_bands
    return k > 0 and np.isfinite(sigma).sum() >= 2 * k


def coarse_pass(images, invvar, psfs, table, settings, gain, sigma, pad, size_fn):
    """Fit on :func:`binned_patch` coadds; the ``SceneFit`` of :func:`._schedule.fit_scene`
    (no final check, ``ev`` None).

    ``size_fn`` is the all-band stamp-size function (coarse fluxes stand
    for every band of their bin).  Groups whose coarse stage hit the
    iteration limit or stalled are recorded as ``early_bad``.  The Poisson
    weights of the coadds are not refreshed after the positions warm-up: the
    coarse optimum is only a start, and the all-band fit weights its pixels
    from its own model there.
    """
    img, iv, bpsfs, btable, bgain, bins = binned_patch(
        images, invvar, psfs, table, sigma, settings.coarse_bands, gain
    )
    expand = np.zeros(images.shape[0], np.int64)
    for k, bands in enumerate(bins):
        expand[bands] = k
    model = PatchModel(img, iv, bpsfs, btable.type.tolist(), btable.flux_prior(), bgain, pad=pad)
    coarse = fit_scene(
        model,
        btable,
        settings.replace(fisher_bands=0, coarse_bands=0),
        make_problem(btable, img.shape[1:], settings),
        lambda params, fluxes: size_fn(params, fluxes[:, expand]),
        check=False,
        refresh=False,
    )
    rec = coarse.record
    early_bad = rec.early_bad | rec.hit_max | rec.stalled
    return dataclasses.replace(coarse, record=dataclasses.replace(rec, early_bad=early_bad))
