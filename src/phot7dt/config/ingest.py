"""Parameter sections of the ingest stage: tract7dt's ``image_scaling``, ``crop``, ``checks``,
``source_saturation_cut``, ``performance`` and ``plotting``, with tract7dt's keys, defaults and
units.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from phot7dt.config import Section
from phot7dt.weights import WeightType
from phot7dt.workers import resolve_workers

#: A worker count: "auto", 0 or -1 = every CPU the process may use (:mod:`phot7dt.workers`).
Workers = Annotated[int, Field(ge=-1)] | Literal["auto"]


class ImageScalingParams(Section):
    """``image_scaling``: the common photometric scale.

    Attributes
    ----------
    zp_ref : float
        Reference AB zero point, mag; each band is multiplied by
        ``10**(-0.4 (ZP_AUTO - zp_ref))``.
    weight_type : {"relative", "inverse_variance", "variance", "rms"}
        Meaning of the weight images named in the image list's second column:
        ``relative`` (SWarp MAP_WEIGHT, proportional to inverse variance; noise
        ``SKYSIG * sqrt(w_ref / w)`` with ``w_ref`` the median weight),
        ``inverse_variance`` in ADU^-2, ``variance`` in ADU^2 or ``rms`` in ADU.
        Bands without a weight image have noise ``SKYSIG`` on every pixel.
    """

    zp_ref: float = 25.0
    weight_type: WeightType = "relative"


class CropParams(Section):
    """``crop``: working-frame crop and the white-stack / overlay plots.

    Attributes
    ----------
    enabled : bool
        Cut ``margin`` pixels from every edge; sources outside are flagged ``excluded_crop``.
    margin : int
        Edge strip removed on each side, pixels.
    plot_pre_crop : bool
        Draw the whole-image white stack with the crop box.
    display_downsample, post_crop_display_downsample : int
        Downsampling factor (block side, pixels) of the pre-crop and post-crop
        white-stack plots; display only.
    overlay_catalog : bool
        Draw the white stack with the catalog sources coloured by ``TYPE``.
    overlay_downsample_full, overlay_downsample_crop : int
        Downsampling factor (block side, pixels) of the full overlay and of its
        zoom panel; display only.
    overlay_crop_box : list of 4 int
        Zoom region ``[x0, x1, y0, y1]`` in working-frame pixels; when it does not
        lie inside the working frame the central quarter of the frame is shown.
    overlay_crop_enabled : bool
        Add the zoom panel (``overlay_crop_box``) to the overlay.
    """

    enabled: bool = True
    margin: int = Field(500, ge=0)
    plot_pre_crop: bool = True
    display_downsample: int = Field(4, ge=1)
    post_crop_display_downsample: int = Field(4, ge=1)
    overlay_catalog: bool = True
    overlay_downsample_full: int = Field(4, ge=1)
    overlay_downsample_crop: int = Field(4, ge=1)
    overlay_crop_box: tuple[int, int, int, int] = (4000, 5000, 4000, 5000)
    overlay_crop_enabled: bool = True

    @model_validator(mode="after")
    def _zoom_box_is_ordered(self) -> CropParams:
        x0, x1, y0, y1 = self.overlay_crop_box
        if x1 <= x0 or y1 <= y0:
            raise ValueError("overlay_crop_box must be [x0, x1, y0, y1] with x1 > x0 and y1 > y0")
        return self


class WCSTolerance(Section):
    """``checks.wcs_tolerance``: largest allowed absolute differences from the first image."""

    crval: float = Field(1e-6, ge=0, description="deg")
    crpix: float = Field(1e-6, ge=0, description="pixels")
    cd: float = Field(1e-9, ge=0, description="CD or PC matrix elements")
    cdelt: float = Field(1e-9, ge=0, description="deg/pixel")


class ChecksParams(Section):
    """``checks``: consistency of the images of one tile.

    Attributes
    ----------
    require_wcs_alignment : bool
        Every image's WCS must agree with the first within ``wcs_tolerance``.
    wcs_tolerance : WCSTolerance
        CRVAL, CRPIX, CD/PC and CDELT tolerances; CTYPE must be identical.
    require_same_shape : bool
        Every image must have the first image's ``(NAXIS2, NAXIS1)``.
    """

    require_wcs_alignment: bool = True
    wcs_tolerance: WCSTolerance = WCSTolerance()
    require_same_shape: bool = True


class SourceSaturationCutParams(Section):
    """``source_saturation_cut``: sources near or on saturated pixels.

    A raw pixel is saturated at or above ``SATURATE / saturation_divisor`` ADU.
    Every source gets ``saturated_bands`` (bands where a saturated pixel lies
    within ``saturation_core_pad_pix`` of its rounded position, i.e. its core
    falls in the masked region) and ``n_sat_pix_{band}`` (pixels of the
    8-connected saturated regions touching that core, bleed trails included).

    Attributes
    ----------
    enabled : bool
        Look for saturated pixels around sources; false flags nothing and leaves
        ``n_sat_pix_{band}`` missing.
    mode : {"fit_wings", "exclude"}
        ``exclude`` (tract7dt): a source with a saturated pixel within
        ``radius_pix`` is flagged ``excluded_saturation`` and not fitted.
        ``fit_wings``: no source is excluded for saturation; in each band the
        saturated pixels, grown by ``saturation_core_pad_pix``, get zero inverse
        variance and sources are fitted from the remaining pixels and bands
        (``fit_status`` ``saturated_core`` when their own core is masked).
    radius_pix : float
        ``exclude`` mode: radius of the disk around the rounded source position, pixels.
    require_all_bands : bool
        ``exclude`` mode: false excludes a source saturated in any band; true only
        when it is saturated in all bands.
    saturation_core_pad_pix : int
        ``fit_wings`` mode: ring (disk radius, pixels) added around every
        saturated region before it is masked; the pixels next to a saturated
        core or bleed trail are non-linear too.
    saturation_divisor : float
        A raw pixel is saturated at or above ``SATURATE / saturation_divisor`` ADU
        (values above 1 treat pixels below the header's ``SATURATE`` as
        saturated; the default is tract7dt's pipeline value 1.3).
    """

    enabled: bool = True
    mode: Literal["fit_wings", "exclude"] = "fit_wings"
    radius_pix: float = Field(20.0, ge=0)
    require_all_bands: bool = False
    saturation_core_pad_pix: int = Field(2, ge=0)
    saturation_divisor: float = Field(1.3, gt=0)


class PerformanceParams(Section):
    """``performance``: threads of the ingest stage.

    Attributes
    ----------
    frame_prep_workers : int or "auto"
        Accepted for tract7dt compatibility; frames are prepared from their
        headers alone (no pixel is read), which needs no threads.
    white_stack_workers : int or "auto"
        Threads accumulating white-stack row chunks; ``"auto"``, 0 or -1 = every
        CPU the process may use (affinity, cgroup quota), a larger count is capped at them.
    """

    frame_prep_workers: Workers = "auto"
    white_stack_workers: Workers = "auto"

    def white_stack_threads(self, n_chunks: int) -> int:
        """Threads to use for ``n_chunks`` row chunks (at least 1)."""
        return resolve_workers(self.white_stack_workers, n_chunks)


class PlottingParams(Section):
    """``plotting``: resolution of the ingest figures and how many QA figures a run draws.

    Attributes
    ----------
    dpi : int
        Dots per inch of the ingest figures.
    detail : "summary" or "full"
        ``summary``: the figures needed to judge a run - patch overviews and
        per-source montages (when ``patch_run`` switches them on) only for the 4
        patches with the most unconverged fits, the ePSF stamp and growth-curve
        sheets of every band (not the star-selection and residual sheets) and the
        constrained zero-point view of every band (not the full-range one).
        ``full``: every figure the other keys ask for (tract7dt's output).
    """

    dpi: int = Field(300, ge=10)
    detail: Literal["summary", "full"] = "summary"


#: Patches with figures under ``plotting.detail: summary`` (the docstring above says 4).
SUMMARY_PATCHES = 4

