"""The January 2025 story the demo tells, read from ``data/story.json``: RedNote's multi-country breakout and
name change, Lemon8's climb, TikTok and CapCut leaving and re-entering the US store.

A scripted event forces one app's rank in some charts on consecutive days (``from`` and a list of ranks, null =
absent from the chart); days outside the list fall back to the ranking model (``ranking.py``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Mapping, Sequence

from orchestration.demo._data import load


@dataclass(frozen=True)
class NameChange:
    """An app renamed from ``effective`` on, in every storefront except ``except_countries``."""

    app_id: str
    effective: dt.date
    old_name: str
    new_name: str
    except_countries: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class ScriptedEvent:
    """Positions forced on one app in some charts: ``ranks[date]`` is its rank that day, None = not in the chart.

    Dates not in ``ranks`` fall back to the ranking model. A scripted rank larger than the chart's depth means
    the app is just outside the chart.
    """

    key: str
    app_id: str
    description: str
    countries: tuple[str, ...]
    devices: tuple[str, ...]
    charts: tuple[str, ...]
    ranks: Mapping[dt.date, int | None]


def _series(first: str, values: Sequence[int | None]) -> dict[dt.date, int | None]:
    d0 = dt.date.fromisoformat(first)
    return {d0 + dt.timedelta(days=i): v for i, v in enumerate(values)}


_STORY = load("story.json")

NAME_CHANGES: tuple[NameChange, ...] = tuple(
    NameChange(c["app_id"], dt.date.fromisoformat(c["effective"]), c["old_name"], c["new_name"],
               tuple(c["except_countries"]))
    for c in _STORY["name_changes"])

SCRIPTED_EVENTS: tuple[ScriptedEvent, ...] = tuple(
    ScriptedEvent(e["key"], e["app_id"], e["description"], tuple(e["countries"]), tuple(e["devices"]),
                  tuple(e["charts"]), _series(e["from"], e["ranks"]))
    for e in _STORY["scripted_events"])


def scripted_ranks(country: str, device: str, chart: str, day: dt.date) -> dict[str, int | None]:
    """The app ids whose position in this chart is scripted on ``day``, with that position (None = absent)."""
    out: dict[str, int | None] = {}
    for ev in SCRIPTED_EVENTS:
        if country in ev.countries and device in ev.devices and chart in ev.charts and day in ev.ranks:
            out[ev.app_id] = ev.ranks[day]
    return out
