"""Parameter section ``zp`` (tract7dt's): the GaiaXP augmentation keys, read by the
gaia_augment stage, and the zero-point calibration keys, read by the calibration stage.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from phot7dt.config import Section


class ZpParams(Section):
    """``zp``: GaiaXP augmentation of the catalog and zero-point calibration.

    Attributes
    ----------
    enabled : bool
        Run the Gaia augmentation (and, later, the zero-point calibration).
        When false the augmentation node passes the catalog through.
    inject_gaia_sources : bool
        Append Gaia stars that match no catalog row as new ``TYPE = STAR`` rows.
    gaia_mag_min, gaia_mag_max : float
        Window on ``phot_g_mean_mag`` (mag) of the Gaia stars considered.
    match_radius_arcsec : float
        Sky radius (arcsec) within which a catalog row takes the nearest Gaia star.
    min_box_size_pix : int
        Smallest side (working-frame pixels) of the square selection box around
        the active catalog sources.
    gaia_pos_err_pix : float or None
        ``POS_ERR`` (pixels) given to injected stars; None leaves it empty.
    clip_sigma, clip_max_iters : float, int
        MAD sigma clipping of per-star zero points (calibration): threshold in
        sigma (MAD-based), and iterations at most.
    zp_err_method : {"all_mad", "bright_std"}
        How the extra per-band scatter in the zero-point error is estimated
        (calibration): fitted to all kept stars, or from the standard deviation
        of the high-S/N kept stars (``zp_err_snr_min``, relaxed to a half and a
        quarter of it when too few stars pass, else ``all_mad``).
    zp_err_snr_min : float
        Flux S/N above which ``bright_std`` uses a star; ignored by ``all_mad``.
    plot_mag_lo, plot_mag_hi : float
        Magnitude axis range of the zero-point plots, mag (``plot_mag_lo`` below
        ``plot_mag_hi``).
    plot_zp_offset : float
        Half range (mag) of the zero-point axis around the median.
    use_saturated : bool
        Let stars whose core is saturated in a band (the band is in their
        ``saturated_bands``; fitted from the wings) calibrate that band. False
        leaves them out (status ``saturated``); either way the plots mark them.
    """

    enabled: bool = True
    inject_gaia_sources: bool = True
    gaia_mag_min: float = 8.0
    gaia_mag_max: float = 18.0
    match_radius_arcsec: float = Field(3.0, gt=0)
    min_box_size_pix: int = Field(3000, ge=1)
    gaia_pos_err_pix: float | None = Field(0.1, gt=0)
    clip_sigma: float = Field(3.0, gt=0)
    clip_max_iters: int = Field(10, ge=1)
    zp_err_method: Literal["all_mad", "bright_std"] = "all_mad"
    zp_err_snr_min: float = Field(100.0, gt=0)
    plot_mag_lo: float = 10.0
    plot_mag_hi: float = 20.0
    plot_zp_offset: float = Field(0.25, gt=0)
    use_saturated: bool = False

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> ZpParams:
        if self.gaia_mag_min > self.gaia_mag_max:
            raise ValueError(
                f"gaia_mag_min ({self.gaia_mag_min}) must not exceed "
                f"gaia_mag_max ({self.gaia_mag_max})"
            )
        if self.plot_mag_lo >= self.plot_mag_hi:
            raise ValueError(
                f"plot_mag_lo ({self.plot_mag_lo}) must be below plot_mag_hi ({self.plot_mag_hi})"
            )
        return self

