"""Resources shared by every stage: where the home is, how to reach Apple's feeds, and the run's tunables.

Every setting is a resource field, so a deployment sets it in the Definitions (or the launchpad) and the UI shows
it. A field left unset falls back to its environment variable, read through ``dg.EnvVar`` when a run uses the
resource (never at import), then to the default that the CLI and dbt's profile use too.
"""

from __future__ import annotations

import dataclasses

import dagster as dg
from pydantic import Field

from orchestration.config import Home
from orchestration.lib import lake
from orchestration.lib.payload_store import PayloadStore, store_for

DEFAULT_COUNTRIES = "us,fr,gb,de,jp,cn,ca,br,in,kr,it,es"
DEFAULT_CHARTS = "iphone:top-free,iphone:top-paid,iphone:top-grossing,ipad:top-free,ipad:top-paid,ipad:top-grossing"


def _from_env(name: str, default: str) -> str:
    return (dg.EnvVar(name).get_value() or "").strip() or default


class ChartlakeHome(dg.ConfigurableResource):
    """The chartlake home (CHARTLAKE_HOME, default ``data/``), resolved when a run uses it, not at import, and how
    much memory its DuckDB sessions may take (dbt's too: the dbt asset hands the same bound to dbt's lake plugin)."""

    path: str = ""
    duckdb_memory_limit: str = Field(
        default="", description=f"DuckDB's memory bound for the run's lake sessions and dbt (e.g. 2GB, 512MB); "
        f"empty: {lake.MEMORY_LIMIT_ENV}, else {lake.DEFAULT_MEMORY_LIMIT}.")

    def memory_limit(self) -> str:
        return self.duckdb_memory_limit.strip() or _from_env(lake.MEMORY_LIMIT_ENV, lake.DEFAULT_MEMORY_LIMIT)

    def home(self) -> Home:
        home = Home.resolve(self.path or None).ensure()
        # Unset: lake sessions resolve the variable themselves, and a bad value is reported under its name.
        return dataclasses.replace(home, duckdb_memory_limit=self.duckdb_memory_limit.strip() or None)

    def store(self) -> PayloadStore:
        return store_for(self.home())  # CHARTLAKE_RAW_STORE_URL, default <home>/raw


class AppleFeeds(dg.ConfigurableResource):
    """Which storefronts and charts the daily fetch asks Apple for, and where the feeds are."""

    countries: str = DEFAULT_COUNTRIES
    charts: str = DEFAULT_CHARTS  # device:chart pairs
    depth: int = 100
    v2_base_url: str = "https://rss.applemarketingtools.com"
    legacy_base_url: str = "https://itunes.apple.com"
    timeout_seconds: float = 10.0
    max_in_flight: int = 4

    def country_list(self) -> list[str]:
        return [c.strip().lower() for c in self.countries.split(",") if c.strip()]

    def requests(self, countries: list[str] | None = None):
        from orchestration.sources.feeds import FeedRequest

        out = []
        for country in countries or self.country_list():
            for pair in self.charts.split(","):
                device, _, chart = pair.strip().partition(":")
                out.append(FeedRequest(country=country, chart=chart, device=device, limit=self._limit(device, chart)))
        return out

    def _limit(self, device: str, chart: str) -> int:
        # Apple's v2 feed serves at most 100 (iPhone top free/paid); the legacy feed up to 200.
        if device == "iphone" and chart in ("top-free", "top-paid"):
            return min(self.depth, 100)
        return min(self.depth, 200)

    def client(self):
        from orchestration.sources.feeds import AppleFeedClient

        return AppleFeedClient(v2_base_url=self.v2_base_url, legacy_base_url=self.legacy_base_url,
                               timeout=self.timeout_seconds, max_in_flight=self.max_in_flight)


FRESHNESS_HOURS_ENV = "CHARTLAKE_FRESHNESS_HOURS"
DEFAULT_FRESHNESS_HOURS = 36.0
FRESHNESS_STORES_ENV = "CHARTLAKE_FRESHNESS_STORES"
# Apple only: Play's fetch is off by default (its schedule starts stopped), and a store nobody fetches is not stale.
DEFAULT_FRESHNESS_STORES = "apple"


