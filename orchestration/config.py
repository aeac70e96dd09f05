"""Where chartlake keeps its state.

Everything generated lives under one home directory, ``CHARTLAKE_HOME`` (default: ``data/`` beside the
project). It is resolved when asked for, never at import time, so tests and tools can point a process at a
temporary home by setting the variable or passing a path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"


def default_home() -> Path:
    return Path(os.environ.get("CHARTLAKE_HOME") or PROJECT_ROOT / "data").resolve()


@dataclass(frozen=True)
class Home:
    """The layout of one chartlake home. Paths only; nothing is created until ``ensure()``."""

    root: Path

    @classmethod
    def resolve(cls, root: str | os.PathLike | None = None) -> "Home":
        return cls(Path(root).resolve() if root else default_home())

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def lake_catalog(self) -> Path:
        return self.lake / "catalog.sqlite"

    @property
    def lake_files(self) -> Path:
        return self.lake / "files"

    @property
    def serving(self) -> Path:
        return self.root / "serving"

    @property
    def serving_db(self) -> Path:
        return self.serving / "chartlake.duckdb"

    @property
    def quality(self) -> Path:
        return self.root / "quality"

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def duckdb_extensions(self) -> Path:
        # Per-home extension directory: installing from the pip packages never touches ~/.duckdb.
        return self.root / ".duckdb_extensions"

    def ensure(self) -> "Home":
        for p in (self.raw, self.lake_files, self.serving, self.quality, self.inbox):
            p.mkdir(parents=True, exist_ok=True)
        return self
