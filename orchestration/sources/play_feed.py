"""Fetching Google Play charts: the Node ``google-play-scraper``'s ``list()``, run as a child process.

Play has no chart feed (DESIGN.md, "Google Play"): ``list()`` POSTs to Play's undocumented ``batchexecute``
endpoint and reads a nested array whose layout only the library knows. So the request is the library's, pinned to
``SCRAPER_VERSION`` and installed from ``fetchers/google-play/package-lock.json`` (``make play-setup``: ``npm ci``),
and this module only runs ``fetchers/google-play/list.js`` for one ``PlayRequest`` and keeps its stdout, the
``list()`` JSON array, as the payload (format ``google-play-list``, the same bytes the real archives hold).

``PlayFeedClient.fetch`` answers with the ``FetchResult`` the Apple client gives, and never raises: Node missing,
the packages not installed, a timeout, an HTTP error, an answer the library cannot read (Google changed the
endpoint) or anything but a non-empty JSON array on stdout is ``FetchResult.error``, naming the request, with no
content, so one failed chart is recorded as failed and never stops the other charts or the Apple fetch.

``FetchResult.url`` (the payload's ``source_url``) names the library call, e.g.
``google-play-scraper@10.1.3:list?collection=TOP_FREE&country=us&lang=en&num=200``: Play's URL alone does not name
the chart (the collection travels in the POST body), and the call is what re-fetches it. ``status`` is the HTTP
status of the answer, as the script reports it. No Dagster imports: the raw asset and the tests use this directly.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path
from typing import Iterable
from urllib.parse import urlencode

from orchestration import config
from orchestration.sources.feeds import FetchResult
from orchestration.sources.fetch_pool import fetch_all
from orchestration.sources.play import PlayRequest

SCRAPER_PACKAGE = "google-play-scraper"
SCRAPER_VERSION = "10.1.3"  # exactly what fetchers/google-play/package.json pins (a test holds them together)
FETCHER_DIR = config.PROJECT_ROOT / "fetchers" / "google-play"
SCRIPT_NAME = "list.js"
BASE_URL_ENV = "CHARTLAKE_PLAY_BASE_URL"  # read by list.js: where the library's request goes instead of Play
DEFAULT_BASE_URL = "https://play.google.com"
RESULT_MARK = "chartlake-play-result"
SETUP_HINT = "run `make play-setup` (npm ci in fetchers/google-play)"
# Exit codes of list.js.
_USAGE, _REQUEST, _FORMAT = 2, 3, 4


class PlayFeedClient:
    """Runs ``list.js`` once per chart, at most ``max_in_flight`` at a time.

    ``timeout`` bounds the HTTP request (given to got); the child process gets ``timeout`` plus
    ``startup_seconds`` for Node to start and print, and is killed after that. ``base_url`` sends the library's
    request elsewhere (a local server in tests, a proxy); empty means Play itself. Play throttles aggressive
    clients, hence the small default concurrency and no retries: a failed chart is retried by the next run.
    """

    def __init__(self, fetcher_dir: str | os.PathLike = FETCHER_DIR, node: str = "node", base_url: str = "",
                 timeout: float = 30.0, max_in_flight: int = 2, *, startup_seconds: float = 15.0):
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.fetcher_dir = Path(fetcher_dir)
        self.node = node
        self.base_url = base_url.strip()
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.startup_seconds = startup_seconds

    def source_url(self, request: PlayRequest) -> str:
        """The library call that fetches ``request``: the payload's ``source_url``."""
        params = {"collection": request.collection}
        if request.category:
            params["category"] = request.category
        params.update(country=request.country, lang=request.lang, num=request.limit)
        if self.base_url:
            params["base_url"] = self.base_url  # a payload fetched from a stand-in must say so
        return f"{SCRAPER_PACKAGE}@{SCRAPER_VERSION}:list?{urlencode(params)}"

    def command(self, request: PlayRequest) -> list[str]:
        cmd = [self.node, str(self.fetcher_dir / SCRIPT_NAME), "--collection", request.collection,
               "--country", request.country, "--lang", request.lang, "--num", str(request.limit),
               "--timeout-ms", str(max(1, int(self.timeout * 1000)))]
        if request.category:
            cmd += ["--category", request.category]
        return cmd

    def fetch(self, request: PlayRequest) -> FetchResult:
        """Fetch one chart. Never raises for Node, npm, network or format trouble: see ``FetchResult.error``."""
        url = self.source_url(request)
        what = f"Google Play {request.label()} ({url})"

        def failed(message: str, status: int | None = None, content_type: str | None = None) -> FetchResult:
            return FetchResult(request, url, status, None, content_type=content_type, attempts=1,
                               error=f"{what}: {message}")

        problem = self._installation_problem()
        if problem:
            return failed(problem)
        env = dict(os.environ)
        env.pop(BASE_URL_ENV, None)  # only this client's configuration decides where the request goes
        if self.base_url:
            env[BASE_URL_ENV] = self.base_url
        try:
            proc = subprocess.run(self.command(request), cwd=self.fetcher_dir, env=env, capture_output=True,
                                  timeout=self.timeout + self.startup_seconds, check=False)
        except FileNotFoundError:
            return failed(f"Node.js was not found as {self.node!r} (install Node >= 18, or set PlayFeeds.node "
                          "to its path)")
        except PermissionError as exc:
            return failed(f"cannot run {self.node!r}: {exc}")
        except subprocess.TimeoutExpired:
            return failed(f"list.js did not finish within {self.timeout + self.startup_seconds:g}s and was stopped")
        fetched_at = dt.datetime.now(dt.timezone.utc)
        report, log = _result_line(proc.stderr)
        status = report.get("status") if isinstance(report.get("status"), int) else None
        content_type = report.get("content_type") if isinstance(report.get("content_type"), str) else None
        if proc.returncode != 0:
            detail = report.get("error") or (log[-1] if log else f"exit code {proc.returncode}, no message")
            kind = {_USAGE: "list.js refused its arguments",
                    _REQUEST: "the request failed",
                    _FORMAT: "the answer is not the batchexecute format google-play-scraper "
                             f"{SCRAPER_VERSION} reads (Google may have changed the undocumented endpoint; "
                             "see the README, 'Google Play')"}.get(proc.returncode, f"list.js exited with "
                                                                                     f"code {proc.returncode}")
            status_text = f" (HTTP {status})" if status is not None else ""
            return FetchResult(request, url, status, None, content_type=content_type, fetched_at=fetched_at,
                               attempts=1, error=f"{what}: {kind}{status_text}: {detail}")
        content = proc.stdout
        limit = config.max_payload_bytes()
        if len(content) > limit:
            return failed(f"refused: {len(content):,} bytes, over the payload size limit of {limit:,} "
                          f"({config.MAX_PAYLOAD_BYTES_ENV})", status, content_type)
        shape = _array_problem(content)
        if shape:
            return failed(f"list.js printed {shape}, not the list() JSON array", status, content_type)
        if status is None or not 200 <= status < 300:
            return failed(f"list.js printed an array but reported no HTTP 2xx answer (status {status!r})",
                          status, content_type)
        return FetchResult(request, url, status, content, content_type=content_type, fetched_at=fetched_at,
                           attempts=1)

    def fetch_many(self, requests: Iterable[PlayRequest]) -> list[FetchResult]:
        """Fetch several charts, ``max_in_flight`` processes at a time; results come back in input order."""
        return fetch_all(self.fetch, requests, max_in_flight=self.max_in_flight, thread_name_prefix="play-feed")

    def _installation_problem(self) -> str | None:
        script = self.fetcher_dir / SCRIPT_NAME
        if not script.is_file():
            return f"the fetch script {script} is missing"
        manifest = self.fetcher_dir / "node_modules" / SCRAPER_PACKAGE / "package.json"
        try:
            installed = json.loads(manifest.read_text(encoding="utf-8")).get("version")
        except FileNotFoundError:
            return f"{SCRAPER_PACKAGE} is not installed in {self.fetcher_dir}: {SETUP_HINT}"
        except (OSError, ValueError) as exc:
            return f"cannot read {manifest} ({exc}): {SETUP_HINT}"
        if installed != SCRAPER_VERSION:
            # Another version may read another layout or write another array: the parser is checked against this one.
            return f"{SCRAPER_PACKAGE} {installed} is installed, chartlake pins {SCRAPER_VERSION}: {SETUP_HINT}"
        return None


