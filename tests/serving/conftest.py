"""Fixtures for the serving writer tests (helpers live in serving_fixtures.py)."""

from __future__ import annotations

import pytest

from orchestration.config import Home


@pytest.fixture
def home(tmp_path) -> Home:
    return Home.resolve(tmp_path / "home").ensure()
