"""Kedro hooks: validate parameters before anything runs; check a run's inputs, keep its
log, provenance and manifest in ``work_dir``; end a run whose patch fits failed with a
non-zero exit status, after everything else was written."""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import MemoryDataset

from phot7dt.config import validate_parameters
from phot7dt.provenance import RunProvenance, utc_now
from phot7dt.run_inputs import REQUIRED, check_run_inputs, input_files

logger = logging.getLogger(__name__)

#: Catalog entries of the run records (conf/base/catalog.yml).
MANIFEST, LOG, PROVENANCE = "run_manifest", "run_log", "run_provenance"


class ParameterValidationHooks:
    """Fail a run early, naming the dotted key path, when a parameter is wrong."""

    @hook_impl
    def after_context_created(self, context) -> None:
        validate_parameters(context.params)


class PatchFailureError(RuntimeError):
    """Some patches failed; the run wrote every other result and a partial catalog."""


class RunHooks:
    """A run's records: input check, ``run.log``, provenance, ``run_manifest.json``.

    Before any node: the pipeline's datasets must not need a path that was not
    given (``phot7dt.run_inputs``); the log file is opened and the manifest says
    ``running``. After the last node: the fit status counts are logged, and the
    manifest says ``finished``, or ``failed`` with the error (a failed patch too,
    after the partial catalog, calibration and report were written; the run then
    exits non-zero with :class:`PatchFailureError`).
    """

    def __init__(self) -> None:
        self._params: dict[str, Any] = {}
        self._record: RunProvenance | None = None
        self._handler: logging.Handler | None = None

    @hook_impl
    def after_context_created(self, context) -> None:
        self._params = dict(context.params)

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        configs = catalog.config_resolver.config
        check_run_inputs(pipeline.datasets(), configs)
        # imported here: the image-list reader pulls in astropy
        from phot7dt.datasets.image_list import read_image_entries

        name = run_params.get("pipeline_names") or run_params.get("pipeline_name")
        name = ",".join(name) if isinstance(name, list | tuple) else (name or "__default__")
        self._record = RunProvenance(name, self._params, input_files(configs, read_image_entries))
        catalog[PROVENANCE] = MemoryDataset(self._record, copy_mode="assign")
        if not _given(configs, MANIFEST):
            return
        self._open_log(configs[LOG]["filepath"])
        self._write_manifest(catalog, "running", None, wait=False)

    @hook_impl
    def after_pipeline_run(self, run_params, pipeline, catalog) -> None:
        message = None
        if "fit_status_counts" in pipeline.all_outputs():
            # imported here: the status registry pulls in the fitting engine
            from phot7dt.pipelines.fitting.status import failure_message, format_counts

            counts = catalog.load("fit_status_counts")
            logger.info("fit status of the catalog rows:\n%s", format_counts(counts))
            message = failure_message(catalog.load("fit_run_report"), counts)
        if message:
            logger.error(message)
        self._finish(catalog, "failed" if message else "finished", message or None)
        if message:
            raise PatchFailureError(message)

    @hook_impl
    def on_pipeline_error(self, error, run_params, pipeline, catalog) -> None:
        self._finish(catalog, "failed", f"{type(error).__name__}: {error}")

    def _finish(self, catalog, status: str, error: str | None) -> None:
        if self._record is not None and _given(catalog.config_resolver.config, MANIFEST):
            self._write_manifest(catalog, status, error, wait=True)
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler.close()
            self._handler = None

    def _open_log(self, path: str) -> None:
        from pathlib import Path

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"))
        logging.getLogger().addHandler(handler)
        self._handler = handler
        logger.info("phot7dt %s run of pipeline %s started (log: %s)",
                    self._record.version, self._record.pipeline, path)

    def _write_manifest(self, catalog, status: str, error: str | None, wait: bool) -> None:
        record = self._record.as_dict(wait=wait)
        zero_points = {}
        if status != "running" and catalog.exists("zp_summary"):
            table = catalog.load("zp_summary")
            zero_points = {str(b): float(z) for b, z in zip(table["band"], table["zp_median"],
                                                              strict=True)}
        catalog.save(MANIFEST, {"status": status, **record,
                                "ended_utc": None if status == "running" else utc_now(),
                                "error": error, "zero_points": zero_points})


def _given(configs, name: str) -> bool:
    return name in configs and REQUIRED not in str(configs[name].get("filepath", ""))
