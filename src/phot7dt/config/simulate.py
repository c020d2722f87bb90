"""Parameter section ``simulate`` of the simulate pipeline (phot7dt's own): a preset field plus
explicit overrides, and its ``defects`` subsection.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from phot7dt.config import Section

#: 7DT medium bands: 40 filters from 400 to 887.5 nm every 12.5 nm, named ``m`` + the
#: integer part of the central wavelength (m400, m412, m425, m437, ..., m887).
MEDIUM_BAND_WAVELENGTHS_NM: dict[str, float] = {
    f"m{int(400 + 12.5 * k)}": 400 + 12.5 * k for k in range(40)
}

Count = Annotated[int, Field(ge=0)]
Range = tuple[float, float]

#: Field size and source numbers of each preset; any of them can be overridden.
PRESETS: dict[str, dict[str, object]] = {
    "small": {
        "width": 400,
        "height": 400,
        "bands": ["m400", "m475", "m550", "m625"],
        "psf_star_grid": 4,
        "n_field_stars": 5,
        "n_galaxies": 12,
        "n_blends": 2,
        "n_saturated": 1,
        "n_unlisted": 2,
        "n_gaia_stars": 10,
    },
    "medium": {
        "width": 1200,
        "height": 1200,
        "bands": ["m400", "m450", "m500", "m550", "m600", "m650", "m700", "m750"],
        "psf_star_grid": 12,
        "n_field_stars": 60,
        "n_galaxies": 244,
        "n_blends": 8,
        "n_saturated": 3,
        "n_unlisted": 4,
        "n_gaia_stars": 120,
    },
    "large": {
        "width": 2000,
        "height": 2000,
        "bands": [f"m{int(400 + 37.5 * k)}" for k in range(12)],
        "psf_star_grid": 16,
        "n_field_stars": 250,
        "n_galaxies": 760,
        "n_blends": 15,
        "n_saturated": 6,
        "n_unlisted": 8,
        "n_gaia_stars": 330,
    },
}


def _check_bands(bands: list[str] | None) -> list[str] | None:
    if bands is None:
        return None
    unknown = [b for b in bands if b not in MEDIUM_BAND_WAVELENGTHS_NM]
    if unknown:
        raise ValueError(f"unknown 7DT medium bands {unknown}; expected m400, m412, ..., m887")
    if len(set(bands)) != len(bands):
        raise ValueError(f"bands repeat: {bands}")
    return bands


class FieldLayout(Section):
    """Size, bands and source numbers of one simulated field (a resolved preset).

    Attributes
    ----------
    width, height : int
        Image size, pixels.
    bands : list of str
        7DT medium-band names, e.g. ``["m400", "m475"]``.
    psf_star_grid : int
        Bright isolated stars (16.5–18.5 AB) on a jittered ``g x g`` grid, for ePSF building.
    n_field_stars, n_galaxies : int
        Randomly placed faint stars (19–22.5 AB) and galaxies (17.5–22 AB).
    n_blends : int
        Close pairs, 2–6 px apart (two catalog sources each).
    n_saturated : int
        Stars of 9–10.5 AB whose cores saturate in every band.
    n_unlisted : int
        Bright sources (stars and galaxies) left out of ``catalog.csv``.
    n_gaia_stars : int
        Stars with Gaia-like counts (``dN/dG ~ 10**(0.25 G)``, G 11–21), role ``bright_star``.
    """

    width: int = Field(ge=100)
    height: int = Field(ge=100)
    bands: list[str] = Field(min_length=1)
    psf_star_grid: Count
    n_field_stars: Count
    n_galaxies: Count
    n_blends: Count
    n_saturated: Count
    n_unlisted: Count
    n_gaia_stars: Count

    @field_validator("bands")
    @classmethod
    def _known_bands(cls, bands: list[str] | None) -> list[str] | None:
        return _check_bands(bands)


class DefectParams(Section):
    """``simulate.defects``: the flaws of real 7DT coadds (all off by default).

    Attributes
    ----------
    sky_offset_sigma : float
        Residual background per band: a constant of (0.5–1) times this, random sign, in SKYSIG.
    sky_gradient_sigma : float
        Residual sky plane per band: peak-to-peak change over the field (any direction), in SKYSIG.
    depth_map : bool
        Depth varying like a dithered coadd (relative weight in [depth_min_weight, 1]); the
        noise is ``SKYSIG sqrt(median(w) / w)`` and the weight image is returned with the band.
    depth_min_weight : float
        Lowest relative weight (exposure) of the depth map.
    hot_pixels : int
        Hot pixels per band.
    hot_pixel_sigma : (float, float)
        Range of hot-pixel amplitudes (log-uniform), in SKYSIG (0 < low ≤ high).
    hot_columns : int
        Hot columns per band: half whole columns, half segments of 10–60 % of the height.
    hot_column_sigma : float
        Constant offset of the hot columns, in SKYSIG.
    cosmic_rays : int
        Cosmic-ray tracks per band.
    cosmic_ray_sigma : (float, float)
        Cosmic-ray amplitudes (log-uniform; tracks 1–8 px long, 1–2 px wide), in SKYSIG
        (0 < low ≤ high).
    satellite_trails : int
        Number of bands crossed by one satellite trail (at most every band).
    trail_sigma : float
        Peak of the trail's Gaussian profile (FWHM = the band's PSF FWHM), in SKYSIG.
    nan_border_pix : int
        NaN borders of random width up to this along each image edge (dither footprint), px.
    """

    sky_offset_sigma: float = Field(0.0, ge=0, le=100)
    sky_gradient_sigma: float = Field(0.0, ge=0, le=100)
    depth_map: bool = False
    depth_min_weight: float = Field(0.3, gt=0, le=1)
    hot_pixels: Count = 0
    hot_pixel_sigma: Range = (10.0, 1000.0)
    hot_columns: Count = 0
    hot_column_sigma: float = Field(3.0, gt=0, le=1000)
    cosmic_rays: Count = 0
    cosmic_ray_sigma: Range = (5.0, 500.0)
    satellite_trails: Count = 0
    trail_sigma: float = Field(5.0, gt=0, le=1000)
    nan_border_pix: Count = 0

    @model_validator(mode="after")
    def _ranges_ordered(self) -> DefectParams:
        for name in ("hot_pixel_sigma", "cosmic_ray_sigma"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"{name}: expected 0 < low <= high, got {[low, high]}")
        return self


class SimulateParams(Section):
    """``simulate``: the sample 7DT field written by ``kedro run --pipeline simulate``.

    Attributes
    ----------
    preset : {"small", "medium", "large"}
        Field size and source numbers (:data:`PRESETS`); the layout keys below
        (``width`` ... ``n_gaia_stars``) override single preset values when not null.
    seed : int
        Seed of every random draw: the same seed gives the same files.
    noise : bool
        Add sky and source noise (false gives noiseless renders, for tests).
    pixel_scale_arcsec : float
        Pixel scale of the TAN WCS, arcsec/px.
    center_ra_deg, center_dec_deg : float
        Sky position of the image centre, degrees (ICRS).
    zp_ref : float
        Reference zero point of the common flux scale (``image_scaling.zp_ref``), AB mag.
    edge_margin_pix : int
        Source centres stay this far (plus 8 px) from the image edges, pixels.
    psf_fwhm_pix : float
        Moffat FWHM at 550 nm in the field centre, pixels.
    psf_fwhm_wavelength_index : float
        FWHM scales as ``(wavelength / 550 nm) ** index`` (negative: broader in the blue).
    psf_fwhm_field_variation : float
        Typical fractional FWHM change from the centre to the field corners (radial term
        0.5–1 times this, plus a gradient of typical size half of it).
    psf_ellipticity_field_variation : float
        Largest PSF ellipticity ``|g|`` over the field (0.6–1 times this per band): a
        constant, a gradient and an astigmatism-like quadratic pattern.
    psf_moffat_beta : (float, float)
        Range of the Moffat beta drawn per band (1.5 < low ≤ high).
    zp_true_peak, zp_true_drop : float
        True zero point (AB mag of 1 ADU) at 620 nm, and its fall at 400/840 nm, mag.
    zp_auto_offset : (float, float)
        Range of ``|ZP_AUTO - zp_true|`` (0 ≤ low ≤ high; the sign is random per
        band), mag.
    skysig_adu : (float, float)
        Range (0 ≤ low ≤ high) of the sky noise, rising to the red, ADU.
    egain : (float, float)
        Range (0 ≤ low ≤ high) of the gain, e-/ADU.
    saturate_adu : float
        ``SATURATE`` of every band, ADU.
    catalog_pos_sigma_pix : float
        Catalog position perturbation (Gaussian sigma per axis), pixels.
    catalog_flux_sigma, catalog_shape_sigma : float
        Catalog flux and Re perturbations: log-normal widths (sigma of the
        natural log).
    catalog_untyped_fraction : float
        Fraction of catalog galaxies whose ``TYPE`` is blank or ``GAL``.
    catalog_prior_fraction : float
        Fraction of catalog rows carrying prior widths (``POS_ERR``, ``Re_ERR``, ...).
    catalog_zero_padded_fraction : float
        Fraction of catalog IDs written with leading zeros (``"000123"``).
    gaia_g_max : float
        GaiaXP lists the stars with ``phot_g_mean_mag`` at most this, mag.
    gaia_mag_sigma : float
        Noise of the GaiaXP synthetic magnitudes, mag.
    nan_pixels, nan_columns : int
        Scattered NaN pixels, and NaN column segments, per band.
    defects : DefectParams
        Residual sky, depth map, hot pixels and columns, cosmic rays, trails, NaN borders.
    """

    preset: Literal["small", "medium", "large"] = "medium"
    seed: int = 7
    noise: bool = True
    width: int | None = None
    height: int | None = None
    bands: list[str] | None = None
    psf_star_grid: Count | None = None
    n_field_stars: Count | None = None
    n_galaxies: Count | None = None
    n_blends: Count | None = None
    n_saturated: Count | None = None
    n_unlisted: Count | None = None
    n_gaia_stars: Count | None = None
    pixel_scale_arcsec: float = Field(0.505, gt=0)
    center_ra_deg: float = Field(34.40, ge=0, lt=360)
    center_dec_deg: float = Field(-5.20, ge=-89, le=89)
    zp_ref: float = 25.0
    edge_margin_pix: Count = 20
    psf_fwhm_pix: float = Field(3.5, gt=1)
    psf_fwhm_wavelength_index: float = -0.25
    psf_fwhm_field_variation: float = Field(0.03, ge=0, le=0.5)
    psf_ellipticity_field_variation: float = Field(0.03, ge=0, le=0.3)
    psf_moffat_beta: Range = (3.2, 4.0)
    zp_true_peak: float = 27.2
    zp_true_drop: float = Field(0.5, ge=0)
    zp_auto_offset: Range = (0.02, 0.06)
    skysig_adu: Range = (3.0, 6.0)
    egain: Range = (1.2, 3.0)
    saturate_adu: float = Field(60000.0, gt=0)
    catalog_pos_sigma_pix: float = Field(0.3, ge=0)
    catalog_flux_sigma: float = Field(0.15, ge=0)
    catalog_shape_sigma: float = Field(0.15, ge=0)
    catalog_untyped_fraction: float = Field(0.05, ge=0, le=1)
    catalog_prior_fraction: float = Field(0.5, ge=0, le=1)
    catalog_zero_padded_fraction: float = Field(0.25, ge=0, le=1)
    gaia_g_max: float = 19.0
    gaia_mag_sigma: float = Field(0.01, ge=0)
    nan_pixels: Count = 20
    nan_columns: Count = 1
    defects: DefectParams = Field(default_factory=DefectParams)

    @field_validator("bands")
    @classmethod
    def _known_bands(cls, bands: list[str] | None) -> list[str] | None:
        return _check_bands(bands)

    @model_validator(mode="after")
    def _ranges_ordered(self) -> SimulateParams:
        for name in ("psf_moffat_beta", "zp_auto_offset", "skysig_adu", "egain"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name}: expected 0 <= low <= high, got {[low, high]}")
        if self.psf_moffat_beta[0] <= 1.5:
            raise ValueError(f"psf_moffat_beta: beta must exceed 1.5, got {self.psf_moffat_beta}")
        try:
            self.layout()
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise ValueError(f"{self.preset} preset with overrides: {problems}") from None
        return self

    def layout(self) -> FieldLayout:
        """The preset's layout with this section's non-null overrides applied."""
        values = dict(PRESETS[self.preset])
        overrides = {k: getattr(self, k) for k in FieldLayout.model_fields}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return FieldLayout.model_validate(values)

