"""Parameter sections of the psf stage: tract7dt's ``epsf`` and ``moffat_psf``.

Keys, defaults and units are tract7dt 0.7's (``docs/configuration.md``), plus
``star_sat_check_r`` (tract7dt reads it without documenting it), and two
additions: ``smoothing_kernel`` (photutils' per-iteration smoothing; tract7dt
always used photutils' ``quartic`` kernel, which broadens a natively sampled
ePSF by ~2 % at FWHM 3.6 px and ~10 % at 2.5 px, so the default here is no
smoothing), ``model_wings`` (replace the noise-dominated outskirts of a stamp by
the Moffat fitted to its core, so that summed wing noise does not set the
unit-sum normalisation), ``save_epsf_montage`` (the per-band sheet of stamps)
and ``builder``: ``stack`` (default) combines the stars by an S/N-weighted,
clipped mean after moving each to the stamp centre with the fitter's Fourier
shift (see :mod:`phot7dt.pipelines.psf.epsf_stack`; photutils' median stack
left PSF-fit fluxes 0.5-1.4 % low on the simulated field); ``photutils`` is
tract7dt's ``EPSFBuilder``, the only builder that uses ``oversamp``,
``recenter_boxsize`` and ``smoothing_kernel``.

PSF-model error keys (phot7dt's own): ``psf_error_model`` turns on the
fractional flux error each cell's PSF carries (measured on its stars by
leave-one-out PSF/aperture flux ratios, :mod:`phot7dt.pipelines.psf.model_error`;
stack builder only); ``psf_error_aperture_fwhm`` is that check's aperture
radius in FWHMs; ``psf_error_shrink_stars`` the weight, in stars, of the
band-wide value in each cell's estimate; ``psf_error_fallback_frac`` the
fractional error assigned where no estimate exists (fallback PSFs of a band
without any measured cell, or the photutils builder). ``psf_spatial_model``
measures how the PSF's second moments change across each cell from its stars
(stack builder; :mod:`phot7dt.pipelines.psf.spatial`) and the fitter applies
the change at each patch's centre; ``psf_spatial_min_gradient_stars`` is the
fewest stars for a gradient (fewer: a constant correction only).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from phot7dt.config import Section


class EpsfParams(Section):
    """``epsf``: ePSF grid, star selection, building and its QA plots."""

    use_gaiaxp: bool = True
    epsf_ngrid: int = Field(7, ge=1)
    ngrid: int = Field(6, ge=1)
    skip_empty_epsf_patches: bool = True
    # Star candidates (pixels unless noted).
    thresh_sigma: float = Field(10.0, gt=0)
    minarea: int = Field(25, ge=1)
    cutout_size: int = Field(61, ge=11)
    edge_pad: int = Field(10, ge=0)
    min_sep: float = Field(30.0, ge=0)
    max_stars: int = Field(30, ge=1)
    q_range: tuple[float, float] = (0.7, 1.3)
    psfstar_mode: Literal["sep", "gaia", "sep+gaia"] = "sep+gaia"
    star_sat_check_r: int | Literal["auto"] = "auto"
    gaia_mag_min: float = 10.0
    gaia_mag_max: float = 30.0
    gaia_snap_to_sep: bool = True
    gaia_forced_k_fwhm: float = Field(1.5, gt=0)
    gaia_forced_rmin_pix: float = Field(3.0, gt=0)
    gaia_forced_rmax_pix: float = Field(15.0, gt=0)
    gaia_snr_min: float = Field(20.0, ge=0)
    gaia_match_r_pix: float = Field(5.0, ge=0)
    gaia_seed_sat_r: int = Field(5, ge=0)
    gaia_seed_sat_div: float = Field(1.3, gt=0)
    # ePSF building.
    builder: Literal["stack", "photutils"] = "stack"
    oversamp: int = Field(1, ge=1)
    maxiters: int = Field(30, ge=1)
    do_clip: bool = True
    recenter_boxsize: int = Field(9, ge=3)
    smoothing_kernel: Literal["quartic", "quadratic"] | None = None
    model_wings: bool = True
    final_psf_size: int = Field(55, ge=3)
    # PSF-model flux error (see phot7dt.pipelines.psf.model_error).
    psf_error_model: bool = True
    psf_error_aperture_fwhm: float = Field(2.0, gt=0.5, le=10.0)
    psf_error_shrink_stars: float = Field(5.0, ge=0)
    psf_error_fallback_frac: float = Field(0.02, ge=0, le=1)
    # PSF variation across a cell (see phot7dt.pipelines.psf.spatial).
    psf_spatial_model: bool = True
    psf_spatial_min_gradient_stars: int = Field(8, ge=3)
    # Backgrounds.
    background_subtract_patch: bool = True
    background_boxsize: int = Field(96, ge=4)
    background_filtersize: int = Field(9, ge=1)
    background_source_mask_sigma: float = Field(3.0, gt=0)
    background_mask_dilate: int = Field(1, ge=0)
    star_local_bkg_subtract: bool = True
    star_local_bkg_annulus_rin_pix: float = Field(20.0, ge=0)
    star_local_bkg_annulus_rout_pix: float = Field(30.0, gt=0)
    star_local_bkg_sigma: float = Field(3.0, gt=0)
    star_local_bkg_minpix: int = Field(30, ge=1)
    # QA plots (one figure per band each).
    save_epsf_montage: bool = True
    save_patch_background_diagnostics: bool = True
    save_star_local_background_diagnostics: bool = False
    save_star_montage_max: int = Field(100, ge=0)
    diagnostics_show_colorbar: bool = True
    save_growth_curve: bool = True
    save_residual_diagnostics: bool = True
    residual_diag_max_stars: int = Field(100, ge=1)
    # Parallelism.
    parallel_bands: bool = True
    max_workers: int | Literal["auto"] = "auto"

    @model_validator(mode="after")
    def _check_consistency(self) -> EpsfParams:
        problems = []
        for key in ("cutout_size", "final_psf_size", "recenter_boxsize"):
            if getattr(self, key) % 2 == 0:
                problems.append(f"epsf.{key} must be odd (got {getattr(self, key)})")
        if self.final_psf_size > self.cutout_size:
            problems.append(
                f"epsf.final_psf_size ({self.final_psf_size}) must not exceed "
                f"epsf.cutout_size ({self.cutout_size})"
            )
        if self.q_range[0] > self.q_range[1]:
            problems.append(f"epsf.q_range must be [low, high] (got {list(self.q_range)})")
        if self.gaia_mag_min > self.gaia_mag_max:
            problems.append("epsf.gaia_mag_min must not exceed epsf.gaia_mag_max")
        if self.gaia_forced_rmin_pix > self.gaia_forced_rmax_pix:
            problems.append("epsf.gaia_forced_rmin_pix must not exceed epsf.gaia_forced_rmax_pix")
        if isinstance(self.max_workers, int) and self.max_workers < -1:
            problems.append(
                f"epsf.max_workers must be >= 1, or 'auto'/0/-1 for every available CPU "
                f"(got {self.max_workers})"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def half_size(self) -> int:
        """Half width of a star cutout, pixels."""
        return self.cutout_size // 2

    @property
    def saturation_check_radius(self) -> int:
        """Half width of the box searched for saturated pixels around a star."""
        return self.half_size if self.star_sat_check_r == "auto" else int(self.star_sat_check_r)


class MoffatPsfParams(Section):
    """``moffat_psf``: the shape of the fallback PSF.

    ``fwhm_default_pix`` and ``module_path`` are tract7dt legacy keys, accepted
    so tract7dt configurations validate; the fallback FWHM default is
    ``patch_run.fallback_default_fwhm_pix``. The ``fit_*`` keys are additions:
    tract7dt's fallback always used the header FWHM and ``beta``; here FWHM and
    beta are fitted to the PSF stars of the cell, its neighbours or the band
    (see :mod:`phot7dt.pipelines.psf.fallback_shape`), and the header is the
    last resort. The fitted FWHM feeds every ``patch_run.psf_fallback_model``.
    """

    fwhm_default_pix: float = Field(4.0, gt=0)
    beta: float = Field(3.5, gt=1.0)
    radius_pix: float = Field(25.0, gt=0)
    module_path: str | None = None
    fit_to_stars: bool = True
    fit_min_stars: int = Field(5, ge=1)
    fit_neighbour_rings: int = Field(1, ge=0)
    fit_max_stars: int = Field(50, ge=1)
    fit_radius_fwhm: float = Field(3.0, gt=0)
    fit_free_centres: bool = True
    fit_free_beta: bool = True

