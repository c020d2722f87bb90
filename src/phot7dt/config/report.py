"""Parameter section of the report pipeline (phot7dt's own HTML QA report)."""

from __future__ import annotations

from pydantic import Field

from phot7dt.config import Section

#: Figures of the report: section title -> patterns over the PNG paths under 08_reporting
#: (relative, without ``.png``; ``fnmatch`` wildcards).
DEFAULT_FIGURE_SECTIONS: dict[str, list[str]] = {
    "White stack and sources": ["ingest/white_overlay", "masking/bright_mask_overlay"],
    "ePSF": ["psf/plots/stamps_*"],
    "Patches": ["report/patch_overview"],
    "Residuals of a few sources": ["report/residual_montage"],
    "Zero points": ["zp/zp_offset_vs_wavelength", "zp/zp_vs_mag/zp_vs_mag__*"],
    "Validation against truth": ["validate/recovery/*", "validate/pulls/*", "validate/flux/*"],
}


class ReportParams(Section):
    """``report``: content of ``08_reporting/report.html``.

    Attributes
    ----------
    title : str
        Heading of the report.
    figure_sections : dict of str to list of str
        Section title -> ``fnmatch`` patterns over the PNG paths under 08_reporting
        (relative, without ``.png``); sections with no matching figure say so.
    residual_band : str or None
        Band of the residual montage (None: the middle band).
    residual_n_stars, residual_n_galaxies : int
        Sources shown in the montage, spread over the S/N range.
    residual_stamp_pix : int
        Side of each montage stamp, pixels (odd).
    residual_min_snr : float
        Smallest fitted S/N in the montage band of a montage source.
    overview_max_pix : int
        Longest side of the downsampled white stack under the patch overview, pixels.
    max_figure_width_px : int
        Wider figures are resampled to this width before embedding (keeps the page light).
    """

    title: str = Field("phot7dt run report", description="heading of the report")
    figure_sections: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_FIGURE_SECTIONS.items()},
        description="section title -> fnmatch patterns over PNG paths under 08_reporting",
    )
    residual_band: str | None = Field(
        None, description="band of the residual montage (null: middle)"
    )
    residual_n_stars: int = Field(4, ge=0, description="stars in the residual montage")
    residual_n_galaxies: int = Field(4, ge=0, description="galaxies in the residual montage")
    residual_stamp_pix: int = Field(41, ge=9, description="montage stamp side, pixels")
    residual_min_snr: float = Field(10.0, ge=0, description="smallest S/N of a montage source")
    overview_max_pix: int = Field(900, ge=100, description="longest side of the overview image, px")
    max_figure_width_px: int = Field(
        1000, ge=100, description="embedded figures are resampled to at most this width, px"
    )

