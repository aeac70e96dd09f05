"""The canonical raw row: one chart position, as DESIGN.md defines it.

Every parser and archive adapter produces ``ParsedChart`` objects whose ``entries`` hold the chart columns
below; the ingest layer adds the lineage columns. Nothing here imports Dagster.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

# Devices per store: Apple ranks iPhone and iPad separately; Google Play has one phone chart.
STORE_DEVICES: dict[str, tuple[str, ...]] = {"apple": ("iphone", "ipad"), "google_play": ("android",)}
STORES = tuple(STORE_DEVICES)
DEVICES = STORE_DEVICES["apple"]  # Apple's: what the Apple feed clients and the demo's Apple charts accept
ALL_DEVICES = tuple(d for devices in STORE_DEVICES.values() for d in devices)
CHARTS = ("top-free", "top-paid", "top-grossing")

# (column, DuckDB type). Order is the table's column order.
CHART_COLUMNS: list[tuple[str, str]] = [
    ("store", "VARCHAR"),
    ("country", "VARCHAR"),
    ("device", "VARCHAR"),
    ("chart", "VARCHAR"),
    ("genre_id", "INTEGER"),
    ("chart_date", "DATE"),
    ("rank", "INTEGER"),
    ("app_id", "VARCHAR"),
    ("app_name", "VARCHAR"),
    ("developer_name", "VARCHAR"),
    ("developer_id", "VARCHAR"),
    ("genre_name", "VARCHAR"),
    ("release_date", "DATE"),
    ("price", "DECIMAL(10,2)"),
    ("currency", "VARCHAR"),
    ("url", "VARCHAR"),
]
LINEAGE_COLUMNS: list[tuple[str, str]] = [
    ("payload_sha256", "VARCHAR"),
    ("source_url", "VARCHAR"),
    ("source_format", "VARCHAR"),
    ("fetched_at", "TIMESTAMP"),
    ("run_id", "VARCHAR"),
    ("ingested_at", "TIMESTAMP"),
    # When the chart was captured: the fetch time, or the time an archive records (lake.payload_versions orders
    # versions by it). Last, so that an older home gets it by ALTER TABLE ... ADD COLUMN in the same position.
    ("captured_at", "TIMESTAMP"),
]
RAW_COLUMNS = CHART_COLUMNS + LINEAGE_COLUMNS

# Per-entry fields a parser fills; the chart key fields come from ``ChartKey``.
ENTRY_FIELDS = (
    "rank",
    "app_id",
    "app_name",
    "developer_name",
    "developer_id",
    "genre_name",
    "release_date",
    "price",
    "currency",
    "url",
)


class PayloadError(ValueError):
    """A payload that cannot become chart rows. The message names the input (file, URL) and hash."""

    def __init__(self, message: str, *, source: str | None = None, sha256: str | None = None):
        self.reason = message
        self.source = source
        self.sha256 = sha256
        parts = [message]
        if source:
            parts.append(f"source={source}")
        if sha256:
            parts.append(f"payload_sha256={sha256}")
        super().__init__("; ".join(parts))


@dataclass(frozen=True, order=True)
class ChartKey:
    """Identifies one chart on one day. ``genre_id`` None means the overall (all apps) chart."""

    store: str
    country: str
    device: str
    chart: str
    genre_id: int | None
    chart_date: dt.date

    def __post_init__(self):
        if self.store not in STORES:
            raise ValueError(f"unknown store {self.store!r}")
        if not (len(self.country) == 2 and self.country.isalpha() and self.country.islower()):
            raise ValueError(f"country must be an ISO 3166-1 alpha-2 code in lower case, got {self.country!r}")
        if self.device not in STORE_DEVICES[self.store]:
            raise ValueError(f"unknown device {self.device!r} for store {self.store!r} "
                             f"(expected one of {STORE_DEVICES[self.store]})")
        if self.chart not in CHARTS:
            raise ValueError(f"unknown chart {self.chart!r} (expected one of {CHARTS})")

    def label(self) -> str:
        genre = f"/genre={self.genre_id}" if self.genre_id is not None else ""
        return f"{self.store}/{self.country}/{self.device}/{self.chart}{genre}/{self.chart_date.isoformat()}"


@dataclass
class ParsedChart:
    """One chart as read from a payload: its key and its positions in rank order."""

    key: ChartKey
    entries: list[dict] = field(default_factory=list)
    source_format: str = ""
    # The capture time the payload itself records (a feed's ``updated`` timestamp), naive UTC; None: it has none.
    captured_at: dt.datetime | None = None
    # Positions the payload listed an app already listed higher up (Google Play's scraper pages overlap):
    # ``{"position", "app_id", "first_rank"}``. They are not entries; ingest records them beside the chart.
    repeats: list[dict] = field(default_factory=list)
