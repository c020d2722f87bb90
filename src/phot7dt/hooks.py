"""Kedro hooks: validate every parameter section before any node runs; end a run whose
patch fits failed with a non-zero exit status, after everything else was written."""

from __future__ import annotations

import logging

from kedro.framework.hooks import hook_impl

from phot7dt.params import validate_parameters

logger = logging.getLogger(__name__)


class ParameterValidationHooks:
    """Fail a run early, naming the dotted key path, when a parameter is wrong."""

    @hook_impl
    def after_context_created(self, context) -> None:
        validate_parameters(context.params)


class PatchFailureError(RuntimeError):
    """Some patches failed; the run wrote every other result and a partial catalog."""


class FitFailureHooks:
    """The run's last word on the fits: status counts, and failure when a patch failed.

    Runs after the last node, so a run with failed patches still merges,
    calibrates and reports the partial catalog before it exits non-zero.
    Only runs that produced ``fit_status_counts`` are checked.
    """

    @hook_impl
    def after_pipeline_run(self, pipeline, catalog) -> None:
        if "fit_status_counts" not in pipeline.all_outputs():
            return
        # imported here: the status registry pulls in the fitting engine
        from phot7dt.pipelines.fitting.status import failure_message, format_counts

        counts = catalog.load("fit_status_counts")
        logger.info("fit status of the catalog rows:\n%s", format_counts(counts))
        message = failure_message(catalog.load("fit_run_report"), counts)
        if message:
            logger.error(message)
            raise PatchFailureError(message)
