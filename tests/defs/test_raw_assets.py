"""The raw Dagster asset on a temporary home: import mode and fetch mode against a local HTTP server."""

from __future__ import annotations

import datetime as dt
import http.server
import threading
import time

import dagster as dg
import pytest

from orchestration.defs.raw.assets import RawLoadConfig, raw_chart_entries
from orchestration.defs.resources import AppleFeeds, ChartlakeHome, PlayFeeds
from orchestration.lib import ingest, lake
from orchestration.lib.payload_store import PayloadStore
from tests.conftest import v2_payload

APPS = [("741292507", "REDnote"), ("835599320", "TikTok"), ("389801252", "Instagram")]


def _materialize(home, day: str, *, fetch=False, feeds: AppleFeeds | None = None, instance=None):
    return dg.materialize(
        [raw_chart_entries],
        partition_key=day,
        resources={"chartlake": ChartlakeHome(path=str(home.root)), "apple_feeds": feeds or AppleFeeds(),
                   "play_feeds": PlayFeeds()},
        run_config=dg.RunConfig({"raw__chart_entries": RawLoadConfig(fetch=fetch)}),
        instance=instance,
        raise_on_error=False,
    )


def _stage(home, tmp_path, files: dict[str, bytes]):
    paths = []
    for name, content in files.items():
        p = tmp_path / name
        p.write_bytes(content)
        paths.append(p)
    with lake.session(home) as con:
        return ingest.stage_files(con, PayloadStore(home.raw), paths, run_id="import")


def test_materialize_lands_a_day_with_metadata_and_data_version(home, tmp_path):
    _stage(home, tmp_path, {"us.json": v2_payload("us", "top-free", APPS),
                            "fr.json": v2_payload("fr", "top-free", APPS[:2])})
    instance = dg.DagsterInstance.ephemeral()
    res = _materialize(home, "2025-01-14", instance=instance)
    assert res.success
    mat = res.asset_materializations_for_node("raw__chart_entries")[0]
    assert mat.metadata["rows_inserted"].value == 5
    assert mat.metadata["countries"].value == {"fr": 2, "us": 3}
    assert len(mat.metadata["payload_hashes"].value) == 2
    version = mat.tags["dagster/data_version"]

    # Unchanged feed: a second run is a no-op with the same data version.
    again = _materialize(home, "2025-01-14", instance=instance)
    mat2 = again.asset_materializations_for_node("raw__chart_entries")[0]
    assert mat2.metadata["rows_inserted"].value == 0
    assert mat2.tags["dagster/data_version"] == version


def test_a_day_with_nothing_staged_fails_with_a_clear_message(home):
    res = _materialize(home, "2025-01-20")
    assert not res.success
    failure = res.get_step_failure_events()[0].step_failure_data.error.message
    assert "2025-01-20" in failure and "nothing staged" in failure


class _FeedServer:
    """A local stand-in for Apple's feeds: per-path canned responses (status, body, delay)."""

    def __init__(self, routes: dict[str, tuple[int, bytes, float]]):
        routes_ = routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                status, body, delay = routes_.get(self.path, (404, b"not found", 0))
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("ETag", '"v1"')
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def feed_server():
    day = dt.date.today().isoformat()
    server = _FeedServer({
        "/api/v2/us/apps/top-free/3/apps.json": (200, v2_payload("us", "top-free", APPS, updated=f"{day}T08:00:00Z"), 0),
        "/api/v2/fr/apps/top-free/3/apps.json": (200, b"<html><body>Oops</body></html>", 0),
        "/api/v2/gb/apps/top-free/3/apps.json": (200, b"", 5),  # slower than the client's timeout
        # de: nothing routed -> 404
    })
    yield server
    server.close()


def test_fetch_mode_isolates_bad_countries(home, feed_server):
    feeds = AppleFeeds(countries="us,fr,gb,de", charts="iphone:top-free", depth=3, v2_base_url=feed_server.url,
                       legacy_base_url=feed_server.url, timeout_seconds=0.5)
    day = dt.date.today().isoformat()
    res = _materialize(home, day, fetch=True, feeds=feeds)
    assert res.success  # one good country is enough for the day; the others are reported
    mat = res.asset_materializations_for_node("raw__chart_entries")[0]
    assert mat.metadata["countries"].value["us"] == 3
    assert set(mat.metadata["failed_countries"].value) == {"fr", "gb", "de"}
    errors = {f["country"]: f for f in mat.metadata["failures"].value}
    assert "/api/v2/de/" in errors["de"]["source"] and "404" in errors["de"]["error"]
    assert errors["fr"]["payload_sha256"]  # the HTML page was kept in the raw store
    assert PayloadStore(home.raw).get(errors["fr"]["payload_sha256"]).startswith(b"<html>")
    assert "/api/v2/gb/" in errors["gb"]["source"]