def _result_line(stderr: bytes) -> tuple[dict, list[str]]:
    """list.js's ``chartlake-play-result {...}`` line (the last one), and the other stderr lines."""
    report: dict = {}
    log: list[str] = []
    for line in stderr.decode("utf-8", "replace").splitlines():
        if line.startswith(RESULT_MARK + " "):
            try:
                parsed = json.loads(line[len(RESULT_MARK) + 1:])
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                report = parsed
                continue
        if line.strip():
            log.append(line.strip())
    return report, log


def _array_problem(content: bytes) -> str | None:
    """Why ``content`` is not a non-empty JSON array of objects (the script's contract), or None."""
    if not content.strip():
        return "nothing"
    try:
        doc = json.loads(content)
    except ValueError as exc:
        return f"{len(content):,} bytes that are not JSON ({exc})"
    if not isinstance(doc, list):
        return f"a JSON {type(doc).__name__}"
    if not doc:
        # An empty chart is no chart: the usual sign that Play answered in a layout the library no longer reads.
        return "an empty array (no app at all: Google may have changed the endpoint)"
    bad = next((i for i, item in enumerate(doc) if not isinstance(item, dict)), None)
    if bad is not None:
        return f"an array whose element [{bad}] is a {type(doc[bad]).__name__}"
    return None
