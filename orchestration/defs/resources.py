"""Resources shared by every stage: where the home is, and how to reach Apple's feeds."""

from __future__ import annotations

import dagster as dg

from orchestration.config import Home
from orchestration.lib.payload_store import PayloadStore, store_for

DEFAULT_COUNTRIES = "us,fr,gb,de,jp,cn,ca,br,in,kr,it,es"
DEFAULT_CHARTS = "iphone:top-free,iphone:top-paid,iphone:top-grossing,ipad:top-free,ipad:top-paid,ipad:top-grossing"


class ChartlakeHome(dg.ConfigurableResource):
    """The chartlake home (CHARTLAKE_HOME, default ``data/``), resolved when a run uses it, not at import."""

    path: str = ""

    def home(self) -> Home:
        return Home.resolve(self.path or None).ensure()

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
