"""A simulated survey: overlapping tiles on one sky, each a tile in tract7dt's input format.

The sky is drawn once (sources, IDs, magnitudes) with the density of the ``simulate``
preset; every tile then gets its own pointing (a TAN WCS centred on its grid position
plus a jitter), calibration, noise and PSFs from its own seed, and lists in its
``catalog.csv`` the sky sources whose centres fall on its pixels, under their sky IDs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from phot7dt.config import section
from phot7dt.config.simulate import FieldLayout, SimulateParams
from phot7dt.config.simulate_survey import SimSurveyParams
from phot7dt.datasets import ImageListDataset
from phot7dt.pipelines.simulate.field import _band_photometry, draw_sources
from phot7dt.pipelines.simulate.nodes import (
    EDGE_PAD_PIX,
    build_sim_catalog,
    build_sim_gaiaxp,
    build_sim_truth,
    draw_sim_bands,
    draw_sim_defects,
    simulate_field,
)
from phot7dt.pipelines.simulate.sky import draw_band_table, make_wcs

if TYPE_CHECKING:
    from astropy.wcs import WCS

logger = logging.getLogger(__name__)

#: Tile ``k`` is simulated with seed ``simulate.seed + TILE_SEED_STRIDE * (k + 1)``.
TILE_SEED_STRIDE = 1000
#: Streams of the sky draws: ``default_rng([seed, SURVEY_STREAM, k])``.
SURVEY_STREAM = 40
#: Sources this far (px) outside a tile are still rendered into it (their wings show).
RENDER_PAD_PIX = 40
#: Source counts of a layout that scale with the sky's area.
_COUNTS = ("n_field_stars", "n_galaxies", "n_blends", "n_saturated", "n_unlisted", "n_gaia_stars")
MANIFEST_COLUMNS = ["tile", "input_catalog", "image_list", "gaiaxp_synphot", "params"]


@dataclasses.dataclass(frozen=True)
class TileSpec:
    """One tile of the survey: its name, its ``simulate`` parameters and its WCS."""

    name: str
    params: SimulateParams
    wcs: WCS


def _rng(params: SimulateParams, k: int) -> np.random.Generator:
    return np.random.default_rng([params.seed, SURVEY_STREAM, k])


def sky_layout(tile: FieldLayout, survey: SimSurveyParams) -> FieldLayout:
    """The whole survey area as one field: the tile grid's extent, the tile's source density."""
    rows = survey.n_tiles // survey.columns
    width = survey.columns * (tile.width - survey.overlap_pix) + survey.overlap_pix
    height = rows * (tile.height - survey.overlap_pix) + survey.overlap_pix
    ratio = width * height / (tile.width * tile.height)
    counts = {name: round(getattr(tile, name) * ratio) for name in _COUNTS}
    return tile.model_copy(
        update={
            "width": width,
            "height": height,
            "psf_star_grid": round(tile.psf_star_grid * np.sqrt(ratio)),
            **counts,
        }
    )


def _with(params: SimulateParams, **values: Any) -> SimulateParams:
    return SimulateParams.model_validate({**params.model_dump(), **values})


def tile_specs(params: SimulateParams, survey: SimSurveyParams, sky_wcs: WCS) -> list[TileSpec]:
    """Name, parameters (own seed, pointing) and WCS of every tile, row by row from the origin."""
    tile = params.layout()
    jitter = _rng(params, 0).normal(0.0, survey.pointing_jitter_pix, (survey.n_tiles, 2))
    specs = []
    for k in range(survey.n_tiles):
        col, row = k % survey.columns, k // survey.columns
        x = col * (tile.width - survey.overlap_pix) + (tile.width - 1) / 2.0 + jitter[k, 0]
        y = row * (tile.height - survey.overlap_pix) + (tile.height - 1) / 2.0 + jitter[k, 1]
        ra, dec = sky_wcs.all_pix2world(x, y, 0)
        tile_params = _with(
            params,
            seed=params.seed + TILE_SEED_STRIDE * (k + 1),
            center_ra_deg=float(ra) % 360.0,
            center_dec_deg=float(dec),
        )
        specs.append(TileSpec(f"t{k:02d}", tile_params, make_wcs(tile_params, tile)))
    return specs


def draw_sky(params: SimulateParams, survey: SimSurveyParams) -> tuple[pd.DataFrame, WCS]:
    """Every source of the survey area (sky IDs, RA/DEC, magnitudes) and the sky's WCS."""
    layout = sky_layout(params.layout(), survey)
    sky = _with(
        params,
        width=layout.width,
        height=layout.height,
        psf_star_grid=layout.psf_star_grid,
        **{name: getattr(layout, name) for name in _COUNTS},
    )
    wcs = make_wcs(sky, layout)
    bands = draw_band_table(sky, layout, _rng(params, 1))
    rngs = (_rng(params, 2), _rng(params, 3))
    sources = draw_sources(layout, bands, wcs, sky, rngs, params.edge_margin_pix + EDGE_PAD_PIX)
    return sources, wcs


