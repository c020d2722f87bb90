"""Parameter sections of the fitting stage: tract7dt's ``merge``, and phot7dt's ``scene``
(fitting-engine settings of :class:`phot7dt.scene.FitSettings` that tract7dt's ``patch_run``
lacks) and ``sky_and_artefacts`` (residual background and artefact pixels of each patch);
``patch_run`` itself is in :mod:`phot7dt.config.patch_run`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from phot7dt.config import Section

__all__ = ["MergeParams", "SceneParams", "SkyArtefactParams"]


class SkyArtefactParams(Section):
    """``sky_and_artefacts``: residual background and artefact pixels of each patch.

    See :mod:`phot7dt.pipelines.fitting.residual_sky` for the method.

    Attributes
    ----------
    local_sky : {"none", "constant", "plane"}
        Background fitted per patch and band: none (the image is taken as
        sky-subtracted, tract7dt's assumption), a constant, or a plane.
    sky_mask_fwhm : float
        Pre-fit sky: pixels within this many PSF FWHM of a catalog source (plus
        3 ``Re`` for galaxies and a margin for bright sources) are left out;
        ignored when ``local_sky`` is none.
    sky_clip_sigma : float
        Clipping threshold of the background estimate, sigma.
    sky_min_significance : float
        A band's background (and a later change of it) is subtracted only when
        its level exceeds this many of its errors, sigma (0 = always).
    detect_artefacts : bool
        Before the fit, give zero weight to pixels sharper than the PSF allows
        (cosmic rays, hot pixels), hot or cold columns and rows, and trails
        (:func:`phot7dt.artefacts.find_artefacts`).
    clip_residuals : bool
        After the fit, give zero weight to pixels the model cannot explain and
        solve the fluxes again; the three ``residual_*`` keys act only when true.
    residual_clip_sigma : float
        Threshold of the residual clipping in units of the pixel noise (with the
        model error of ``residual_model_frac`` added), sigma.
    residual_model_frac : float
        Model error allowed per pixel in the residual clipping, as a fraction
        of the model value.
    residual_grow_pix : int
        Clipped pixels also mask their neighbours within this distance, pixels.
    """

    local_sky: Literal["none", "constant", "plane"] = "constant"
    sky_mask_fwhm: float = Field(3.0, gt=0)
    sky_clip_sigma: float = Field(3.0, gt=1)
    sky_min_significance: float = Field(3.0, ge=0)
    detect_artefacts: bool = True
    clip_residuals: bool = True
    residual_clip_sigma: float = Field(5.0, gt=2)
    residual_model_frac: float = Field(0.1, ge=0)
    residual_grow_pix: int = Field(1, ge=0)


class MergeParams(Section):
    """``merge``: joining per-patch results onto the active catalog.

    Attributes
    ----------
    wcs_fits : str or None
        FITS file whose celestial WCS turns fitted working-frame pixels into
        ``RA_fit``/``DEC_fit``; None uses the working-frame WCS snapshot
        (``wcs_snapshot``). A given file must describe the working frame. Give it at run
        time (``--params merge.wcs_fits=...`` or the run file's ``params``): it is the path
        of the catalog's ``wcs_reference`` dataset.
    pattern : str
        tract7dt's glob of per-patch CSV files; accepted, no effect (the patch
        results are a dataset of this project).
    low_snr_threshold : float
        A fitted source whose combined S/N, ``sqrt(sum_b (max(FLUX_b, 0) /
        FLUXERR_b)**2)`` (one band in single-band ``fit_status_{band}``), is
        below this gets ``fit_status`` ``low_snr``.
    """

    pattern: str = "*_cat_fit.csv"
    wcs_fits: str | None = None
    low_snr_threshold: float = Field(3.0, ge=0)


class SceneParams(Section):
    """``scene``: fitting-engine settings beyond tract7dt's ``patch_run``.

    Attributes
    ----------
    source_poisson_noise : bool
        Add the sources' own Poisson variance (model / gain, gain =
        ``EGAIN / scale`` electrons per scaled count) to the sky noise; false is
        tract7dt's sky-only noise.
    flux_err : {"marginal", "conditional"}
        ``FLUXERR_{band}_fit``: marginalised over positions and shapes, or the
        flux block alone (at fixed positions and shapes).
    step_tol_sigma : float
        Convergence (together with ``patch_run.dlnp_stop``) also needs every
        parameter's remaining Gauss-Newton step below this many of its errors,
        sigma. 0.2 leaves a parameter within 0.2 sigma of its optimum, which
        adds at most 2 % to its error in quadrature; smaller values cost more
        evaluations for changes well inside the errors.
    re_min_pix, re_max_pix : float
        Bounds of the half-light radius, pixels (a source ending on one is flagged).
    re_runaway_factor : float
        A galaxy whose half-light radius grows past this many times its
        catalog ``Re`` gets its catalog shape and Sersic n back, fixed for the
        rest of the fit (flag ``re_runaway``; ``.inf`` = off). It keeps faint
        galaxies next to brighter, imperfectly modelled sources from absorbing
        their residual light by growing, which also saves fitting time.
    q_min : float
        Smallest axis ratio b/a (a source ending on it is flagged).
    freeze_shape_sigma : float
        A galaxy whose Fisher errors at its catalog values exceed this (in log r_e,
        ee1 or ee2) keeps its catalog shape and Sersic n, flagged
        ``shape_unconstrained``: the data cannot measure it.
    freeze_sersic_n_sigma : float
        The same for the Sersic index alone (flag ``sersic_n_unconstrained``).
    fisher_bands : int
        Optimiser steps estimate the position/shape Fisher matrix from this
        many representative bands (0, or at least the number of bands = all).
        Fluxes, likelihood and gradient always use every band and convergence
        is confirmed on the full matrix, so results agree within the
        convergence tolerance (``step_tol_sigma``); fewer bands only make each
        step cheaper.
    coarse_bands : int
        With at least twice this many bands, positions and shapes are first
        fitted on this many coadds of bands of similar PSF width, then on
        every band starting from there (one all-parameter stage, final
        check, polish); 0 = off. A coarse evaluation costs about
        ``coarse_bands / n_band`` of an all-band one, so the pass saves time
        on many-band fits without changing the final values beyond the
        convergence tolerance. Halo sources keep their coarse values in the
        all-band fit (see ``neighbour_fit``).
    neighbour_fit : {"all", "positions", "fluxes"}
        What is fitted of a patch's halo sources (each is reported by its own
        patch; here they only model the light that spills into the base box):
        position, shape and n like the patch's own sources (``all``, tract7dt),
        position only (shape and n stay at the catalog values), or flux only.
        ``positions`` and ``fluxes`` are faster but fit base sources next to a
        bright halo source worse. With a coarse pass (``coarse_bands``) this
        applies to the coarse fit; halo sources then keep their coarse values.
    """

    source_poisson_noise: bool = True
    flux_err: Literal["marginal", "conditional"] = "marginal"
    step_tol_sigma: float = Field(0.2, gt=0)
    re_min_pix: float = Field(0.1, gt=0)
    re_max_pix: float = Field(100.0, gt=0)
    re_runaway_factor: float = Field(3.0, gt=1)
    q_min: float = Field(0.02, ge=1e-3, lt=1)
    freeze_shape_sigma: float = Field(0.3, gt=0)
    freeze_sersic_n_sigma: float = Field(0.5, gt=0)
    fisher_bands: int = Field(5, ge=0)
    coarse_bands: int = Field(3, ge=0)
    neighbour_fit: Literal["all", "positions", "fluxes"] = "all"

