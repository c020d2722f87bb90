"""Units and one-line descriptions of the final catalog's columns.

The single owner of what each output column means: the FITS and Parquet catalogs
take their units (``TUNIT``) and descriptions (``TCOMM``, Parquet field metadata)
from :data:`COLUMNS`, and ``docs/outputs.md`` describes the same columns.
``{band}`` in a pattern stands for any band name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["COLUMNS", "ColumnInfo", "column_info", "undocumented"]

#: Unit of fluxes on the common image scale (``image_scaling.zp_ref``).
SCALED = "scaled counts at zp_ref"


@dataclass(frozen=True)
class ColumnInfo:
    """Unit (astropy unit string, ``""`` when dimensionless) and one-line description."""

    pattern: str
    unit: str
    description: str


_C = ColumnInfo
#: Every output column, in the order the docs list them (first match wins).
COLUMNS: tuple[ColumnInfo, ...] = (
    _C("ID", "", "source identifier, exactly as in the input catalog"),
    _C("RA", "deg", "input right ascension (ICRS)"),
    _C("DEC", "deg", "input declination (ICRS)"),
    _C("TYPE", "", "input model type (STAR, EXP, DEV, SERSIC; others use patch_run.gal_model)"),
    _C("FLUX_{band}", "", f"input flux prior ({SCALED})"),
    _C("FLUX_{band}_ERR", "", f"input flux prior width ({SCALED})"),
    _C("ELL", "", "input ellipticity 1 - b/a"),
    _C("THETA", "deg", "input position angle, counter-clockwise from image +x"),
    _C("Re", "pix", "input half-light radius along the major axis"),
    _C("SERSIC_n", "", "input Sersic index"),
    _C("POS_ERR", "pix", "input position prior width"),
    _C("Re_ERR", "pix", "input Re prior width"),
    _C("ELL_ERR", "", "input ELL prior width"),
    _C("THETA_ERR", "deg", "input THETA prior width"),
    _C("row_index", "", "0-based row of the input catalog"),
    _C("x_pix_white", "pix", "catalog x position in the working frame (0-based)"),
    _C("y_pix_white", "pix", "catalog y position in the working frame (0-based)"),
    _C("excluded_crop", "", "not fitted: invalid coordinates, outside the image or crop margin"),
    _C("excluded_saturation", "", "not fitted: saturated pixels near the source (mode exclude)"),
    _C("excluded_any", "", "not fitted for any reason"),
    _C("excluded_reason", "", "comma-separated reasons the row was not fitted"),
    _C("saturated_bands", "", "bands whose saturation mask covers the source core"),
    _C("n_sat_pix_{band}", "pix", "saturated pixels of the regions covering the core"),
    _C("gaia_source_id", "", "matched GaiaXP source_id (empty when none)"),
    _C("is_injected_gaia", "", "Gaia star absent from the input catalog, added by gaia_augment"),
    _C("affected_by_bright_mask", "", "the source touches the bright-source mask"),
    _C("patch_tag", "", "patch the source was fitted in"),
    _C("epsf_tag", "", "ePSF grid cell of the source"),
    _C("x_pix_patch", "pix", "initial x position in the patch"),
    _C("y_pix_patch", "pix", "initial y position in the patch"),
    _C("x_pix_patch_fit", "pix", "fitted x position in the patch"),
    _C("y_pix_patch_fit", "pix", "fitted y position in the patch"),
    _C("x_pix_white_fit", "pix", "fitted x position in the working frame"),
    _C("y_pix_white_fit", "pix", "fitted y position in the working frame"),
    _C("RA_fit", "deg", "fitted right ascension (ICRS)"),
    _C("DEC_fit", "deg", "fitted declination (ICRS)"),
    _C("stype_fit", "", "fitted model: star, exp, dev or sersic"),
    _C("Re_fit", "pix", "fitted half-light radius along the major axis"),
    _C("ELL_fit", "", "fitted ellipticity 1 - b/a"),
    _C("THETA_fit", "deg", "fitted position angle, counter-clockwise from image +x"),
    _C("sersic_n_fit", "", "fitted Sersic index"),
    _C("re_pix_fit", "pix", "fitted half-light radius (tract7dt's raw form)"),
    _C("ab_fit", "", "fitted axis ratio b/a"),
    _C("phi_deg_fit", "deg", "fitted angle (tract7dt's raw form)"),
    _C("FLUX_{band}_fit", "", f"fitted flux ({SCALED})"),
    _C("FLUXERR_{band}_fit", "", f"total 1-sigma flux error: statistical and PSF model ({SCALED})"),
    _C("FLUXERR_{band}_stat", "", f"statistical 1-sigma flux error ({SCALED})"),
    _C("FLUX_{band}_uJy", "uJy", "calibrated flux density (AB zero point of the band)"),
    _C("FLUXERR_{band}_uJy", "uJy", "1-sigma error of FLUX_uJy, without the zero-point error"),
    _C("MAG_{band}_fit", "mag", "AB magnitude zp_median - 2.5 log10 FLUX_fit"),
    _C("MAGERR_{band}_fit", "mag", "1-sigma magnitude error including the zero-point error"),
    _C("n_artefact_pix", "pix", "artefact pixels given zero weight within the source radius"),
    _C("opt_converged", "", "the optimiser's convergence test passed"),
    _C("opt_niters", "", "iterations of the last fit stage"),
    _C("opt_last_dlnp", "", "last ln-probability gain of the last fit stage"),
    _C("opt_hit_max_iters", "", "ran out of iterations without converging"),
    _C("flag_bound_stalled", "", "a parameter ended on its bound"),
    _C("flag_bound_stalled_which_parameter", "", "which parameter ended on its bound"),
    _C("fit_flags", "", "OR of the engine's flag bits (docs/outputs.md)"),
    _C("fit_flag_names", "", "names of the set engine flag bits"),
    _C("psf_{audit}", "", "PSF audit of the patch (ePSF or fallback per band, star counts)"),
    _C("fit_is_reliable", "", "fitted, converged, unmasked, not at a bound or under a mask"),
    _C("fit_status", "", "what happened to the row (docs/outputs.md, Fit status)"),
    _C("fit_status_{band}", "", "single-band mode: fit status of the band's own fit"),
    _C("catalog_is_partial", "", "a patch failed: the catalog lacks that patch's fits"),
    _C("TILE", "", "survey tile of the measurement"),
)

_PLACEHOLDER = re.compile(r"\\\{(\w+)\\\}")


def _regex(pattern: str) -> re.Pattern[str]:
    def group(match: re.Match[str]) -> str:
        # band names carry no underscore, so FLUX_{band} never swallows FLUX_{band}_fit
        body = "[^_]+" if match.group(1) == "band" else ".+"
        return f"(?P<{match.group(1)}>{body})"

    return re.compile("^" + _PLACEHOLDER.sub(group, re.escape(pattern)) + "$")


_COMPILED = tuple((_regex(info.pattern), info) for info in COLUMNS)


def column_info(name: str) -> ColumnInfo | None:
    """The registry entry of column ``name`` (first matching pattern), or None."""
    for regex, info in _COMPILED:
        if regex.match(name):
            return info
    return None


def undocumented(names) -> list[str]:
    """The names among ``names`` that no registry entry describes."""
    return [name for name in names if column_info(name) is None]
