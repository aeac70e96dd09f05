"""The 50 storefronts a benchmark at scale generates: known to the dbt seed, full charts, parseable payloads."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from orchestration import demo
from orchestration.sources.parsers import parse_payload

REPO = Path(__file__).resolve().parents[2]


def test_fifty_distinct_storefronts_all_in_the_countries_seed():
    codes = demo.ALL_COUNTRIES
    assert len(codes) == 50 and len(set(codes)) == 50
    assert codes[:12] == demo.DEFAULT_COUNTRIES
    with open(REPO / "dbt_project" / "seeds" / "dim_countries.csv", newline="") as f:
        seeded = {row["code"] for row in csv.DictReader(f)}
    assert set(codes) - seeded == set()


def test_extra_storefronts_give_full_parseable_charts_in_their_currency(tmp_path):
    day = dt.date(2025, 3, 1)
    extra = [c for c in demo.ALL_COUNTRIES if c not in demo.DEFAULT_COUNTRIES]
    for country in (extra[0], "vn", "ch", extra[-1]):
        files = demo.generate(tmp_path / country, start=day, end=day, countries=[country], depth=200)
        assert len(files) == 6
        for path in files:
            (chart,) = parse_payload(path.read_bytes(), source=str(path))
            assert chart.key.country == country and chart.key.chart_date == day
            expected = 100 if demo.is_v2(chart.key.device, chart.key.chart) else 200
            assert [e["rank"] for e in chart.entries] == list(range(1, expected + 1)), path
            if chart.key.chart == "top-paid" and not demo.is_v2(chart.key.device, chart.key.chart):
                currencies = {e["currency"] for e in chart.entries}
                assert currencies == {demo.CURRENCY[country]}, path
                assert all(e["price"] > 0 for e in chart.entries), path
