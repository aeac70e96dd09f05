"""Where chartlake keeps its state.

Everything generated lives under one home directory, ``CHARTLAKE_HOME`` (default: ``data/`` beside the
project). It is resolved when asked for, never at import time, so tests and tools can point a process at a
temporary home by setting the variable or passing a path.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"


# The first chart date the daily partitions hold, and so the first one staging accepts. The oldest real archive in
# ../shared/real_charts is Google Play's of 2020-10 (price-of-privacy-play). Read without Dagster: staging
# (sources/validate.py) and the partitions (defs/raw/partitions.py) must agree, or a staged day could never land.
PARTITIONS_START = dt.date(2020, 1, 1)
# Partitions reach tomorrow (UTC): a storefront east of UTC (Japan, Australia) publishes its chart for tomorrow's
# date while UTC is still today, and a chart dated later than that is a wrong date, not an early chart.
PARTITIONS_DAYS_AHEAD = 1

MAX_PAYLOAD_BYTES_ENV = "CHARTLAKE_MAX_PAYLOAD_BYTES"
# The largest real archive file is 0.35 MB and a 200-entry legacy chart about 0.5 MB: 64 MB leaves room for any
# real archive's aggregate file while refusing a runaway one before it is read into memory.
DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024


def last_chart_date(today: dt.date | None = None) -> dt.date:
    """The newest chart date a payload may carry (and the last daily partition)."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    return today + dt.timedelta(days=PARTITIONS_DAYS_AHEAD)


def max_payload_bytes() -> int:
    """The size above which a payload is refused unread, from ``CHARTLAKE_MAX_PAYLOAD_BYTES`` (bytes)."""
    value = os.environ.get(MAX_PAYLOAD_BYTES_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_PAYLOAD_BYTES
    try:
        limit = int(value)
    except ValueError:
        raise ValueError(f"{MAX_PAYLOAD_BYTES_ENV} must be a whole number of bytes, got {value!r}") from None
    if limit < 1:
        raise ValueError(f"{MAX_PAYLOAD_BYTES_ENV} must be at least 1 byte, got {value!r}")
    return limit


def default_home() -> Path:
    return Path(os.environ.get("CHARTLAKE_HOME") or PROJECT_ROOT / "data").resolve()


@dataclass(frozen=True)
class Home:
    """The layout of one chartlake home. Paths only; nothing is created until ``ensure()``."""

    root: Path
    # DuckDB's memory bound for this home's lake sessions when a caller configured one (Dagster's ChartlakeHome
    # resource); None: CHARTLAKE_DUCKDB_MEMORY_LIMIT, else the default (orchestration.lib.lake). Not part of the
    # home's identity: the same directory is the same home whatever memory a process allows itself.
    duckdb_memory_limit: str | None = field(default=None, compare=False)

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
    def replay_file(self) -> Path:
        return self.root / "replay.json"

    @property
    def duckdb_extensions(self) -> Path:
        # Per-home extension directory: installing from the pip packages never touches ~/.duckdb.
        return self.root / ".duckdb_extensions"

    def ensure(self) -> "Home":
        for p in (self.raw, self.lake_files, self.serving, self.quality, self.inbox):
            p.mkdir(parents=True, exist_ok=True)
        return self


@dataclass(frozen=True)
class Replay:
    """A home that replays a past window (``chartlake demo`` writes one): its storefronts and its pinned clock.

    Checks that compare chart dates with the clock (serving freshness) read this clock instead of the wall clock,
    or a demo of January 2025 would be reported stale forever. Delete ``replay.json`` to return to the wall clock.
    """

    start: dt.date
    end: dt.date
    countries: tuple[str, ...]
    clock: dt.datetime  # UTC
    source: Path

    @classmethod
    def for_window(cls, home: Home, start: dt.date, end: dt.date, countries) -> "Replay":
        # Just after the daily fetch (06:15 UTC) of the day after the window: the last day is then as fresh as a
        # live home's newest day is every morning.
        clock = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(6, 15), tzinfo=dt.timezone.utc)
        return cls(start, end, tuple(countries), clock, home.replay_file)

    def write(self) -> Path:
        tmp = self.source.with_suffix(".tmp")
        tmp.write_text(json.dumps({
            "why": "this home replays a past window; freshness is judged at 'clock', not now (delete this file to "
                   "judge it against the wall clock)",
            "start": self.start.isoformat(), "end": self.end.isoformat(), "countries": list(self.countries),
            "clock": self.clock.isoformat(),
        }, indent=1) + "\n")
        tmp.replace(self.source)
        return self.source


def read_replay(home: Home) -> Replay | None:
    """The home's replay settings, or None for a live home. A malformed file is an error that names it."""
    path = home.replay_file
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
        clock = dt.datetime.fromisoformat(doc["clock"])
        return Replay(dt.date.fromisoformat(doc["start"]), dt.date.fromisoformat(doc["end"]),
                      tuple(str(c).lower() for c in doc["countries"]),
                      clock if clock.tzinfo else clock.replace(tzinfo=dt.timezone.utc), path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a valid replay file ({type(exc).__name__}: {exc}); fix or delete it") from None
