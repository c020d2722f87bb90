"""Shared fixtures: a tiny, valid 7DT-like tile in ``tmp_path`` (see ``tiny_field.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tiny_field import TinyField, write_tiny_field


@pytest.fixture
def make_field(tmp_path: Path) -> Callable[..., TinyField]:
    """Factory writing a tiny field under ``tmp_path`` (keyword arguments of ``write_tiny_field``;
    ``name`` picks the sub-folder so one test can write several fields)."""

    def factory(name: str = "field", **kwargs: Any) -> TinyField:
        return write_tiny_field(tmp_path / name, **kwargs)

    return factory


@pytest.fixture
def tiny_field(make_field) -> TinyField:
    """The default tiny field: 3 bands, 80x64 px, six sources."""
    return make_field()
