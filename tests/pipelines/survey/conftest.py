"""Session fixtures of the survey tests: the simulated survey and one CLI run of it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from survey_field import SurveyField, run_survey, write_survey_field


@pytest.fixture(scope="session")
def survey_field(tmp_path_factory) -> SurveyField:
    """Three overlapping simulated tiles (and a broken copy of the last one)."""
    return write_survey_field(tmp_path_factory.mktemp("survey_raw"))


@pytest.fixture(scope="session")
def baseline(survey_field, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """An undisturbed survey run of the three tiles plus the broken one: its root, its process."""
    root = tmp_path_factory.mktemp("survey_baseline")
    return root, run_survey(survey_field.manifest_broken, root)
