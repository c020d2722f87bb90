"""Validated parameter sections.

Every pipeline declares its parameter sections as pydantic models in its own
``params.py`` (``SECTIONS = {"crop": CropParams, ...}``). Nodes receive the raw
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

#: Pipelines whose ``params.py`` declares parameter sections.
PIPELINES_WITH_PARAMS = (
    "simulate",
    "ingest",
    "gaia_augment",
    "masking",
    "psf",
    "patching",
    "fitting",
    "validate",
    "report",
    "survey",
)

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
    """Every parameter section any pipeline declares, by section name."""
    sections: dict[str, type[Section]] = {}
    for pipeline in PIPELINES_WITH_PARAMS:
        module = importlib.import_module(f"phot7dt.pipelines.{pipeline}.params")
        sections.update(module.SECTIONS)
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
