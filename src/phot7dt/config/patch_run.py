"""Parameter section ``patch_run``: tract7dt's patch-fitting and PSF-choice keys, read by the
psf and fitting stages.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from phot7dt.config import Section


class PatchRunParams(Section):
    """``patch_run``: per-patch fitting and the PSF used for it (tract7dt units).

    Keys, defaults and units are tract7dt 0.7's; ``conf/base`` turns the plot
    switches ``no_cutouts`` and ``no_patch_overview`` on. tract7dt's subprocess
    key ``python_exe`` does not exist here: patches run in a joblib worker pool
    or on a dask cluster (``dask_scheduler``). Fitting-engine settings tract7dt
    does not have are in ``scene``. Pixels are working-frame pixels.

    Attributes
    ----------
    resume : bool
        Skip patches whose results already exist in the work directory.
    max_workers : int or "auto"
        Worker processes of the local pool, at most the CPUs the process may use;
        ``"auto"``, 0 or -1 = all of them.
    threads_per_process : int
        BLAS/OpenMP threads per worker process (local pool and dask workers).
    dask_scheduler : str or None
        Address of a dask.distributed scheduler (``tcp://host:8786``), or ``local``
        for a dask cluster on this machine; None = the local joblib pool of
        ``max_workers`` processes.
    gal_model : {"dev", "exp", "sersic", "star"}
        Model of a source whose ``TYPE`` is missing, blank, ``GAL`` or unknown.
    n_opt_iters : int
        Levenberg-Marquardt iterations per fit stage at most; a group that
        reaches it unconverged is flagged ``hit_max_iters``.
    dlnp_stop : float
        Relative ln-probability tolerance: a step converges only when its gain is
        at most ``dlnp_stop * max(1, |ln P|)`` and every parameter's remaining step
        is below ``scene.step_tol_sigma`` of its error.
    r_ap : float
        Radius of the aperture sum that initialises a flux missing from the
        catalog, pixels.
    eps_flux : float
        Floor of every initial flux, scaled counts.
    sersic_n_init : float
        Sersic index of a source whose catalog ``SERSIC_n`` is missing, not finite or ≤ 0.
    re_fallback_pix : float
        Half-light radius of a galaxy whose catalog ``Re`` is not finite, pixels.
    pos_max_shift_pix : float or None
        Half side of the square box around the catalog position that bounds each
        fitted position, pixels; None = unbounded.
    enable_staged_fit : bool
        A positions-only warm-up stage before the all-parameter stage; false fits
        all parameters in one stage.
    enable_multi_band_simultaneous_fitting : bool
        One position and shape per source shared by all bands (true), or each
        band fitted on its own (false; per-band ``fit_status_{band}``).
    flag_maxiter_margin : int
        An unconverged source is also flagged ``opt_hit_max_iters`` when its
        iterations reach ``n_opt_iters - flag_maxiter_margin``.
    psf_model : {"pixelized", "hybrid", "gaussian_mixture_from_stamp"}
        How an ePSF is used by the fit: as its pixelized stamp (``hybrid`` too:
        the engine renders through the pixelized PSF in Fourier space), or as a
        mixture of ``gaussian_mixture_n`` Gaussians fitted to the stamp.
    psf_fallback_model : {"gaussian_mixture", "ncircular_gaussian", "moffat"}
        PSF where a cell has no usable ePSF: a Moffat (FWHM and beta from
        ``moffat_psf``), one circular Gaussian, or ``ncircular_gaussian_n``
        concentric Gaussians, each with the fallback FWHM.
    min_epsf_nstars_for_use : int
        An ePSF built from fewer stars (stars actually used) is replaced by the
        fallback; 0 keeps every ePSF that was built.
    ncircular_gaussian_n : int
        Components of the ``ncircular_gaussian`` fallback, 1 to 3.
    hybrid_psf_n : int
        tract7dt's hybrid-PSF component count; accepted, no effect.
    gaussian_mixture_n : int
        Gaussians of the mixture fitted to each ePSF under
        ``psf_model: gaussian_mixture_from_stamp``.
    fallback_default_fwhm_pix : float
        Fallback FWHM when the header has neither ``PEEING`` nor ``SEEING`` and
        no FWHM was fitted to stars (``moffat_psf``), pixels.
    fallback_stamp_radius_pix : float
        Stamp radius of the ``gaussian_mixture`` and ``ncircular_gaussian``
        fallbacks, pixels (the Moffat uses ``moffat_psf.radius_pix``).
    cutout_size : int
        Side of each per-source montage panel, pixels.
    cutout_max_sources : int or None
        Sources per patch given a montage, at most, starting at ``cutout_start``;
        None = all of them.
    cutout_start : int
        Index (in patch order) of the first source of a patch given a montage.
    cutout_data_p_lo, cutout_data_p_hi : float
        Lower and upper percentiles (0-100) of the data panels' display stretch.
    cutout_model_p_lo, cutout_model_p_hi : float
        Lower and upper percentiles (0-100) of the model panels' display stretch.
    cutout_resid_p_abs : float
        Percentile (0-100) of ``|residual|`` that sets the symmetric residual
        display range.
    no_cutouts : bool
        Draw no per-source montages (data, model, residual per band); tract7dt: false.
    no_patch_overview : bool
        Draw no data/model/residual figure per patch; tract7dt: false.
    """

    resume: bool = False
    max_workers: Annotated[int, Field(ge=-1)] | Literal["auto"] = 32
    threads_per_process: int = Field(1, ge=1)
    dask_scheduler: str | None = None
    gal_model: Literal["dev", "exp", "sersic", "star"] = "exp"
    n_opt_iters: int = Field(20, ge=1)
    dlnp_stop: float = Field(1e-6, gt=0)
    r_ap: float = Field(5.0, gt=0)
    eps_flux: float = Field(1e-4, gt=0)
    sersic_n_init: float = Field(3.0, gt=0)
    re_fallback_pix: float = Field(3.0, gt=0)
    pos_max_shift_pix: float | None = Field(5.0, gt=0)
    enable_staged_fit: bool = True
    enable_multi_band_simultaneous_fitting: bool = True
    flag_maxiter_margin: int = Field(0, ge=0)
    # PSF used per band and ePSF cell.
    psf_model: Literal["pixelized", "hybrid", "gaussian_mixture_from_stamp"] = "pixelized"
    psf_fallback_model: Literal["gaussian_mixture", "ncircular_gaussian", "moffat"] = "moffat"
    min_epsf_nstars_for_use: int = Field(5, ge=0)
    ncircular_gaussian_n: int = Field(3, ge=1, le=3)
    hybrid_psf_n: int = Field(9, ge=1)
    gaussian_mixture_n: int = Field(4, ge=1)
    fallback_default_fwhm_pix: float = Field(4.0, gt=0)
    fallback_stamp_radius_pix: float = Field(25.0, gt=0)
    # Per-source cutout montages and patch overview plots.
    cutout_size: int = Field(100, ge=3)
    cutout_max_sources: int | None = Field(None, ge=0)
    cutout_start: int = Field(0, ge=0)
    cutout_data_p_lo: float = Field(1.0, ge=0, le=100)
    cutout_data_p_hi: float = Field(99.0, ge=0, le=100)
    cutout_model_p_lo: float = Field(1.0, ge=0, le=100)
    cutout_model_p_hi: float = Field(99.0, ge=0, le=100)
    cutout_resid_p_abs: float = Field(99.0, ge=0, le=100)
    no_cutouts: bool = False
    no_patch_overview: bool = False