def tile_sources(sky: pd.DataFrame, spec: TileSpec, bands: pd.DataFrame) -> pd.DataFrame:
    """The sky sources drawn into one tile: tile pixel positions and the tile's band fluxes.

    Sources up to :data:`RENDER_PAD_PIX` outside the image are kept (their light reaches
    it) but only those centred on the image stay ``in_catalog``; ``on_tile`` marks them.
    """
    layout = spec.params.layout()
    x, y = spec.wcs.all_world2pix(sky["RA"].to_numpy(), sky["DEC"].to_numpy(), 0)
    pad = RENDER_PAD_PIX
    near = (x > -pad) & (x < layout.width - 1 + pad) & (y > -pad) & (y < layout.height - 1 + pad)
    on_tile = (x >= 0) & (x <= layout.width - 1) & (y >= 0) & (y <= layout.height - 1)
    out = sky.loc[near, [c for c in sky.columns if not c.startswith(("FLUX_", "mag_"))]].copy()
    out["x_pix"], out["y_pix"] = x[near], y[near]
    out["on_tile"] = on_tile[near]
    out["in_catalog"] = out["in_catalog"] & out["on_tile"]
    out = out.reset_index(drop=True)
    return pd.concat([out, _band_photometry(out, bands, spec.params.zp_ref)], axis=1)


def write_tile(folder: Path, sky: pd.DataFrame, spec: TileSpec) -> tuple[dict[str, str], list]:
    """Render one tile and write its images, catalog, GaiaXP and truth files under ``folder``.

    Returns the manifest row (absolute paths of the catalog, image list and GaiaXP CSV)
    and the IDs the tile's catalog lists.
    """
    folder.mkdir(parents=True, exist_ok=True)
    bands = draw_sim_bands(spec.params)
    sources = tile_sources(sky, spec, bands)
    defects = draw_sim_defects(bands, spec.params)
    ImageListDataset(filepath=str(folder / "image_list.txt")).save(
        simulate_field(sources, bands, spec.params, defects)
    )
    on_tile = sources[sources["on_tile"]].reset_index(drop=True)
    tables = {
        "catalog.csv": build_sim_catalog(sources, spec.params),
        "gaiaxp_synphot.csv": build_sim_gaiaxp(on_tile, spec.params),
        "truth.csv": build_sim_truth(on_tile, bands, spec.params),
        "truth_bands.csv": bands,
        "truth_defects.csv": defects,
    }
    for name, table in tables.items():
        table.to_csv(folder / name, index=False)
    logger.info(
        "simulate_survey: tile %s, %d catalog sources", spec.name, len(tables["catalog.csv"])
    )
    row = {
        "tile": spec.name,
        "input_catalog": str(folder / "catalog.csv"),
        "image_list": str(folder / "image_list.txt"),
        "gaiaxp_synphot": str(folder / "gaiaxp_synphot.csv"),
    }
    return row, tables["catalog.csv"]["ID"].tolist()


def sky_truth(sky: pd.DataFrame, listed_in: dict[str, list[str]]) -> pd.DataFrame:
    """``truth.csv`` of the survey: one row per sky source, with the tiles listing it."""
    columns = ["ID", "in_catalog", "role", "TYPE", "RA", "DEC", "gaia_source_id"]
    out = sky[columns + [c for c in sky.columns if c.startswith("mag_")]].copy()
    out["tiles"] = [";".join(listed_in.get(i, [])) for i in out["ID"]]
    return out


def simulate_survey(
    simulate: Mapping[str, Any], simulate_survey: Mapping[str, Any], survey_dir: str
) -> pd.DataFrame:
    """Write ``n_tiles`` overlapping tiles under ``survey_dir/<tile>/`` and the survey truth.

    Returns
    -------
    pandas.DataFrame
        The survey manifest (``tiles.csv``): ``tile``, ``input_catalog``, ``image_list``,
        ``gaiaxp_synphot`` (absolute paths) and ``params`` (``simulate_survey.tile_params``).
    """
    params = section(SimulateParams, simulate, "simulate")
    survey = section(SimSurveyParams, simulate_survey, "simulate_survey")
    root = Path(survey_dir).expanduser().absolute()
    sky, sky_wcs = draw_sky(params, survey)
    rows, listed_in = [], {}
    for spec in tile_specs(params, survey, sky_wcs):
        row, listed = write_tile(root / spec.name, sky, spec)
        rows.append({**row, "params": survey.tile_params})
        for source_id in listed:
            listed_in.setdefault(source_id, []).append(spec.name)
    sky_truth(sky, listed_in).to_csv(root / "truth.csv", index=False)
    logger.info("simulate_survey: %d tiles, %d sky sources under %s", len(rows), len(sky), root)
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
