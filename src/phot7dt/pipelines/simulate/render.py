"""GalSim rendering of one band of the simulated tile: profiles, PSF, noise, saturation, bad pixels.

Conventions: positions are 0-based image pixels ``(x, y)``; a GalSim image pixel
``(i, j)`` (1-based) is the numpy element ``[j - 1, i - 1]``. Profiles are drawn in
pixel units with ``method="auto"`` (integrated over the pixel).

GalSim is the ``sim`` extra (``pip install "phot7dt[sim]"``): it is imported on the first
drawing call, so registering the pipelines (``kedro run --pipeline full``) never needs it.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from phot7dt.pipelines.simulate.sky import moffat_fwhm_at, psf_shear_at
from phot7dt.progress import progress

if TYPE_CHECKING:
    import galsim

#: Galaxy profiles are truncated at this many (major-axis) half-light radii, like the
#: SDSS-style de Vaucouleurs profile the Tractor's mixtures approximate.
GALAXY_TRUNCATION_RE = 8.0
#: Stamps extend until the PSF wings fall below this fraction of the sky noise.
WING_FRACTION_OF_SKYSIG = 0.02
STAMP_HALF_SIZE_PIX = (24, 160)


def _galsim() -> ModuleType:
    """The ``galsim`` module, or an ImportError saying how to install it."""
    try:
        import galsim
    except ImportError as err:
        raise ImportError(
            "the simulate pipeline draws its images with GalSim, which is not installed: "
            'pip install "phot7dt[sim]"'
        ) from err
    return galsim


@functools.lru_cache(maxsize=64)
def _gsparams(accuracy: float) -> galsim.GSParams:
    return _galsim().GSParams(maxk_threshold=accuracy, folding_threshold=min(5e-3, 5 * accuracy))


def fft_accuracy(adu_flux: float, skysig: float) -> float:
    """GalSim k-space and folding thresholds that keep FFT ringing below ~5 % of the sky noise.

    At GalSim's default (1e-3) the ringing of a drawn Moffat reaches ~1.5e-6 of its
    flux, far above the sky noise for saturated stars. The value is a power of ten so
    that GalSim's per-accuracy profile caches stay small.
    """
    wanted = 33.0 * skysig / max(adu_flux, 1e-30)
    return float(10.0 ** np.clip(np.floor(np.log10(wanted)), -6, -3))


@functools.lru_cache(maxsize=512)
def _unit_sersic(n: float, accuracy: float) -> galsim.Sersic:
    """Circular Sersic profile, half-light radius 1 px, truncated at GALAXY_TRUNCATION_RE."""
    return _galsim().Sersic(
        n=n, half_light_radius=1.0, trunc=GALAXY_TRUNCATION_RE, gsparams=_gsparams(accuracy)
    )


def galaxy_profile(
    sersic_n: float, re_pix: float, ell: float, theta_deg: float, accuracy: float = 1e-3
) -> galsim.GSObject:
    """Unit-flux elliptical Sersic galaxy with half-light radius ``re_pix`` along the major axis.

    GalSim's shear with ``q = b/a`` preserves area, so a circular profile of
    half-light radius ``r`` becomes an ellipse with semi-axes ``r / sqrt(q)`` and
    ``r sqrt(q)``. Starting from ``r = re_pix * sqrt(q)`` therefore puts ``re_pix``
    on the major axis (the catalog's ``Re``). ``beta`` is the major axis angle
    counter-clockwise from +x, SExtractor's ``THETA_IMAGE``.
    """
    q = 1.0 - ell
    circular = _unit_sersic(round(float(sersic_n), 4), accuracy).dilate(re_pix * np.sqrt(q))
    return circular.shear(q=q, beta=theta_deg * _galsim().degrees)


def stamp_half_size(adu_flux: float, fwhm: float, beta: float, skysig: float, extent: float) -> int:
    """Half size (px) of a stamp holding the source's light down to a small part of the sky noise.

    ``extent`` is the profile's own radius (px, 0 for stars); the PSF wings are followed
    until they fall below ``WING_FRACTION_OF_SKYSIG`` of ``skysig``.
    """
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    central = max(adu_flux, 1e-30) * (beta - 1.0) / (np.pi * alpha**2)
    ratio = central / (WING_FRACTION_OF_SKYSIG * skysig)
    wing = alpha * np.sqrt(max(ratio ** (1.0 / beta) - 1.0, 0.0))
    low, high = STAMP_HALF_SIZE_PIX
    return int(np.clip(np.ceil(max(wing, extent + 2.0 * fwhm)), low, high))


def moffat_psf(band: pd.Series, x: float, y: float, accuracy: float = 1e-3) -> galsim.GSObject:
    """The band's true unit-flux PSF at 0-based position ``(x, y)``, before pixel integration.

    A Moffat of FWHM :func:`moffat_fwhm_at` and beta ``moffat_beta``, sheared by
    :func:`psf_shear_at` (left round when the shear is exactly 0).
    """
    fwhm = float(moffat_fwhm_at(band, x, y))
    psf = _galsim().Moffat(beta=float(band["moffat_beta"]), fwhm=fwhm, gsparams=_gsparams(accuracy))
    g1, g2 = (float(g) for g in psf_shear_at(band, x, y))
    return psf.shear(g1=g1, g2=g2) if (g1 or g2) else psf


def true_psf_image(band: pd.Series, x: float, y: float, size: int = 25) -> np.ndarray:
    """The exact pixel-integrated PSF at ``(x, y)``: ``(size, size)`` float64, unit sum, centred.

    The PSF centre is the centre of the middle pixel (``size`` must be odd); the stamp is
    normalised to unit sum within itself, as ePSF stamps are.

    Raises
    ------
    ValueError
        When ``size`` is even or smaller than 3.
    """
    if size < 3 or size % 2 == 0:
        raise ValueError(f"true_psf_image: size must be odd and >= 3, got {size}")
    image = _galsim().ImageD(size, size, scale=1.0)
    moffat_psf(band, x, y, 1e-5).drawImage(image=image, method="auto")
    return image.array / image.array.sum()


def draw_source(row: pd.Series, adu_flux: float, band: pd.Series) -> galsim.ImageF:
    """Noiseless pixel-integrated image of one source in one band, centred on its true position."""
    gs = _galsim()
    x, y = float(row["x_pix"]), float(row["y_pix"])
    fwhm, beta, skysig = (
        float(moffat_fwhm_at(band, x, y)),
        float(band["moffat_beta"]),
        float(band["skysig"]),
    )
    accuracy = fft_accuracy(adu_flux, skysig)
    psf = moffat_psf(band, x, y, accuracy)
    extent = 0.0
    if row["TYPE"] == "STAR":
        obj = psf.withFlux(adu_flux)
    else:
        extent = GALAXY_TRUNCATION_RE * float(row["re_pix"])
        gal = galaxy_profile(row["sersic_n"], row["re_pix"], row["ell"], row["theta_deg"], accuracy)
        obj = gs.Convolve(gal.withFlux(adu_flux), psf)
    half = stamp_half_size(adu_flux, fwhm, beta, skysig, extent)
    ix, iy = int(round(x)), int(round(y))
    bounds = gs.BoundsI(ix + 1 - half, ix + 1 + half, iy + 1 - half, iy + 1 + half)
    stamp = gs.ImageF(bounds, scale=1.0)  # without a scale GalSim would pick the Nyquist scale
    obj.drawImage(image=stamp, offset=(x - ix, y - iy), method="auto")
    return stamp


def add_stamp(image: np.ndarray, stamp: galsim.ImageF) -> None:
    """Add the part of ``stamp`` that overlaps ``image`` (a ``(ny, nx)`` array) in place."""
    full = _galsim().BoundsI(1, image.shape[1], 1, image.shape[0])
    overlap = stamp.bounds & full
    if overlap.isDefined():
        image[overlap.ymin - 1 : overlap.ymax, overlap.xmin - 1 : overlap.xmax] += stamp[
            overlap
        ].array


def render_model(
    sources: pd.DataFrame, adu_flux: np.ndarray, band: pd.Series, shape: tuple[int, int]
) -> tuple[np.ndarray, list[galsim.BoundsI]]:
    """Noiseless band image (float32, ADU) and the stamp bounds of sources whose peak saturates."""
    image = np.zeros(shape, dtype=np.float32)
    saturating = []
    rows = progress(sources.iterrows(), total=len(sources), desc=f"render {band['band']}",
                    unit="source")
    for (_, row), flux in zip(rows, adu_flux, strict=True):
        stamp = draw_source(row, float(flux), band)
        add_stamp(image, stamp)
        if stamp.array.max() >= band["saturate"]:
            saturating.append(stamp.bounds)
    return image, saturating


def add_noise(
    model: np.ndarray,
    band: pd.Series,
    rng: np.random.Generator,
    depth: np.ndarray | None = None,
) -> np.ndarray:
    """Source Poisson noise (electrons, via EGAIN) plus Gaussian sky noise SKYSIG; float32 ADU.

    ``depth`` is the exposure relative to the median (``w / median(w)``, ``(ny, nx)``): the
    sky noise becomes ``SKYSIG / sqrt(depth)`` and the effective gain ``EGAIN * depth``.
    """
    gain = float(band["egain"])
    if depth is None:
        source = rng.poisson(np.clip(model, 0.0, None).astype(np.float64) * gain) / gain
        sky = rng.standard_normal(model.shape, dtype=np.float32) * np.float32(band["skysig"])
        return (source + sky).astype(np.float32)
    gain_map = gain * depth.astype(np.float64)
    source = rng.poisson(np.clip(model, 0.0, None) * gain_map) / gain_map
    sky = rng.standard_normal(model.shape, dtype=np.float32)
    sky *= np.float32(band["skysig"]) / np.sqrt(depth, dtype=np.float32)
    return (source + sky).astype(np.float32)


def bleed_and_clip(image: np.ndarray, saturate: float, regions: list[galsim.BoundsI]) -> None:
    """Saturate in place: spill each column's charge above ``saturate`` along the column, then clip.

    In each saturating source's region, a column whose pixels exceed the level by a
    total ``E`` gets ``E / saturate`` extra saturated pixels, half above and half below
    its saturated run: the short bleed trails of CCD/CMOS stacks.
    """
    ny = image.shape[0]
    for b in regions:
        x0, x1 = max(b.xmin - 1, 0), min(b.xmax, image.shape[1])
        y0, y1 = max(b.ymin - 1, 0), min(b.ymax, ny)
        block = image[y0:y1, x0:x1]
        excess = np.clip(block - saturate, 0.0, None).sum(axis=0)
        for col in np.flatnonzero(excess > 0):
            rows = np.flatnonzero(block[:, col] >= saturate) + y0
            extra = int(np.ceil(excess[col] / saturate / 2.0))
            lo, hi = max(rows.min() - extra, 0), min(rows.max() + extra + 1, ny)
            image[lo:hi, x0 + col] = saturate
    np.minimum(image, np.float32(saturate), out=image)


def add_bad_pixels(
    image: np.ndarray, n_pixels: int, n_columns: int, rng: np.random.Generator
) -> None:
    """Set scattered pixels and column segments (a third of the height each) to NaN, in place."""
    ny, nx = image.shape
    image[rng.integers(0, ny, n_pixels), rng.integers(0, nx, n_pixels)] = np.nan
    for _ in range(n_columns):
        length = max(ny // 3, 1)
        start = int(rng.integers(0, ny - length + 1))
        image[start : start + length, int(rng.integers(0, nx))] = np.nan


def saturated_sources(sources: pd.DataFrame, adu_flux: np.ndarray, band: pd.Series) -> np.ndarray:
    """Whether each source's own noiseless peak pixel reaches ``saturate`` in this band.

    Only sources whose unpixelised PSF peak (an upper bound of any pixel) could reach
    half the level are drawn.
    """
    fwhm = moffat_fwhm_at(band, sources["x_pix"].to_numpy(), sources["y_pix"].to_numpy())
    beta = float(band["moffat_beta"])
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    bound = adu_flux * (beta - 1.0) / (np.pi * alpha**2)
    out = np.zeros(len(sources), dtype=bool)
    for i in np.flatnonzero(bound >= 0.5 * band["saturate"]):
        stamp = draw_source(sources.iloc[i], float(adu_flux[i]), band)
        out[i] = stamp.array.max() >= band["saturate"]
    return out
