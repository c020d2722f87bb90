"""survey: every tile of a manifest on a dask.distributed cluster, one de-duplicated catalog."""

from phot7dt.pipelines.survey.pipeline import create_pipeline

__all__ = ["create_pipeline"]
