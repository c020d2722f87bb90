"""Parameter section ``survey``: the tiles of a survey, where they run, how they merge."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from phot7dt.config import Section


class SurveyParams(Section):
    """``survey``: run every tile of a manifest on a dask.distributed cluster and merge them.

    Attributes
    ----------
    manifest : str or None
        CSV of the tiles (columns ``tile``, ``input_catalog``, ``image_list``,
        ``gaiaxp_synphot``, optional ``params``); relative paths in it are resolved against
        its own folder. Required.
    scheduler : str
        ``local`` (a LocalCluster on this machine, one tile per worker process), a
        scheduler address (``tcp://host:8786``) or the path of a scheduler file (JSON
        written by ``dask scheduler --scheduler-file`` or dask-jobqueue).
    n_workers : int or "auto"
        Worker processes of the ``local`` cluster ("auto" = the CPUs this process may use).
    retries : int
        Times a tile task is resubmitted when its worker is lost (a tile whose run fails is
        not retried: it is recorded as failed).
    resume : bool
        Skip tiles whose ``run_manifest.json`` says ``finished``; run the others.
    match_radius_arcsec : float
        Rows of two tiles without a shared ``ID`` are the same source within this distance
        (rows sharing an ``ID`` must be within it too), arcsec.
    tile_env : str or None
        Kedro environment of every tile run (``--env``), e.g. ``sample``; None = the default.
    tile_params : str
        Overrides for every tile run in ``--params`` syntax, applied before each row's own
        ``params`` column (``"patch_run.max_workers=4"``); "" for none.
    patch_workers : int or None
        ``patch_run.max_workers`` of each tile run; None = the CPUs per worker on the
        ``local`` cluster (at least 1), the tile's own setting on a remote cluster.
    """

    manifest: str | None = None
    scheduler: str = "local"
    n_workers: int | Literal["auto"] = Field("auto")
    retries: int = Field(2, ge=0, le=20)
    resume: bool = False
    match_radius_arcsec: float = Field(1.0, gt=0, le=60)
    tile_env: str | None = None
    tile_params: str = ""
    patch_workers: int | None = Field(None, ge=1)

