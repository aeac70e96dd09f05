"""Resources shared by every stage: where the home is, and how to reach Apple's feeds."""

from __future__ import annotations

import dagster as dg

from orchestration.config import Home
from orchestration.lib.payload_store import PayloadStore

DEFAULT_COUNTRIES = "us,fr,gb,de,jp,cn,ca,br,in,kr,it,es"
DEFAULT_CHARTS = "iphone:top-free,iphone:top-paid,iphone:top-grossing,ipad:top-free,ipad:top-paid,ipad:top-grossing"


class ChartlakeHome(dg.ConfigurableResource):
    """The chartlake home (CHARTLAKE_HOME, default ``data/``), resolved when a run uses it, not at import."""

    path: str = ""

    def home(self) -> Home:
        return Home.resolve(self.path or None).ensure()

    def store(self) -> PayloadStore:
        return PayloadStore(self.home().raw)


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
