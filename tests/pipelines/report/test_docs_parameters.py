"""docs/parameters.md is what the generator writes, and covers every registered key."""

from __future__ import annotations

from pathlib import Path

from phot7dt.config import registered_sections
from phot7dt.config.validate import ValidateParams
from phot7dt.docs_parameters import docstring_attributes, render, type_name

DOC = Path(__file__).resolve().parents[3] / "docs" / "parameters.md"


def test_parameters_page_is_up_to_date():
    assert DOC.read_text() == render(), (
        "docs/parameters.md is stale: run `python -m phot7dt.docs_parameters > docs/parameters.md`"
    )


def test_every_section_and_key_is_documented():
    page = render()
    for name, model in registered_sections().items():
        assert f"## `{name}`" in page
        for key in model.model_fields:
            assert f"| `{name}.{key}` |" in page, f"{name}.{key}"


def test_meaning_type_and_unit_sources():
    assert docstring_attributes(ValidateParams)["min_per_bin"].startswith("Bins with fewer")
    assert type_name(int | None) == "int | None"
    page = render()
    assert "| `validate.headline_snr_min` | float (≥ 0) | 20.0 | S/N |" in page
