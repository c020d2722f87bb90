"""Parameter validation: unknown keys and wrong types fail with the dotted key path."""

import pytest

from phot7dt.config import ParameterError, Section, section, validate_parameters


class _Crop(Section):
    enabled: bool = True
    margin: int = 500


def test_section_fills_defaults():
    assert section(_Crop, {}, "crop") == _Crop(enabled=True, margin=500)


def test_unknown_key_names_the_dotted_path():
    with pytest.raises(ParameterError, match=r"crop\.marign: unknown key"):
        section(_Crop, {"marign": 30}, "crop")


def test_wrong_type_names_key_expected_and_given():
    with pytest.raises(ParameterError, match=r"crop\.margin: .*integer.*'abc'"):
        section(_Crop, {"margin": "abc"}, "crop")


def test_run_parameters_reject_unknown_sections():
    with pytest.raises(ParameterError, match="no_such_section: unknown parameter section"):
        validate_parameters({"work_dir": "data", "no_such_section": {"a": 1}})
