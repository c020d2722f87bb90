"""Parameter section ``simulate_survey``: overlapping simulated tiles on one sky."""

from __future__ import annotations

from pydantic import Field, model_validator

from phot7dt.config import Section


class SimSurveyParams(Section):
    """``simulate_survey``: N tiles of the ``simulate`` preset overlapping on one sky.

    Each tile has the size, bands and source density of the ``simulate`` section, its
    own pointing, noise, zero points and PSFs (the ``simulate`` seed plus the tile index);
    the sources of the shared sky appear in every tile that covers them, under one ID.

    Attributes
    ----------
    n_tiles : int
        Number of tiles, laid out row by row on a grid ``columns`` wide.
    columns : int
        Tiles per grid row; ``n_tiles`` must be a multiple of it (a full rectangle).
    overlap_pix : int
        Width of the overlap between neighbouring tiles, px.
    pointing_jitter_pix : float
        Standard deviation of each tile's pointing offset from its grid position, px
        (sub-pixel offsets put the sources on different pixel phases in each tile).
    tile_params : str
        Per-tile overrides written to the manifest's ``params`` column, in ``--params``
        syntax (``"crop.margin=20,epsf.epsf_ngrid=1"``); "" for none.
    """

    n_tiles: int = Field(4, ge=1, le=400)
    columns: int = Field(2, ge=1)
    overlap_pix: int = Field(80, ge=0)
    pointing_jitter_pix: float = Field(2.0, ge=0)
    tile_params: str = ""

    @model_validator(mode="after")
    def _full_rectangle(self) -> SimSurveyParams:
        if self.n_tiles % self.columns:
            raise ValueError(
                f"n_tiles ({self.n_tiles}) must be a multiple of columns ({self.columns})"
            )
        return self
