"""The Node fetcher of Google Play, installed for tests, and a local stand-in for Play's batchexecute endpoint.

``ensure_fetcher()`` runs ``npm ci`` in ``fetchers/google-play`` once (as ``make play-setup`` does, same stamp),
and skips the calling test, saying why, only when ``node`` or ``npm`` is not on this machine. ``PlayServer`` answers
the library's POST on 127.0.0.1 with whatever a test routes to the (country, collection) it asks for, and records
every request, so a test sees what the real library sent. No network: the server is local, npm's registry is the
only download, and only on a machine where the packages are not installed yet.
"""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from orchestration.sources.play_feed import FETCHER_DIR

FIXTURES = Path(__file__).parent / "fixtures" / "play_batchexecute"
US_TOP_FREE = FIXTURES / "us_topselling_free.txt"
STAMP = FETCHER_DIR / "node_modules" / ".chartlake-installed"  # the Makefile's play-setup stamp
# list.js's cluster names for the collections (google-play-scraper lib/list.js, CLUSTER_NAMES).
CLUSTERS = {"topselling_free": "TOP_FREE", "topselling_paid": "TOP_PAID", "topgrossing": "GROSSING"}


def ensure_fetcher() -> Path:
    """fetchers/google-play with its node_modules installed from the lock file; skips without node or npm."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not on PATH: the Google Play fetch runs the Node google-play-scraper")
    lock = FETCHER_DIR / "package-lock.json"
    if not STAMP.exists() or STAMP.stat().st_mtime < max(lock.stat().st_mtime,
                                                         (FETCHER_DIR / "package.json").stat().st_mtime):
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=FETCHER_DIR, capture_output=True,
                              text=True, timeout=600, check=False)
        assert done.returncode == 0, f"npm ci in {FETCHER_DIR} failed:\n{done.stdout}\n{done.stderr}"
        STAMP.touch()
    return FETCHER_DIR


@dataclass
class Seen:
    method: str
    path: str
    query: dict
    body: str

    @property
    def collection(self) -> str | None:
        return next((name for cluster, name in CLUSTERS.items() if f'\\"{cluster}\\"' in self.body), None)

    @property
    def num(self) -> int | None:
        # The body's f.req carries [[8,[20,num]]...]: the chart depth list() asked for.
        marker = "[[8,[20,"
        at = self.body.find(marker)
        return int(self.body[at + len(marker):].split("]", 1)[0]) if at >= 0 else None


class PlayServer:
    """``routes[(country, collection)] = (status, content_type, body)``; unrouted requests get a 404 page.
    ``hang`` holds every answer until the server closes (for timeouts, without sleeping)."""

    def __init__(self, routes: dict | None = None):
        self.routes = dict(routes or {})
        self.seen: list[Seen] = []
        self.hang = False
        self._release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                size = int(self.headers.get("Content-Length") or 0)
                body = unquote(self.rfile.read(size).decode("utf-8", "replace"))
                parts = urlsplit(self.path)
                seen = Seen("POST", parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}, body)
                outer.seen.append(seen)
                if outer.hang:
                    outer._release.wait(30)
                    return
                status, content_type, content = outer.routes.get(
                    (seen.query.get("gl"), seen.collection), (404, "text/html", b"<html>Not Found</html>"))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self):
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


def fixture_apps() -> list[dict]:
    """The apps the fixture's answer holds, as the library maps them (read back from the fixture itself)."""
    lines = US_TOP_FREE.read_text(encoding="utf-8").split("\n")
    rpc = json.loads(json.loads(lines[3])[0][2])
    return [{"appId": a[0][0][0], "title": a[0][3]} for a in rpc[0][1][0][28][0]]
