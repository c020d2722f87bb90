"""Cell geometry of the ePSF grid: one rule for edges and for the cells that hold sources."""

from __future__ import annotations

import numpy as np

from phot7dt.psf_grid import cell_boxes, cell_index, grid_edges, occupied_cells


def test_grid_edges_split_evenly_with_the_rest_in_the_last_part():
    assert grid_edges(0, 10, 3) == [0, 3, 6, 10]
    assert grid_edges(5, 15, 2) == [5, 10, 15]


def test_occupied_cells_agree_with_cell_index_and_cell_boxes_inside_the_frame():
    rng = np.random.default_rng(3)
    shape, ngrid = (101, 157), 4
    x = rng.uniform(-0.49, shape[1] - 0.51, 500)
    y = rng.uniform(-0.49, shape[0] - 0.51, 500)
    boxes = cell_boxes(shape, ngrid)
    for xi, yi in zip(x, y, strict=True):
        (cell,) = occupied_cells(np.array([xi]), np.array([yi]), shape, ngrid)
        assert cell == cell_index(shape, ngrid, xi, yi)
        box = boxes[cell]
        px, py = np.floor(xi + 0.5), np.floor(yi + 0.5)
        assert box.x0 <= px < box.x1 and box.y0 <= py < box.y1


def test_positions_outside_the_frame_or_not_finite_hold_no_cell():
    shape = (100, 100)
    x = np.array([-0.6, 99.6, np.nan, 50.0, 10.0])
    y = np.array([50.0, 50.0, 50.0, 100.2, 10.0])
    assert occupied_cells(x, y, shape, 2) == {(0, 0)}
