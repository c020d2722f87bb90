"""Parameter sections of the psf stage: tract7dt's ``epsf`` (ePSF grid, PSF-star selection,
ePSF building, backgrounds and QA plots) and ``moffat_psf`` (the fallback PSF's shape).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from phot7dt.config import Section


class EpsfParams(Section):
    """``epsf``: ePSF grid, star selection, building and its QA plots.

    Keys, defaults and units are tract7dt 0.7's, plus ``star_sat_check_r``
    (read by tract7dt without being documented there) and phot7dt's own
    ``builder``, ``smoothing_kernel``, ``model_wings``, ``psf_error_*`` and
    ``psf_spatial_*``. Pixels are working-frame pixels.

    Attributes
    ----------
    use_gaiaxp : bool
        Use GaiaXP stars as PSF-star seeds (``psfstar_mode`` ``gaia`` or
        ``sep+gaia``); ignored when the GaiaXP file has no rows.
    epsf_ngrid : int
        ePSF cells per axis of the working frame; one ePSF per cell and band.
    ngrid : int
        Fitting patches per axis inside each ePSF cell (patching stage).
    skip_empty_epsf_patches : bool
        Build (and patch) only cells holding at least one active catalog source.
    thresh_sigma : float
        SEP detection threshold of star candidates, sigma (the cell's sky rms).
    minarea : int
        SEP minimum detection area, pixels.
    cutout_size : int
        Star cutout side (odd, at least ``final_psf_size``), pixels.
    edge_pad : int
        Clearance from the frame edge beyond half a cutout, pixels.
    min_sep : float
        Smallest distance between accepted PSF stars, pixels.
    max_stars : int
        PSF stars per cell at most.
    q_range : (float, float)
        Allowed SEP axis ratio a/b of a candidate, ``[low, high]``.
    psfstar_mode : {"sep", "gaia", "sep+gaia"}
        Star candidates: SEP detections, GaiaXP seeds, or both (Gaia seeds
        first, then SEP detections, brightest first).
    star_sat_check_r : int or "auto"
        Half width of the box around a star that must hold no saturated pixel,
        pixels; ``"auto"`` = ``cutout_size // 2``.
    gaia_mag_min, gaia_mag_max : float
        GaiaXP seed magnitude window in the band, AB mag (min ≤ max).
    gaia_snap_to_sep : bool
        Move a seed to the nearest unused SEP detection within ``gaia_match_r_pix``.
    gaia_forced_k_fwhm : float
        Forced-aperture radius of a seed in PSF FWHMs, clipped to
        ``[gaia_forced_rmin_pix, gaia_forced_rmax_pix]``.
    gaia_forced_rmin_pix, gaia_forced_rmax_pix : float
        Bounds of that forced-aperture radius, pixels (min ≤ max).
    gaia_snr_min : float
        Smallest forced-aperture S/N of a seed.
    gaia_match_r_pix : float
        Search radius of ``gaia_snap_to_sep``, pixels.
    gaia_seed_sat_r : int
        Half width of the box around a seed that must hold no raw pixel at or
        above ``SATURATE / gaia_seed_sat_div``, pixels.
    gaia_seed_sat_div : float
        Divisor of ``SATURATE`` in that seed check.
    builder : {"stack", "photutils"}
        ``stack``: S/N-weighted, clipped mean of the stars after moving each to
        the stamp centre with the fitter's Fourier shift; ``photutils``:
        tract7dt's ``EPSFBuilder`` median stack, which biases PSF-fit fluxes low.
        ``oversamp``, ``recenter_boxsize`` and ``smoothing_kernel`` apply to
        ``photutils`` only; ``psf_error_model`` and ``psf_spatial_model`` to
        ``stack`` only.
    oversamp : int
        ``photutils`` builder: oversampling factor (> 1 is much slower; stamps
        are resampled to the native pixels).
    maxiters : int
        Builder iterations at most (``stack`` stops earlier when the star
        centres move by less than 1e-3 pixels).
    do_clip : bool
        5-sigma clipping of the stacked star pixels.
    recenter_boxsize : int
        ``photutils`` builder: recentering box (odd), pixels.
    smoothing_kernel : {"quartic", "quadratic"} or None
        ``photutils`` builder: smoothing applied at each iteration; None = none.
        ``quartic`` is tract7dt's setting; it broadens a natively sampled ePSF,
        the more so the narrower the PSF.
    model_wings : bool
        Replace the stamp's outskirts below 3 times the stamp noise by the
        Moffat fitted to its core, so that summed wing noise does not set the
        unit-sum normalisation.
    final_psf_size : int
        Stamp side after the centre crop (odd, at most ``cutout_size``; it also
        sets the patch halo, see ``patches.halo_pix_min``), pixels.
    psf_error_model : bool
        Measure the fractional flux error each cell's PSF carries (leave-one-out
        PSF/aperture flux ratios of its stars) and add it to
        ``FLUXERR_{band}_fit``; ``stack`` builder only.
    psf_error_aperture_fwhm : float
        Aperture radius of that check, in PSF FWHMs.
    psf_error_shrink_stars : float
        Weight, in stars, of the band-wide value in each cell's estimate
        (0 = each cell's own estimate).
    psf_error_fallback_frac : float
        Fractional PSF-model flux error where no estimate exists
        (bands without any measured cell, the ``photutils`` builder).
    psf_spatial_model : bool
        Measure how the PSF's second moments change across each cell from its
        stars; the fitter applies the change at each patch centre. ``stack``
        builder only.
    psf_spatial_min_gradient_stars : int
        Fewest stars for a linear gradient across a cell (fewer: a constant
        correction only).
    background_subtract_patch : bool
        Subtract a masked SEP background map from each cell image before star
        selection.
    background_boxsize : int
        SEP background mesh (capped at the cell size), pixels.
    background_filtersize : int
        Median filter of the background mesh, in mesh cells.
    background_source_mask_sigma : float
        Pixels above the median plus this many sky sigma are masked from the
        background, sigma.
    background_mask_dilate : int
        That source mask is grown by this many pixels (a ``2 n + 1`` square).
    star_local_bkg_subtract : bool
        Subtract from each star cutout the sigma-clipped median of an annulus.
    star_local_bkg_annulus_rin_pix, star_local_bkg_annulus_rout_pix : float
        Inner and outer annulus radii, pixels (the outer at most half a cutout
        less one pixel).
    star_local_bkg_sigma : float
        Clipping threshold of the annulus median, sigma.
    star_local_bkg_minpix : int
        Fewest valid annulus pixels; with fewer the cutout is left as it is.
    save_epsf_montage : bool
        Sheet of the ePSF stamps of all cells.
    save_patch_background_diagnostics : bool
        Sheet of the background-subtracted cells with candidate and used stars.
    save_star_local_background_diagnostics : bool
        Montage of the used star cutouts after local background subtraction.
    save_star_montage_max : int
        Stars in that montage at most, spread over the active cells.
    diagnostics_show_colorbar : bool
        Draw colour bars on the QA sheets.
    save_growth_curve : bool
        Encircled-energy curves of all cells.
    save_residual_diagnostics : bool
        Median residual of the used stars minus the ePSF, per cell.
    residual_diag_max_stars : int
        Used stars per cell entering that residual, at most.
    parallel_bands : bool
        Build bands in parallel worker processes; false uses one process.
    max_workers : int or "auto"
        Worker processes, at most the bands and the CPUs the process may use;
        ``"auto"``, 0 or -1 = all of them.
    """

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

    FWHM and beta are fitted to the PSF stars of the cell, else of its
    neighbours, else of the whole band (:mod:`phot7dt.pipelines.psf.fallback_shape`);
    the header FWHM with ``beta`` is the last resort, and the only shape with
    ``fit_to_stars: false`` (tract7dt's fallback). The fitted FWHM feeds every
    ``patch_run.psf_fallback_model``. The ``fit_*`` keys are phot7dt's own.

    Attributes
    ----------
    fwhm_default_pix : float
        tract7dt key, accepted, no effect; the fallback FWHM without a header
        value is ``patch_run.fallback_default_fwhm_pix``.
    beta : float
        Moffat index of the header-level fallback, and the start of the fits.
    radius_pix : float
        Radius of the Moffat fallback stamp, pixels.
    module_path : str or None
        tract7dt key, accepted, no effect.
    fit_to_stars : bool
        Fit FWHM and beta to PSF stars; false always uses the header FWHM and ``beta``.
    fit_min_stars : int
        Fewest stars for the cell and neighbour levels (the band level needs one).
    fit_neighbour_rings : int
        Neighbour level: the cells within this many cells of the cell (a 3 x 3
        block for 1), the cell included.
    fit_max_stars : int
        Stars per fit at most, those nearest the cell centre.
    fit_radius_fwhm : float
        Pixels within this many header FWHMs of a star enter the fit.
    fit_free_centres : bool
        Fit each star's centre; false keeps the SEP/Gaia centroid.
    fit_free_beta : bool
        Fit beta; false keeps ``beta`` and fits the FWHM only.
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

