"""Shared fixtures: every test that touches state gets its own temporary chartlake home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestration.config import Home

REPO = Path(__file__).resolve().parents[1]
REAL_CHARTS = (REPO.parent / "shared" / "real_charts").resolve()


@pytest.fixture
def home(tmp_path) -> Home:
    return Home(tmp_path / "home").ensure()


@pytest.fixture
def real_charts() -> Path:
    if not REAL_CHARTS.is_dir():
        pytest.skip(f"real chart archives not present at {REAL_CHARTS} (see ../shared/real_charts/README.md)")
    return REAL_CHARTS


def v2_payload(country: str, chart: str, apps: list[tuple[str, str]], updated: str = "2025-01-14T12:00:00Z") -> bytes:
    """A small Apple RSS v2 payload (structure as Apple serves it) listing ``apps`` as (id, name) in rank order."""
    kind = "top-free" if chart == "top-free" else "top-paid"
    url = f"https://rss.applemarketingtools.com/api/v2/{country}/apps/{kind}/{len(apps)}/apps.json"
    feed = {
        "feed": {
            "title": "Top Free Apps" if kind == "top-free" else "Top Paid Apps",
            "id": url,
            "author": {"name": "Apple", "url": "https://www.apple.com/"},
            "links": [{"self": url}],
            "copyright": "Copyright © 2025 Apple Inc. All rights reserved.",
            "country": country,
            "icon": "https://www.apple.com/favicon.ico",
            "updated": updated,
            "results": [
                {
                    "artistName": f"Dev {app_id}",
                    "id": app_id,
                    "name": name,
                    "releaseDate": "2020-01-01",
                    "kind": "apps",
                    "artworkUrl100": "https://is1-ssl.mzstatic.com/image/thumb/x/100x100bb.png",
                    "genres": [],
                    "url": f"https://apps.apple.com/{country}/app/x/id{app_id}",
                }
                for app_id, name in apps
            ],
        }
    }
    return json.dumps(feed, ensure_ascii=False).encode()


def run_chartlake(home: Home, *args: str) -> int:
    """Run the ``chartlake`` CLI in-process on ``home``; CHARTLAKE_HOME is restored afterwards."""
    from orchestration import cli

    mp = pytest.MonkeyPatch()
    mp.setenv("CHARTLAKE_HOME", str(home.root))
    try:
        return cli.main(["--home", str(home.root), *args])
    finally:
        mp.undo()


def latest_check_evaluations(home: Home) -> dict[tuple[str, str, str | None], bool]:
    """(asset, check, partition) -> passed, for the latest evaluation of each check and partition in the home's
    Dagster instance: what the UI shows as each check's state. ``raw_chart_quality`` comes with its asset's
    materialization and carries no partition of its own: its day is the one-day raw run's."""
    import dagster as dg

    from orchestration.runner import instance_for

    instance = instance_for(home)
    latest: dict[tuple, tuple] = {}
    try:
        for run in instance.get_runs():
            for event in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
                evaluation = event.dagster_event.event_specific_data
                partition = evaluation.partition or event.dagster_event.partition or run.tags.get("dagster/partition")
                key = (evaluation.asset_key.to_user_string(), evaluation.check_name, partition)
                if key not in latest or latest[key][0] < event.timestamp:
                    latest[key] = (event.timestamp, evaluation.passed)
    finally:
        instance.dispose()
    return {key: passed for key, (_, passed) in latest.items()}


def published_counts(home: Home) -> tuple[dict[tuple, int], int]:
    """Rows of the serving file's ``fct_chart_entries`` per (store, country, chart_date), and its quarantine rows."""
    import duckdb

    con = duckdb.connect(str(home.serving_db), read_only=True)
    try:
        counts = {(s, c, d): n for s, c, d, n in con.execute(
            "select store, country, chart_date, count(*) from analytics.fct_chart_entries group by all").fetchall()}
        quarantined = con.execute("select count(*) from analytics.quarantine").fetchone()[0]
    finally:
        con.close()
    return counts, quarantined
