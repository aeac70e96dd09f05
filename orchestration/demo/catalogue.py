"""The demo's storefronts and its real, well-known apps, read from ``data/storefronts.json`` and
``data/catalogue.json``.

Real apps keep their real App Store ids and names (checked against public App Store links); only their ranks are
simulated. Storefront availability follows early 2025: Western services are not listed in China; WhatsApp,
Instagram and Threads had no iPad app yet. RedNote sits in China's charts every day and elsewhere far outside
them until the scripted surge (``story.py``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Mapping

from orchestration.demo._data import load
from orchestration.demo.story import NAME_CHANGES

REDNOTE_ID = "741292507"
TIKTOK_ID = "835599320"
LEMON8_ID = "1498607143"
CAPCUT_ID = "1500855883"

_STOREFRONTS = load("storefronts.json")
# ISO 4217 currency of each storefront.
CURRENCY: dict[str, str] = {s["country"]: s["currency"] for s in _STOREFRONTS}
# The twelve demo storefronts (their prices convert by the rules in payloads.py) come first in the file.
DEFAULT_COUNTRIES: tuple[str, ...] = tuple(s["country"] for s in _STOREFRONTS if "place" not in s)
# More storefronts, for benchmarks at scale (50 countries need 50 codes): currency, approximate units per US
# dollar (early 2025) and the storefront's name, used for its invented local apps. They come after the twelve,
# so the catalogue and every payload of those twelve stay byte for byte what they were.
EXTRA_STOREFRONTS: dict[str, tuple[str, str, str]] = {
    s["country"]: (s["currency"], s["usd_factor"], s["place"]) for s in _STOREFRONTS if "place" in s}
# The twelve demo storefronts and the extra ones: the 50 a benchmark at scale uses.
ALL_COUNTRIES: tuple[str, ...] = DEFAULT_COUNTRIES + tuple(EXTRA_STOREFRONTS)

_CATALOGUE = load("catalogue.json")
GENRES: dict[int, str] = {int(k): name for k, (name, _) in _CATALOGUE["genres"].items()}
GENRE_TAGLINE: dict[int, str] = {int(k): tagline for k, (_, tagline) in _CATALOGUE["genres"].items()}


@dataclass(frozen=True, eq=False)
class DemoApp:
    """One app of the simulated store. Typical ranks say where it sits on an ordinary day.

    ``free``/``paid``/``grossing`` map a country (or ``"*"`` for any other) to the app's typical rank in that
    chart; an app absent from a mapping never enters that chart. Lower is more popular.
    """

    app_id: str
    name: str
    developer: str
    genre_id: int
    release_date: dt.date
    price_usd: Decimal = Decimal("0")
    free: Mapping[str, float] = field(default_factory=dict)
    paid: Mapping[str, float] = field(default_factory=dict)
    grossing: Mapping[str, float] = field(default_factory=dict)
    devices: tuple[str, ...] = ("iphone", "ipad")
    only: tuple[str, ...] | None = None  # storefronts where listed; None = everywhere not blocked
    blocked: tuple[str, ...] = ()
    bundle_id: str = ""
    developer_id: str = ""
    invented: bool = False
    launch_boost: bool = False  # new in the window: a decaying boost after release

    def listed_in(self, country: str) -> bool:
        if country in self.blocked:
            return False
        return self.only is None or country in self.only

    def typical(self, chart: str, country: str) -> float | None:
        table = {"top-free": self.free, "top-paid": self.paid, "top-grossing": self.grossing}[chart]
        return table.get(country, table.get("*"))

    def name_on(self, country: str, day: dt.date) -> str:
        name = self.name
        for change in NAME_CHANGES:
            if change.app_id == self.app_id and day >= change.effective and country not in change.except_countries:
                name = change.new_name
        return name


def _known(row: dict) -> DemoApp:
    """A catalogue row; absent fields take the defaults of a real app: free, on iPhone and iPad, not in China."""
    only = row.get("only")
    return DemoApp(app_id=row["app_id"], name=row["name"], developer=row["developer"], genre_id=row["genre_id"],
                   release_date=dt.date.fromisoformat(row["released"]), price_usd=Decimal(row.get("price_usd", "0")),
                   free=row.get("free", {}), paid=row.get("paid", {}), grossing=row.get("grossing", {}),
                   devices=tuple(row.get("devices", ("iphone", "ipad"))), only=None if only is None else tuple(only),
                   blocked=tuple(row.get("blocked", ("cn",))), bundle_id=row.get("bundle_id", ""))


WELL_KNOWN: tuple[DemoApp, ...] = tuple(_known(row) for row in _CATALOGUE["well_known_apps"])
WELL_KNOWN_APPS: dict[str, DemoApp] = {a.app_id: a for a in WELL_KNOWN}
# The heavyweights RedNote overtook in the US in January 2025: the watch list a dbt seed uses (id -> name).
WATCHLIST: dict[str, str] = dict(_CATALOGUE["watchlist"])
# Real Play package names of the well-known apps (the product_apps seed maps them to the same products).
PLAY_PACKAGES: dict[str, str] = dict(_CATALOGUE["play_packages"])