class ServingFreshness(dg.ConfigurableResource):
    """How old the newest published chart date of a storefront may be before serving_freshness fails."""

    max_age_hours: float | None = Field(
        default=None, description=f"Hours, counted from the chart day's start (UTC); unset: {FRESHNESS_HOURS_ENV}, "
        f"else {DEFAULT_FRESHNESS_HOURS:g}.")

    stores: str | None = Field(
        default=None, description=f"Comma-separated stores whose storefronts are judged (apple, google_play), each "
        f"at its own feed resource's countries; unset: {FRESHNESS_STORES_ENV}, else {DEFAULT_FRESHNESS_STORES!r}.")

    def store_list(self) -> list[str]:
        from orchestration.sources.canonical import STORES

        if self.stores is not None:
            source, raw = "ServingFreshness.stores", self.stores
        else:
            source, raw = FRESHNESS_STORES_ENV, _from_env(FRESHNESS_STORES_ENV, DEFAULT_FRESHNESS_STORES)
        stores = list(dict.fromkeys(s.strip().lower() for s in raw.split(",") if s.strip()))
        unknown = [s for s in stores if s not in STORES]
        if unknown or not stores:
            raise ValueError(f"{source}={raw!r}: expected a comma-separated list of {', '.join(STORES)}")
        return stores

    def hours(self) -> float:
        if self.max_age_hours is not None:
            source, raw = "ServingFreshness.max_age_hours", str(self.max_age_hours)
        else:
            source, raw = FRESHNESS_HOURS_ENV, _from_env(FRESHNESS_HOURS_ENV, str(DEFAULT_FRESHNESS_HOURS))
        try:
            hours = float(raw)
        except ValueError:
            raise ValueError(f"{source}={raw!r} is not a number of hours") from None
        if hours <= 0:
            raise ValueError(f"{source}={raw!r} must be a positive number of hours")
        return hours


# Google Play is not sold in mainland China, so cn is not among Play's storefronts.
DEFAULT_PLAY_COUNTRIES = "us,fr,gb,de,jp,ca,br,in,kr,it,es"
DEFAULT_PLAY_CHARTS = "top-free,top-paid,top-grossing"


class PlayFeeds(dg.ConfigurableResource):
    """Which Google Play storefronts and charts the Play fetch asks for, through the Node ``google-play-scraper``
    (``fetchers/google-play``, installed by ``make play-setup``). Plain string and number fields, so any of them
    can be an ``EnvVar`` (e.g. ``PlayFeeds(countries=dg.EnvVar("CHARTLAKE_PLAY_COUNTRIES"))``)."""

    countries: str = DEFAULT_PLAY_COUNTRIES
    charts: str = DEFAULT_PLAY_CHARTS  # charts (top-free, top-paid, top-grossing); "android:top-free" works too
    depth: int = 100  # list() reads at most 200
    lang: str = "en"  # the language Play names the apps in
    node: str = "node"  # the Node.js executable (a path when it is not on PATH)
    fetcher_dir: str = ""  # the folder holding list.js and its node_modules; empty: fetchers/google-play
    base_url: str = ""  # where the library's request goes instead of https://play.google.com (tests, a proxy)
    timeout_seconds: float = 30.0
    max_in_flight: int = 2

    def country_list(self) -> list[str]:
        return [c.strip().lower() for c in self.countries.split(",") if c.strip()]

    def chart_list(self) -> list[str]:
        out = []
        for item in self.charts.split(","):
            device, sep, chart = item.strip().rpartition(":")
            if sep and device != "android":
                raise ValueError(f"PlayFeeds.charts: {item.strip()!r}: Google Play charts are android charts")
            if chart:
                out.append(chart)
        return out

    def requests(self, countries: list[str] | None = None):
        from orchestration.sources.play import MAX_DEPTH, PlayRequest

        return [PlayRequest(country=country, chart=chart, limit=min(self.depth, MAX_DEPTH), lang=self.lang)
                for country in countries or self.country_list() for chart in self.chart_list()]

    def client(self):
        from orchestration.sources.play_feed import FETCHER_DIR, PlayFeedClient

        return PlayFeedClient(fetcher_dir=self.fetcher_dir or FETCHER_DIR, node=self.node, base_url=self.base_url,
                              timeout=self.timeout_seconds, max_in_flight=self.max_in_flight)
