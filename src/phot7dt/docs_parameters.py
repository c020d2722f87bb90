"""Write the parameter reference (``python -m phot7dt.docs_parameters > docs/parameters.md``).

Every parameter section of :mod:`phot7dt.config` (:func:`phot7dt.config.registered_sections`)
and every key of it, nested models included, with its type, default, unit and meaning. The meaning
is the first of: the field's ``Field(description=...)``, its entry in the model docstring's
``Attributes`` list, the ``# comment`` on its line in ``conf/base/parameters_*.yml``. The unit is
the ``[unit]`` at the start of that comment, or a unit word found in the meaning.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from phot7dt.config import registered_sections
from phot7dt.project_paths import conf_source

CONF_BASE = conf_source() / "base"
_KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][\w]*):(?P<rest>.*)$")
_UNITS = (
    r"(pixels?|px|deg(?:rees)?(?:/pixel)?|arcsec(?:/px)?|AB mag|mag|mmag|ADU|e-/ADU|nm|seconds|GB)"
)
#: A unit stated the house way: the whole text, ", <unit>" after the last comma,
#: "(<unit>" or "[<unit>".
_UNIT_STATED = re.compile(rf"^{_UNITS}$|,\s*{_UNITS}\b[^,]*$|[(\[]{_UNITS}\b")
_CONSTRAINTS = {
    "gt": ">",
    "ge": "≥",
    "lt": "<",
    "le": "≤",
    "min_length": "len ≥",
    "max_length": "len ≤",
}


def yaml_comments(folder: Path = CONF_BASE) -> tuple[dict[str, str], dict[str, str]]:
    """``{dotted key: comment}`` of every ``parameters_*.yml`` line and ``{section: file}``."""
    comments: dict[str, str] = {}
    files: dict[str, str] = {}
    for path in sorted(folder.glob("parameters*.yml")):
        stack: list[tuple[int, str]] = []
        for line in path.read_text().splitlines():
            match = _KEY_LINE.match(line)
            if not match or line.lstrip().startswith("#"):
                continue
            indent = len(match["indent"])
            stack = [(i, k) for i, k in stack if i < indent] + [(indent, match["key"])]
            dotted = ".".join(k for _, k in stack)
            if indent == 0:
                files[dotted] = path.name
            _, _, comment = match["rest"].partition(" #")
            if comment.strip():
                comments[dotted] = comment.strip()
    return comments, files


def docstring_attributes(model: type[BaseModel]) -> dict[str, str]:
    """``{name: text}`` from the numpydoc ``Attributes`` section of a model's docstring."""
    doc = inspect.cleandoc(model.__doc__ or "")  # as Python 3.13 stores it: dedented
    _, _, body = doc.partition("Attributes\n")
    entries: dict[str, str] = {}
    names: list[str] = []
    for line in body.splitlines()[1:]:
        if line.strip() and not line.startswith(" ") and " : " not in line and entries:
            break
        if " : " in line and not line.startswith(" "):
            names = [n.strip() for n in line.split(" : ")[0].split(",")]
            for name in names:
                entries[name] = ""
        elif line.strip():
            for name in names:
                entries[name] = f"{entries[name]} {line.strip()}".strip()
    return entries


def type_name(annotation: object) -> str:
    """A short name of a type annotation (``int | None``, ``list[float]``, ``"a" | "b"``)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin is not None:
        return (
            f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_name(a) for a in args)}]"
        )
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def _type_name(field: FieldInfo) -> str:
    name = type_name(field.annotation)
    limits = [
        f"{_CONSTRAINTS[k]} {getattr(m, k)}"
        for m in field.metadata
        for k in _CONSTRAINTS
        if getattr(m, k, None) is not None
    ]
    return f"{name} ({', '.join(limits)})" if limits else name


def _default(field: FieldInfo) -> str:
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        return "(see below)"
    try:
        return json.dumps(value, ensure_ascii=False)
    except TypeError:
        return repr(value)


def _unit(comment: str, meaning: str) -> str:
    bracket = re.match(r"\[([^\]]+)\]", comment)
    if bracket:
        return bracket[1]
    stated = _UNIT_STATED.search(meaning.strip())
    return next((g for g in stated.groups() if g), "") if stated else ""


def _nested_model(field: FieldInfo) -> type[BaseModel] | None:
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def parameter_rows(
    model: type[BaseModel], prefix: str, comments: dict[str, str]
) -> Iterator[tuple]:
    """``(key, type, default, unit, meaning)`` of every key of ``model``, nested models expanded."""
    attributes = docstring_attributes(model)
    for name, field in model.model_fields.items():
        dotted = f"{prefix}.{name}"
        comment = comments.get(dotted, "")
        meaning = (
            field.description or attributes.get(name) or re.sub(r"^\[[^\]]+\]\s*", "", comment)
        )
        yield dotted, _type_name(field), _default(field), _unit(comment, meaning), meaning
        nested = _nested_model(field)
        if nested is not None:
            yield from parameter_rows(nested, dotted, comments)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """The whole Markdown page."""
    comments, files = yaml_comments()
    lines = [
        "# Parameter reference",
        "",
        "Generated by `python -m phot7dt.docs_parameters > docs/parameters.md` from the pydantic",
        "models in `src/phot7dt/config/`; do not edit by hand.",
        "Keys, defaults and units follow tract7dt 0.7 unless a section says otherwise.",
        "Override a key at run time with `kedro run --params section.key=value`",
        "or in `conf/local/parameters.yml`.",
        "Unknown keys and wrong types stop a run before any node runs, naming the key path.",
        "",
    ]
    for name, model in registered_sections().items():
        summary = inspect.cleandoc(model.__doc__ or "").split("\n\n")[0].replace("\n", " ")
        where = files.get(name, "(not in conf/base)")
        lines += [
            f"## `{name}`",
            "",
            f"{summary}",
            "",
            f"File: `conf/base/{where}`",
            "",
            "| key | type | default | unit | meaning |",
            "|---|---|---|---|---|",
        ]
        lines += [
            "| " + " | ".join(_cell(c) for c in (f"`{row[0]}`", *row[1:])) + " |"
            for row in parameter_rows(model, name, comments)
        ]
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
