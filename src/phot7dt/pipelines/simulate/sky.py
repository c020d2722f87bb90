"""Instrument and sky of the simulated tile: per-band calibration, PSF, WCS and FITS headers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from astropy.io import fits

from phot7dt.config.simulate import (
    MEDIUM_BAND_WAVELENGTHS_NM,
    FieldLayout,
    SimulateParams,
)

if TYPE_CHECKING:
    from astropy.wcs import WCS

#: Per-band PSF ellipticity coefficients in ``truth_bands.csv`` (see :func:`psf_shear_at`).
PSF_SHAPE_COLUMNS = (
    "psf_g1_0",
    "psf_g1_x",
    "psf_g1_y",
    "psf_g2_0",
    "psf_g2_x",
    "psf_g2_y",
    "psf_astig",
)


def draw_band_table(
    params: SimulateParams, layout: FieldLayout, rng: np.random.Generator
) -> pd.DataFrame:
    """Calibration and PSF of every band (one row per band, the content of ``truth_bands.csv``).

    Returns
    -------
    pandas.DataFrame
        ``band``, ``wavelength_nm``, ``zp_true`` (AB mag of 1 ADU), ``zp_auto`` (the
        nominal header value, off by a few hundredths), ``skysig`` (ADU), ``egain``
        (e-/ADU), ``saturate`` (ADU) and the PSF columns ``fwhm_pix``, ``moffat_beta``,
        ``psf_grad_x``, ``psf_grad_y``, ``psf_radial``, ``psf_xc``, ``psf_yc``,
        ``psf_norm_pix`` (see :func:`moffat_fwhm_at`).
    """
    wave = np.array([MEDIUM_BAND_WAVELENGTHS_NM[b] for b in layout.bands])
    n = len(wave)
    # Throughput peaks near 620 nm and falls towards both ends of the medium-band range.
    zp_true = params.zp_true_peak - params.zp_true_drop * ((wave - 620.0) / 220.0) ** 2
    zp_true = zp_true + rng.normal(0.0, 0.03, n)
    offset = rng.uniform(*params.zp_auto_offset, n) * rng.choice([-1.0, 1.0], n)
    # Sky brightens to the red.
    sky_frac = (wave - 400.0) / 487.5
    skysig = params.skysig_adu[0] + (params.skysig_adu[1] - params.skysig_adu[0]) * sky_frac
    fwhm = params.psf_fwhm_pix * (wave / 550.0) ** params.psf_fwhm_wavelength_index
    variation = params.psf_fwhm_field_variation
    table = pd.DataFrame(
        {
            "band": layout.bands,
            "wavelength_nm": wave,
            "zp_true": zp_true,
            "zp_auto": zp_true + offset,
            "skysig": skysig * rng.uniform(0.95, 1.05, n),
            "egain": rng.uniform(*params.egain, n),
            "saturate": np.full(n, params.saturate_adu),
            "fwhm_pix": fwhm * rng.uniform(0.97, 1.03, n),
            "moffat_beta": rng.uniform(*params.psf_moffat_beta, n),
            "psf_grad_x": rng.normal(0.0, variation / 2, n),
            "psf_grad_y": rng.normal(0.0, variation / 2, n),
            "psf_radial": variation * rng.uniform(0.5, 1.0, n),
            "psf_xc": np.full(n, (layout.width - 1) / 2.0),
            "psf_yc": np.full(n, (layout.height - 1) / 2.0),
            "psf_norm_pix": np.full(n, np.hypot(layout.width, layout.height) / 2.0),  # corners at 1
        }
    )
    # Header values carry 4 decimals; round here so that the truth and the headers agree exactly.
    return table.round({c: 4 for c in ("zp_true", "zp_auto", "skysig", "egain", "fwhm_pix")})


def _field_uv(
    band: pd.Series, x: np.ndarray | float, y: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Field coordinates ``u = (x - psf_xc) / psf_norm_pix``, ``v`` likewise (corners at 1)."""
    u = (np.asarray(x, dtype=float) - band["psf_xc"]) / band["psf_norm_pix"]
    v = (np.asarray(y, dtype=float) - band["psf_yc"]) / band["psf_norm_pix"]
    return u, v


