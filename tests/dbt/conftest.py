"""Fixtures for the dbt project tests (helpers and the synthetic month are in dbt_helpers.py)."""

from __future__ import annotations

import pytest

from dbt_helpers import DbtHome, load_raw, make_dbt_home, synthetic_rows


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> DbtHome:
    """The synthetic month loaded and built with one `dbt build` (models, seeds, data tests, unit tests)."""
    h = make_dbt_home(tmp_path_factory.mktemp("dbt_full"))
    load_raw(h.home, synthetic_rows())
    h.dbt("build")
    return h
