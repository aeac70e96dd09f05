"""What the UI shows beside the graph, checked without a browser: the raw materialization's top-10 preview and Data
Docs links, and the owners / kinds / tags / descriptions the dbt translator gives every dbt asset."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd

from orchestration.defs.raw.assets import RawLoadConfig, data_docs_markdown, raw_chart_entries, top10_markdown
from orchestration.defs.resources import AppleFeeds, ChartlakeHome, PlayFeeds
from orchestration.lib import ingest, lake
from orchestration.lib.payload_store import PayloadStore
from tests.conftest import v2_payload

DAY = dt.date(2025, 1, 14)


def _rows(country: str, chart: str, n: int, sha: str, *, device="iphone", genre_id=None, names=None) -> list[dict]:
    return [{"country": country, "device": device, "chart": chart, "genre_id": genre_id, "rank": r,
             "app_id": str(1000 + r), "app_name": (names or {}).get(r, f"App {r}"), "developer_name": f"Dev {r}",
             "payload_sha256": sha} for r in range(1, n + 1)]


def _ranks(table_md: str) -> list[int]:
    return [int(line.split("|")[1]) for line in table_md.splitlines() if line.startswith("| ") and "rank" not in line]


def test_top10_shows_the_key_charts_first_ten_in_rank_order():
    rows = pd.DataFrame(
        _rows("fr", "top-free", 15, "f" * 64)[::-1]  # out of order on purpose: the preview sorts by rank
        + _rows("us", "top-free", 12, "a" * 64, names={1: "REDnote", 2: "Temu | Shop"})
        + _rows("us", "top-paid", 12, "b" * 64)  # not a key chart
        + _rows("us", "top-free", 12, "c" * 64, genre_id=6014))  # a genre chart is not the overall chart
    md = top10_markdown(rows, DAY)
    assert "2025-01-14" in md
    us, fr = md.index("**us · iphone · top-free**"), md.index("**fr · iphone · top-free**")
    assert us < fr  # the order of PREVIEW_CHARTS, not of the rows
    assert "top-paid" not in md and "c" * 12 not in md
    assert "(payload `aaaaaaaaaaaa`)" in md
    us_table = md[us:fr]
    assert _ranks(us_table) == list(range(1, 11))
    assert "| 1 | REDnote | Dev 1 | 1001 |" in us_table
    assert "Temu \\| Shop" in us_table  # a pipe in a name must not split the table row
    assert _ranks(md[fr:]) == list(range(1, 11))


def test_top10_falls_back_to_the_days_charts_when_no_key_chart_is_there():
    rows = pd.DataFrame(_rows("jp", "top-paid", 3, "d" * 64, device="ipad"))
    md = top10_markdown(rows, DAY)
    assert "**jp · ipad · top-paid**" in md and md.count("| 3 |") == 1
    assert top10_markdown(rows.iloc[0:0], DAY) == "No chart positions for 2025-01-14."


def test_data_docs_links_point_at_the_quality_folder_of_the_day(home):
    md = data_docs_markdown(home, DAY, ["fr", "us"])
    folder = home.quality / "raw" / "2025-01-14"
    assert str(folder) in md
    assert f"[us]({(folder / 'us.html').as_uri()})" in md and f"[fr]({(folder / 'fr.html').as_uri()})" in md


def test_raw_materialization_carries_the_preview_and_data_docs(home, tmp_path):
    apps = [("741292507", "REDnote"), ("835599320", "TikTok"), ("389801252", "Instagram")]
    p = tmp_path / "us.json"
    p.write_bytes(v2_payload("us", "top-free", apps))
    with lake.session(home) as con:
        ingest.stage_files(con, PayloadStore(home.raw), [p], run_id="import")
    res = dg.materialize(
        [raw_chart_entries], partition_key=DAY.isoformat(),
        resources={"chartlake": ChartlakeHome(path=str(home.root)), "apple_feeds": AppleFeeds(),
                   "play_feeds": PlayFeeds()},
        run_config=dg.RunConfig({"raw__chart_entries": RawLoadConfig(fetch=False)}),
    )
    md = res.asset_materializations_for_node("raw__chart_entries")[0].metadata
    preview = md["top10_preview"].value
    assert "**us · iphone · top-free**" in preview
    assert "| 1 | REDnote |" in preview and "| 3 | Instagram |" in preview and "| 4 |" not in preview
    assert md["data_docs"].value == str(home.quality / "raw" / "2025-01-14")
    assert "us.html" in md["data_docs_pages"].value


def test_every_dbt_asset_has_owner_kinds_tags_and_a_description_without_sql():
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    dbt_keys = [k for k in graph.get_all_asset_keys() if "dbt" in graph.get(k).kinds]
    assert len(dbt_keys) >= 12
    for key in dbt_keys:
        node = graph.get(key)
        name = key.to_user_string()
        assert node.owners == ["team:chartlake"], name
        assert node.kinds == {"dbt", "duckdb", "ducklake"}, name
        assert node.tags["layer"] == node.group_name, name
        assert node.tags["materialized"] in {"view", "table", "incremental", "seed"}, name
        assert "Raw SQL" not in node.description and "```sql" not in node.description, name
        assert f"`lake.{key.path[0]}.{key.path[-1]}`" in node.description, name
    rankings = graph.get(dg.AssetKey(["marts", "mart_daily_rankings"]))
    assert rankings.tags["materialized"] == "incremental"
    assert "Grain" in rankings.description and "[min_date, max_date)" in rankings.description
