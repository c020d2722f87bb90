"""QA sheets of the psf stage: one mosaic image per sheet, tiles at their cell positions."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection

from phot7dt.config.epsf import EpsfParams
from phot7dt.pipelines.psf import plots
from phot7dt.pipelines.psf.cell_task import CellResult
from phot7dt.pipelines.psf.epsf_build import EPSFBuild
from phot7dt.pipelines.psf.mosaic import build_mosaic
from phot7dt.pipelines.psf.stamp_models import StampMetrics
from phot7dt.psf_grid import PSFChoice, PSFGrid, cell_boxes

NGRID, SIDE = 3, 9


def test_mosaic_places_tiles_by_row_from_the_bottom_with_separators():
    tiles = {(0, 0): np.full((3, 3), 1.0), (1, 2): np.full((3, 3), 2.0), (0, 1): np.ones((1, 1))}
    mosaic = build_mosaic(tiles, nrow=2, ncol=3)
    assert mosaic.image.shape == (2 * 4 - 1, 3 * 4 - 1)
    assert np.all(mosaic.image[0:3, 0:3] == 1.0)
    assert np.all(mosaic.image[4:7, 8:11] == 2.0)
    assert mosaic.image[1, 5] == 1.0 and np.isnan(mosaic.image[0, 4])  # small tile centred
    assert np.isnan(mosaic.image[3, :]).all() and np.isnan(mosaic.image[:, 3]).all()
    xs, ys = mosaic.centres()
    assert np.allclose(xs, [1, 5, 9]) and np.allclose(ys, [1, 5])


def _field() -> tuple[PSFGrid, list[CellResult]]:
    yy, xx = np.mgrid[:SIDE, :SIDE] - (SIDE - 1) / 2
    choices, cells = {}, []
    for (r, c), box in cell_boxes((90, 90), NGRID).items():
        stamp = np.exp(-(xx**2 + yy**2) / 2.0) * (1 + r + 10 * c)
        model = "moffat" if (r, c) == (2, 2) else "epsf"
        choices[("g", r, c)] = PSFChoice(model, stamp, 2.35, 3.0, 5, "test",
                                         "cell_stars" if model == "moffat" else "", 0)
        cand = pd.DataFrame({"x": [box.x0 + 5.0, box.x0 + 20.0], "y": [box.y0 + 5.0] * 2,
                             "reason": ["", "crowded"]})
        metrics = StampMetrics(2.35, 3.0, 0.0, 1.0, 2.0, 3.0, 0.9, (1.0, 2.0), (0.5, 0.9))
        build = EPSFBuild(stamp, 5, 5, 1, True, 0.0, 4.0, 0.0, {}, 0.01 * stamp, [stamp])
        cells.append(CellResult("g", r, c, box, "ok", "", cand, {}, build, metrics,
                                np.full((10, 10), float(r + c), np.float32), 3))
    return PSFGrid((90, 90), NGRID, ("g",), choices, {}), cells


def test_stamp_sheet_is_one_image_of_all_cells_each_to_its_peak():
    grid, cells = _field()
    fig = plots.stamp_sheet(grid, "g", cells, EpsfParams())
    ax, cax = fig.axes
    (image,) = ax.images
    data = np.ma.filled(image.get_array(), np.nan)
    assert data.shape == (NGRID * (SIDE + 1) - 1,) * 2
    centres = data[SIDE // 2 :: SIDE + 1, SIDE // 2 :: SIDE + 1]
    assert np.allclose(centres, 1.0)  # every stamp scaled to its own peak
    assert len(ax.texts) == NGRID**2
    red = [t.get_text() for t in ax.texts if t.get_color() != "white"]
    assert red == ["2.35 px moffat\ncell_stars N=0"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["r00", "r01", "r02"]
    assert cax.get_ylabel()


def test_star_selection_sheet_marks_candidates_in_their_cell_tiles():
    grid, cells = _field()
    fig = plots.star_selection_sheet(grid, "g", cells, EpsfParams())
    ax = fig.axes[0]
    assert len(ax.images) == 1
    used, rejected = ax.collections
    # cell (0, 0), step 3: frame x 5 -> thumbnail pixel (5 - 1) / 3; cell (0, 1) starts at 11
    assert np.allclose(used.get_offsets()[0], [4 / 3, 4 / 3])
    assert np.allclose(rejected.get_offsets()[0], [19 / 3, 4 / 3])
    assert np.allclose(used.get_offsets()[1], [11 + 4 / 3, 4 / 3])
    assert len(used.get_offsets()) == NGRID**2


def test_residual_and_growth_sheets_draw_few_artists():
    grid, cells = _field()
    fig = plots.residual_sheet(grid, "g", cells, EpsfParams(diagnostics_show_colorbar=False))
    assert len(fig.axes[0].images) == 1 and not fig.axes[1].get_visible()
    fig = plots.growth_curve_sheet(grid, "g", cells, EpsfParams())
    curves = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    assert len(curves) == 1 and len(curves[0].get_segments()) == NGRID**2
