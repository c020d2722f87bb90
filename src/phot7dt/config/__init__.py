"""Validated parameter sections: one pydantic model per tract7dt section, all in this package.

:data:`SECTION_MODELS` maps every section name to its model (``crop`` →
:class:`phot7dt.config.ingest.CropParams`, ...). Nodes receive the raw
``params:<section>`` dict and turn it into the model with :func:`section`;
:func:`validate_parameters` checks every section of a run up front, so a typo
fails before any node runs, with the dotted key path, the expected type and the
given value.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

#: Every parameter section: its name -> ``"module:Model"`` in this package (imported on demand).
SECTION_MODELS = {
    "image_scaling": "ingest:ImageScalingParams",
    "crop": "ingest:CropParams",
    "checks": "ingest:ChecksParams",
    "source_saturation_cut": "ingest:SourceSaturationCutParams",
    "performance": "ingest:PerformanceParams",
    "plotting": "ingest:PlottingParams",
    "zp": "zp:ZpParams",
    "bright_mask": "bright_mask:BrightMaskParams",
    "epsf": "epsf:EpsfParams",
    "moffat_psf": "epsf:MoffatPsfParams",
    "patches": "patches:PatchesParams",
    "patch_inputs": "patches:PatchInputsParams",
    "patch_run": "patch_run:PatchRunParams",
    "scene": "scene:SceneParams",
    "merge": "scene:MergeParams",
    "sky_and_artefacts": "scene:SkyArtefactParams",
    "validate": "validate:ValidateParams",
    "report": "report:ReportParams",
    "survey": "survey:SurveyParams",
    "simulate": "simulate:SimulateParams",
    "simulate_survey": "simulate_survey:SimSurveyParams",
}

#: Top-level parameters that are plain values, not sections (runtime paths).
PATH_KEYS = frozenset(
    {
        "work_dir",
        "input_catalog",
        "image_list",
        "gaiaxp_synphot",
        "sample_dir",
        "survey_dir",
        "survey_root",
    }
)

M = TypeVar("M", bound=BaseModel)


class ParameterError(ValueError):
    """A parameter has an unknown key, a wrong type or an invalid value."""


class Section(BaseModel):
    """Base of every parameter section: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _format_errors(name: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        path = ".".join([name, *(str(p) for p in err["loc"])])
        if err["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown key (value {err['input']!r})")
        else:
            lines.append(f"{path}: {err['msg']} (got {err['input']!r})")
    return "; ".join(lines)


def section(model: type[M], raw: Mapping[str, Any] | M | None, name: str) -> M:
    """Build the model of section ``name`` from its raw dict.

    Raises
    ------
    ParameterError
        Naming every bad key as ``section.key``, what was expected and what was given.
    """
    if isinstance(raw, model):
        return raw
    try:
        return model.model_validate(dict(raw or {}))
    except ValidationError as exc:
        raise ParameterError(f"invalid parameters: {_format_errors(name, exc)}") from None


def registered_sections() -> dict[str, type[Section]]:
    """Every parameter section's model, by section name (:data:`SECTION_MODELS`)."""
    sections: dict[str, type[Section]] = {}
    for name, target in SECTION_MODELS.items():
        module, model = target.split(":")
        sections[name] = getattr(importlib.import_module(f"phot7dt.config.{module}"), model)
    return sections


def validate_parameters(params: Mapping[str, Any]) -> dict[str, Section]:
    """Validate all sections of a run's parameters.

    Returns the validated models by section name. Unknown top-level keys that are
    neither a registered section nor a runtime path key are errors too.
    """
    sections = registered_sections()
    validated: dict[str, Section] = {}
    problems = []
    for key, value in params.items():
        if key in PATH_KEYS:
            continue
        model = sections.get(key)
        if model is None:
            problems.append(f"{key}: unknown parameter section")
            continue
        try:
            validated[key] = section(model, value if isinstance(value, Mapping) else {}, key)
            if not isinstance(value, Mapping):
                raise ParameterError(f"{key}: expected a mapping of keys, got {value!r}")
        except ParameterError as exc:
            problems.append(str(exc).removeprefix("invalid parameters: "))
    if problems:
        raise ParameterError("invalid parameters: " + "; ".join(problems))
    return validated
