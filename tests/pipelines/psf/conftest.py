"""Fixtures of the psf tests (field rendering lives in ``psf_field.py``)."""

from __future__ import annotations

import pytest
from psf_field import EPSF_TEST_PARAMS, PsfField, make_psf_field


@pytest.fixture(scope="session")
def psf_field(tmp_path_factory) -> PsfField:
    return make_psf_field(tmp_path_factory.mktemp("psf_field"))


@pytest.fixture
def epsf_params() -> dict:
    """``epsf`` overrides for the 400 x 400 field (a fresh copy per test)."""
    return dict(EPSF_TEST_PARAMS)
