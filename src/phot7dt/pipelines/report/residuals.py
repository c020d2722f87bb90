"""Data, model and residual stamps of a few fitted sources.

The model is the fit's own (``patch_models``, saved by ``fit_patches``: the
sources of the patch with their fitted parameters through the PSF model the fit
used, plus the background it subtracted), so the residual is the one the fit
minimised.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd

from phot7dt.catalog_columns import as_bool, numeric_column
from phot7dt.datasets.patch_models import PatchModels
from phot7dt.frames import Box, FrameSet

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ResidualStamp:
    """Data, model and inverse variance of one stamp (common flux scale)."""

    source_id: str
    kind: str
    snr: float
    data: np.ndarray
    model: np.ndarray
    invvar: np.ndarray


def fitted_sources(catalog: pd.DataFrame, band: str) -> pd.DataFrame:
    """Rows with a fitted position and flux in ``band``, not excluded, plus their ``snr``."""
    x = numeric_column(catalog, "x_pix_white_fit")
    flux = numeric_column(catalog, f"FLUX_{band}_fit")
    err = numeric_column(catalog, f"FLUXERR_{band}_fit")
    excluded = as_bool(catalog["excluded_any"]) if "excluded_any" in catalog else False
    keep = np.isfinite(x) & np.isfinite(flux) & ~excluded
    rows = catalog.loc[keep].copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        rows["snr"] = (flux / err)[keep]
    return rows


def choose_sources(
    fitted: pd.DataFrame, n_stars: int, n_galaxies: int, min_snr: float
) -> pd.DataFrame:
    """``n`` stars and ``n`` galaxies spread evenly in S/N rank above ``min_snr``."""
    bright = fitted[fitted["snr"] >= min_snr]
    is_star = bright["stype_fit"].astype(str).str.lower() == "star"
    picks = []
    for rows, n in ((bright[is_star], n_stars), (bright[~is_star], n_galaxies)):
        if n and len(rows):
            ranked = rows.sort_values("snr", ascending=False)
            picks.append(ranked.iloc[np.unique(np.linspace(0, len(ranked) - 1, n).astype(int))])
    return pd.concat(picks) if picks else fitted.iloc[:0]


def residual_stamp(
    source: pd.Series, frames: FrameSet, models: PatchModels, band: str, size: int
) -> ResidualStamp | None:
    """Data and the fit's model of a ``size`` x ``size`` box around ``source``.

    The model is the one ``fit_patches`` fitted in the source's patch (``patch_tag``);
    the box is centred on the source and kept inside that patch's region. None when
    no model was saved for the patch.
    """
    tag = str(source.get("patch_tag", ""))
    fitted = models.get(tag, band) if tag and tag != "nan" else None
    if fitted is None:
        logger.warning("report: no fitted model of patch %r in %s; source %s left out",
                       tag, band, source["ID"])
        return None
    my, mx = fitted.image.shape
    region = Box(fitted.x0, fitted.y0, fitted.x0 + mx, fitted.y0 + my)
    xc, yc = round(float(source["x_pix_white_fit"])), round(float(source["y_pix_white_fit"]))
    half = size // 2
    x0 = min(max(xc - half, region.x0), max(region.x1 - size, region.x0))
    y0 = min(max(yc - half, region.y0), max(region.y1 - size, region.y0))
    box = Box(x0, y0, min(x0 + size, region.x1, frames.shape[1]),
              min(y0 + size, region.y1, frames.shape[0]))
    images, invvar, _ = frames.cutout(box, bands=[band])
    model = fitted.image[box.y0 - region.y0 : box.y1 - region.y0,
                         box.x0 - region.x0 : box.x1 - region.x0]
    return ResidualStamp(
        str(source["ID"]),
        str(source["stype_fit"]),
        float(source["snr"]),
        images[0].astype(float),
        model.astype(float),
        invvar[0].astype(float),
    )
