"""Tiles of a cell grid assembled into one image, drawn with one ``imshow``.

A QA sheet with one image per ePSF cell drawn as ``ngrid**2`` panels (each
with its axes, title and colour bar) costs seconds to lay out and render; the
same stamps placed side by side in one array with a 1-pixel blank separator
cost one image. Tile ``(row, col)`` sits at column ``col`` and row ``row``
counted from the bottom (``origin="lower"``), as the cells lie in the frame.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["Mosaic", "build_mosaic", "label_cells"]

#: Blank pixels between neighbouring tiles.
SEPARATOR_PIX = 1


@dataclasses.dataclass(frozen=True)
class Mosaic:
    """Tiles placed on an ``nrow x ncol`` grid.

    Attributes
    ----------
    image : (nrow * (h + 1) - 1, ncol * (w + 1) - 1) float ndarray
        The tiles, NaN in separators and empty slots.
    tile_shape : tuple of int
        ``(h, w)`` of a slot; smaller tiles are centred in their slot.
    nrow, ncol : int
        Grid size.
    """

    image: np.ndarray
    tile_shape: tuple[int, int]
    nrow: int
    ncol: int

    def origin(self, row: int, col: int) -> tuple[int, int]:
        """Mosaic pixel ``(x, y)`` of the lower-left pixel of slot ``(row, col)``."""
        h, w = self.tile_shape
        return col * (w + SEPARATOR_PIX), row * (h + SEPARATOR_PIX)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Mosaic x of the column centres and y of the row centres."""
        h, w = self.tile_shape
        return (np.arange(self.ncol) * (w + SEPARATOR_PIX) + (w - 1) / 2,
                np.arange(self.nrow) * (h + SEPARATOR_PIX) + (h - 1) / 2)


def build_mosaic(tiles: dict[tuple[int, int], np.ndarray], nrow: int, ncol: int) -> Mosaic:
    """Place 2-D ``tiles`` keyed by ``(row, col)`` on an ``nrow x ncol`` grid.

    The slot size is the largest tile's; a smaller tile is centred in its slot.
    """
    h = max((t.shape[0] for t in tiles.values()), default=1)
    w = max((t.shape[1] for t in tiles.values()), default=1)
    image = np.full((nrow * (h + SEPARATOR_PIX) - SEPARATOR_PIX,
                     ncol * (w + SEPARATOR_PIX) - SEPARATOR_PIX), np.nan)
    mosaic = Mosaic(image, (h, w), nrow, ncol)
    for (row, col), tile in tiles.items():
        x0, y0 = mosaic.origin(row, col)
        dy, dx = (h - tile.shape[0]) // 2, (w - tile.shape[1]) // 2
        image[y0 + dy : y0 + dy + tile.shape[0], x0 + dx : x0 + dx + tile.shape[1]] = tile
    return mosaic


def label_cells(ax: Axes, mosaic: Mosaic, labels: dict[tuple[int, int], tuple[str, str]],
                boxed: bool = False, fontsize: float = 6.0) -> None:
    """Cell tags as tick labels (``rRR``, ``cCC``) and a text ``(text, colour)`` in each slot.

    The text sits in the top left of the slot.

    ``boxed`` puts each label on a half-transparent white box (for busy tiles).
    """
    xs, ys = mosaic.centres()
    ax.set_xticks(xs, [f"c{c:02d}" for c in range(mosaic.ncol)])
    ax.set_yticks(ys, [f"r{r:02d}" for r in range(mosaic.nrow)])
    ax.tick_params(length=0)
    ax.set_xlabel("cell column (tag rRR_cCC)")
    ax.set_ylabel("cell row")
    h, _ = mosaic.tile_shape
    box = {"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.6}
    for (row, col), (text, colour) in labels.items():
        x0, y0 = mosaic.origin(row, col)
        ax.text(x0 + 0.5, y0 + h - 1.5, text, fontsize=fontsize, color=colour, va="top",
                ha="left", linespacing=1.0, bbox=box if boxed else None)
