"""Parameter section ``patch_run`` (tract7dt's): patch fitting and the PSF choice.

tract7dt keeps the PSF choice keys (``psf_model``, ``psf_fallback_model``,
``min_epsf_nstars_for_use``, fallback FWHM ...) in the same section as the
fitting keys, and a section may live in only one parameters file
(``parameters_fitting.yml``), so the whole section is modelled here and read by
both the psf and the fitting stages. It belongs in
``phot7dt.config.scene`` once that package exists (a ``fitting``
folder without ``create_pipeline`` would break the pipeline registry).
Subprocess-launch keys of tract7dt (``python_exe``) have no meaning here: patches
run in a joblib worker pool or on a dask cluster (``dask_scheduler``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from phot7dt.config import Section


class PatchRunParams(Section):
    """``patch_run``: per-patch fitting and the PSF used for it (tract7dt units)."""

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

