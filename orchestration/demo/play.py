"""Simulated Google Play charts for the demo, beside the simulated App Store ones (``appstore.py``).

Why: the cross-store questions (where did RedNote rank on each store; did it break out on both) need Play charts
for the demo month, and no archive of January 2025 Play charts exists here. Each file is a ``list()`` JSON array
as the Node ``google-play-scraper`` writes it (``sources/play.py`` reads it), named
``{date}/{country}-android-{chart}.json`` in the demo's folder. The first entry carries
``"chartlake": {"simulated": true, ...}`` (a top-level array has no envelope), so the rows' ``source_format`` is
``google-play-list-simulated`` and nothing here can pass for real data.

The story: Play's ranking of a day is the App Store iPhone chart's of the same day (``ranking.rank_chart``), with
RedNote placed where it stood on the App Store two days before and Lemon8 one day before: the surge reaches
Android users a day or two after iPhone users. Apps with a real Play package (``play_packages`` in
``data/catalogue.json``) use it; every other app gets an invented package under ``sim.chartlake.``, a namespace no
real app uses. Deterministic: the same arguments give the same bytes. Kept small on purpose (a few storefronts,
depth 50 by default) so that ``make demo`` and the tests stay fast. No Dagster.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Sequence

from orchestration.demo.catalogue import LEMON8_ID, PLAY_PACKAGES, REDNOTE_ID, DemoApp
from orchestration.demo.payloads import GENERATOR
from orchestration.demo.ranking import DEFAULT_SEED, rank_chart
from orchestration.sources.play import COLLECTIONS, MAX_DEPTH

# The storefronts of the RedNote story (``data/story.json``) that the Play demo covers.
DEFAULT_COUNTRIES = ("us", "fr", "gb", "ca")
DEFAULT_DEPTH = 50
CHARTS = tuple(COLLECTIONS.values())
# Days after the App Store that each scripted app's Play rank follows.
LAGS = {REDNOTE_ID: 2, LEMON8_ID: 1}


def package_of(apple_id: str) -> str:
    return PLAY_PACKAGES.get(apple_id) or f"sim.chartlake.app{apple_id}"


def play_ranking(country: str, chart: str, day: dt.date, depth: int = DEFAULT_DEPTH, *,
                 seed: int = DEFAULT_SEED) -> list[DemoApp]:
    """The apps of one simulated Play chart, best first: the App Store iPhone chart, lagged apps moved."""
    pool = rank_chart(country, "iphone", chart, day, depth + len(LAGS), seed=seed)
    ranked = [a for a in pool if a.app_id not in LAGS]
    placed = []
    for app_id, lag in LAGS.items():
        before = rank_chart(country, "iphone", chart, day - dt.timedelta(days=lag), depth, seed=seed)
        placed += [(i, lag, a) for i, a in enumerate(before) if a.app_id == app_id]
    # Best target first, so a later insert never moves an earlier one; on a tie the one inserted last (the longer
    # lag: RedNote) takes the rank.
    for index, _, app in sorted(placed, key=lambda p: (p[0], p[1])):
        ranked.insert(index, app)
    return ranked[:depth]


def build_list(country: str, chart: str, day: dt.date, depth: int = DEFAULT_DEPTH, *,
               seed: int = DEFAULT_SEED) -> list[dict]:
    items = []
    for app in play_ranking(country, chart, day, depth, seed=seed):
        name = app.name_on(country, day)
        package = package_of(app.app_id)
        paid = app.price_usd > 0
        items.append({
            "title": name, "appId": package, "url": f"https://play.google.com/store/apps/details?id={package}",
            "icon": f"https://play-lh.googleusercontent.com/sim-{package}", "developer": app.developer,
            "developerId": app.developer.replace(" ", "+"), "priceText": f"${app.price_usd}" if paid else "FREE",
            "price": float(app.price_usd) if paid else 0, "free": not paid, "summary": f"{name} (simulated)",
            "scoreText": "4.3", "score": 4.3,
        })
    if items:
        items[0]["chartlake"] = {"simulated": True, "generator": f"{GENERATOR} (google play)", "seed": seed}
    return items


def relative_path(day: dt.date, country: str, chart: str) -> str:
    return f"{day.isoformat()}/{country}-android-{chart}.json"


def generate(out_dir: Path, *, start: dt.date, end: dt.date, countries: Sequence[str] = DEFAULT_COUNTRIES,
             charts: Sequence[str] = CHARTS, depth: int = DEFAULT_DEPTH, seed: int = DEFAULT_SEED) -> list[Path]:
    """Write one simulated Play payload per (date, country, chart), ``start`` to ``end`` inclusive."""
    if start > end:
        raise ValueError(f"demo_play: start {start} is after end {end}")
    if not 1 <= depth <= MAX_DEPTH:
        raise ValueError(f"demo_play: depth must be 1..{MAX_DEPTH} (list()'s limit), got {depth}")
    bad = [c for c in charts if c not in CHARTS]
    if bad:
        raise ValueError(f"demo_play: unknown charts {bad}; expected {CHARTS}")
    written = []
    day = start
    while day <= end:
        (Path(out_dir) / day.isoformat()).mkdir(parents=True, exist_ok=True)
        for country in countries:
            for chart in charts:
                path = Path(out_dir) / relative_path(day, country, chart)
                doc = build_list(country, chart, day, depth, seed=seed)
                path.write_bytes(json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8"))
                written.append(path)
        day += dt.timedelta(days=1)
    return written