def moffat_fwhm_at(band: pd.Series, x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
    """True Moffat FWHM (pixels, before pixel convolution) at 0-based image positions.

    ``fwhm = fwhm_pix * (1 + psf_grad_x u + psf_grad_y v + psf_radial (u**2 + v**2))`` with
    ``u = (x - psf_xc) / psf_norm_pix`` and ``v = (y - psf_yc) / psf_norm_pix``. When the PSF
    is sheared (:func:`psf_shear_at`) this is the geometric mean of the major- and minor-axis
    FWHM (GalSim's shear preserves area).
    """
    u, v = _field_uv(band, x, y)
    factor = (
        1.0 + band["psf_grad_x"] * u + band["psf_grad_y"] * v + band["psf_radial"] * (u**2 + v**2)
    )
    return band["fwhm_pix"] * factor


def _shear_pattern(coef: dict, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g1 = coef["psf_g1_0"] + coef["psf_g1_x"] * u + coef["psf_g1_y"] * v
    g2 = coef["psf_g2_0"] + coef["psf_g2_x"] * u + coef["psf_g2_y"] * v
    return g1 + coef["psf_astig"] * (u**2 - v**2), g2 + coef["psf_astig"] * 2.0 * u * v


def psf_shear_at(
    band: pd.Series, x: np.ndarray | float, y: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """True PSF reduced shear ``(g1, g2)`` at 0-based image positions (GalSim convention).

    ``g1 = psf_g1_0 + psf_g1_x u + psf_g1_y v + psf_astig (u**2 - v**2)`` and
    ``g2 = psf_g2_0 + psf_g2_x u + psf_g2_y v + psf_astig 2 u v`` (``u``, ``v`` as in
    :func:`moffat_fwhm_at`). ``g1 > 0`` stretches the PSF along +x, ``g2 > 0`` along the
    ``x = y`` diagonal. Missing columns (older truth tables) count as 0: a round PSF.
    """
    u, v = _field_uv(band, x, y)
    coef = {name: float(band.get(name, 0.0)) for name in PSF_SHAPE_COLUMNS}
    return _shear_pattern(coef, u, v)


def draw_psf_shapes(
    params: SimulateParams, layout: FieldLayout, n_bands: int, rng: np.random.Generator
) -> pd.DataFrame:
    """PSF ellipticity coefficients of each band (columns :data:`PSF_SHAPE_COLUMNS`).

    A random constant, gradient and astigmatism pattern, scaled so that the largest ``|g|``
    over the field is 0.6–1 times ``psf_ellipticity_field_variation`` (all 0 when it is 0).
    """
    raw = np.column_stack(
        [
            rng.normal(0.0, 0.3, n_bands),
            rng.normal(0.0, 0.5, n_bands),
            rng.normal(0.0, 0.5, n_bands),
            rng.normal(0.0, 0.3, n_bands),
            rng.normal(0.0, 0.5, n_bands),
            rng.normal(0.0, 0.5, n_bands),
            rng.choice([-1.0, 1.0], n_bands) * rng.uniform(0.5, 1.0, n_bands),
        ]
    )
    norm = np.hypot(layout.width, layout.height) / 2.0
    xs = (np.linspace(0.0, layout.width - 1.0, 33) - (layout.width - 1) / 2.0) / norm
    ys = (np.linspace(0.0, layout.height - 1.0, 33) - (layout.height - 1) / 2.0) / norm
    u, v = np.meshgrid(xs, ys)
    peak = np.array(
        [
            np.hypot(*_shear_pattern(dict(zip(PSF_SHAPE_COLUMNS, c, strict=True)), u, v)).max()
            for c in raw
        ]
    )
    wanted = params.psf_ellipticity_field_variation * rng.uniform(0.6, 1.0, n_bands)
    return pd.DataFrame(raw * (wanted / peak)[:, None], columns=list(PSF_SHAPE_COLUMNS))


def point_source_snr(
    adu_flux: np.ndarray, skysig: float, egain: float, fwhm: np.ndarray, beta: float
) -> np.ndarray:
    """S/N of a PSF-fitted point source: ``F / sqrt(N_eff SKYSIG**2 + F / EGAIN)``.

    ``N_eff = 1 / sum(psf**2) = pi alpha**2 (2 beta - 1) / (beta - 1)**2`` is the noise-
    equivalent area (px) of a Moffat of FWHM ``fwhm`` (px); fluxes in raw ADU.
    """
    alpha = np.asarray(fwhm, dtype=float) / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    n_eff = np.pi * alpha**2 * (2.0 * beta - 1.0) / (beta - 1.0) ** 2
    flux = np.asarray(adu_flux, dtype=float)
    return flux / np.sqrt(n_eff * skysig**2 + np.clip(flux, 0.0, None) / egain)


def adu_per_scaled_flux(band: pd.Series, zp_ref: float) -> float:
    """Raw ADU per unit of flux on the common scale: ``10**(0.4 (ZP_AUTO - zp_ref))``."""
    return float(10.0 ** (0.4 * (band["zp_auto"] - zp_ref)))


def make_wcs(params: SimulateParams, layout: FieldLayout) -> WCS:
    """Celestial TAN WCS with a CD matrix, north up and east left, centred on the image."""
    from astropy.wcs import WCS
    scale = params.pixel_scale_arcsec / 3600.0
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [params.center_ra_deg, params.center_dec_deg]
    wcs.wcs.crpix = [(layout.width + 1) / 2.0, (layout.height + 1) / 2.0]
    wcs.wcs.cd = np.array([[-scale, 0.0], [0.0, scale]])
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.radesys = "ICRS"
    return wcs


def band_header(band: pd.Series, wcs: WCS, pixel_scale_arcsec: float) -> fits.Header:
    """Primary header of one band: the WCS plus tract7dt's calibration keys."""
    header = wcs.to_header()
    # astropy writes PCi_j + CDELTi; 7DT stacks carry a CD matrix, so write that instead.
    for key in ("PC1_1", "PC1_2", "PC2_1", "PC2_2", "CDELT1", "CDELT2"):
        header.remove(key, ignore_missing=True)
    cd = wcs.wcs.cd if wcs.wcs.has_cd() else wcs.pixel_scale_matrix
    for i in range(2):
        for j in range(2):
            header[f"CD{i + 1}_{j + 1}"] = float(cd[i, j])
    header["BUNIT"] = ("ADU", "raw counts, sky subtracted")
    header["TELESCOP"] = ("7DT", "simulated 7-Dimensional Telescope tile")
    header["FILTER"] = (band["band"], "7DT medium band")
    header["ZP_AUTO"] = (float(band["zp_auto"]), "AB zero point, mag")
    header["SKYSIG"] = (float(band["skysig"]), "sky noise per pixel, ADU")
    header["EGAIN"] = (float(band["egain"]), "effective gain, e-/ADU")
    header["SATURATE"] = (float(band["saturate"]), "saturation level, ADU")
    header["PEEING"] = (float(band["fwhm_pix"]), "PSF FWHM at the centre, px")
    header["SEEING"] = (round(float(band["fwhm_pix"]) * pixel_scale_arcsec, 4), "PSF FWHM, arcsec")
    return header
