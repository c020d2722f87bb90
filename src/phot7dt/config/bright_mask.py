"""Parameter section of the masking stage: tract7dt's ``bright_mask``."""

from __future__ import annotations

from pydantic import Field

from phot7dt.config import Section


class BrightMaskParams(Section):
    """``bright_mask``: mask bright white-stack detections absent from the catalog.

    Attributes
    ----------
    enabled : bool
        Build the mask; when false the mask is all zero and no source is flagged.
    thresh_sigma : float
        sep detection threshold on the white stack, sigma (its global rms).
    minarea : int
        Smallest detection area, pixels.
    deblend_nthresh : int
        Number of sep deblending thresholds (SExtractor's ``DEBLEND_NTHRESH``).
    deblend_cont : float
        sep minimum deblending contrast, a fraction of the total flux in [0, 1]
        (SExtractor's ``DEBLEND_MINCONT``; 1 = no deblending).
    clean : bool
        sep cleaning of spurious detections near bright objects.
    clean_param : float
        sep cleaning parameter (SExtractor's ``CLEAN_PARAM``); used only when
        ``clean`` is true.
    match_radius_pix : float
        A detection with an active catalog source within this radius (pixels)
        is listed and kept unmasked.
    ellipse_scale : float
        Factor applied to sep's semi-axes ``a`` and ``b`` of an unlisted detection
        to give those of its mask ellipse (each at least ``min_radius_pix``).
    min_radius_pix : float
        Smallest semi-axis of a mask ellipse, pixels.
    dilate_pix : int
        Half width of the square dilation applied to the mask, pixels.
    """

    enabled: bool = True
    thresh_sigma: float = Field(5.0, gt=0)
    minarea: int = Field(20, ge=1)
    deblend_nthresh: int = Field(32, ge=1)
    deblend_cont: float = Field(0.005, ge=0, le=1)
    clean: bool = True
    clean_param: float = Field(1.0, gt=0)
    match_radius_pix: float = Field(3.0, ge=0)
    ellipse_scale: float = Field(3.0, gt=0)
    min_radius_pix: float = Field(6.0, ge=0)
    dilate_pix: int = Field(1, ge=0)

