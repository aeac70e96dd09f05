"""Reads the demo's data files (``data/*.json``, shipped as package data; see pyproject's package-data)."""

from __future__ import annotations

import json
from importlib import resources


def load(name: str):
    return json.loads(resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8"))
