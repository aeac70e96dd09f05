"""Charts as the JSON documents Apple serves them: iPhone top-free/top-paid as RSS v2 JSON (``feed.results[]``,
at most 100 entries), top-grossing and every iPad chart as the legacy iTunes RSS JSON (``feed.entry[]``), prices
in each storefront's currency. Each payload carries one extra top-level key, ``"chartlake": {"simulated": true,
...}``, so nothing generated here can pass for real data downstream.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import urllib.parse
from decimal import ROUND_CEILING, Decimal

from orchestration.demo.catalogue import CURRENCY, EXTRA_STOREFRONTS, GENRE_TAGLINE, GENRES, DemoApp
from orchestration.demo.ranking import DEFAULT_SEED, rank_chart

GENERATOR = "chartlake demo"

V2_MAX_ENTRIES = 100  # Apple's v2 feed answers HTTP 500 above 100
LEGACY_MAX_ENTRIES = 200

# Fixed publication times make the payload bytes deterministic. Both map to the same calendar date in UTC,
# US Pacific and East Asia, so the chart date read from ``feed.updated`` never depends on the reader's zone.
_V2_UPDATED_TIME = "10:00:00 +0000"
_LEGACY_UPDATED_TIME = "T02:00:00-07:00"  # the legacy feed reports -07:00 all year round

_LEGACY_COLLECTION = {
    ("iphone", "top-free"): ("topfreeapplications", "Top Free Applications", 27),
    ("iphone", "top-paid"): ("toppaidapplications", "Top Paid Applications", 30),
    ("iphone", "top-grossing"): ("topgrossingapplications", "Top Grossing Applications", 38),
    ("ipad", "top-free"): ("topfreeipadapplications", "Top Free iPad Applications", 44),
    ("ipad", "top-paid"): ("toppaidipadapplications", "Top Paid iPad Applications", 47),
    ("ipad", "top-grossing"): ("topgrossingipadapplications", "Top Grossing iPad Applications", 46),
}
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def is_v2(device: str, chart: str) -> bool:
    """Whether Apple serves this chart through the RSS v2 feed (iPhone top free/paid) or only the legacy one."""
    return device == "iphone" and chart in ("top-free", "top-paid")


def feed_url(country: str, device: str, chart: str, depth: int = 100) -> str:
    """The URL Apple serves this chart at (what the payload's ``feed.id`` says)."""
    if is_v2(device, chart):
        n = min(depth, V2_MAX_ENTRIES)
        return f"https://rss.applemarketingtools.com/api/v2/{country}/apps/{chart}/{n}/apps.json"
    collection = _LEGACY_COLLECTION[(device, chart)][0]
    return f"https://itunes.apple.com/{country}/rss/{collection}/limit={min(depth, LEGACY_MAX_ENTRIES)}/json"


def _slug(name: str) -> str:
    s = re.sub(r"[\W_]+", "-", name.lower()).strip("-") or "app"
    return urllib.parse.quote(s, safe="-")


def _local_price(usd: Decimal, country: str) -> tuple[Decimal, str]:
    cur = CURRENCY[country]
    one = Decimal(1)
    if usd == 0:
        return Decimal(0), cur
    if cur in ("USD", "EUR", "GBP"):
        return usd, cur
    if cur == "CAD":
        return (usd * Decimal("1.4")).to_integral_value(ROUND_CEILING) - Decimal("0.01"), cur
    if cur == "BRL":
        return (usd * Decimal("5.9")).to_integral_value(ROUND_CEILING) - Decimal("0.10"), cur
    if cur == "CNY":
        return (usd * 6).to_integral_value(ROUND_CEILING), cur
    if cur == "JPY":
        return (usd * 16).to_integral_value(ROUND_CEILING) * 10, cur
    if cur == "INR":
        return (usd * 100).to_integral_value(ROUND_CEILING) - one, cur
    if country in EXTRA_STOREFRONTS:
        factor = Decimal(EXTRA_STOREFRONTS[country][1])
        if factor < 10:  # x.99 tiers
            return (usd * factor).to_integral_value(ROUND_CEILING) - Decimal("0.01"), cur
        step = Decimal(100) if factor >= 1000 else one  # whole units, or hundreds for small units
        return (usd * factor / step).to_integral_value(ROUND_CEILING) * step, cur
    return (usd * 11).to_integral_value(ROUND_CEILING) * 100, cur  # KRW


def _price_label(amount: Decimal, currency: str) -> str:
    if amount == 0:
        return "Get"
    whole = f"{amount:,.0f}"
    cents = f"{amount:.2f}"
    return {
        "USD": f"${cents}", "CAD": f"${cents}", "GBP": f"£{cents}", "EUR": f"{cents.replace('.', ',')} €",
        "BRL": f"R$ {cents.replace('.', ',')}", "CNY": f"¥{cents}", "JPY": f"¥{whole}", "INR": f"₹{whole}",
        "KRW": f"₩{whole}",
    }.get(currency) or (f"{currency} {cents}" if amount != amount.to_integral_value() else f"{currency} {whole}")


def _artwork(app_id: str, size: int) -> str:
    h = hashlib.sha256(app_id.encode()).hexdigest()
    return (f"https://is{int(h[0], 16) % 5 + 1}-ssl.mzstatic.com/image/thumb/Purple221/v4/"
            f"{h[1:3]}/{h[3:5]}/{h[5:7]}/AppIcon.png/{size}x{size}bb.png")


def _app_url(app: DemoApp, name: str, country: str) -> str:
    return f"https://apps.apple.com/{country}/app/{_slug(name)}/id{app.app_id}"


def _v2_result(app: DemoApp, country: str, day: dt.date) -> dict:
    name = app.name_on(country, day)
    return {
        "artistName": app.developer,
        "id": app.app_id,
        "name": name,
        "releaseDate": app.release_date.isoformat(),
        "kind": "apps",
        "artworkUrl100": _artwork(app.app_id, 100),
        "genres": [{"genreId": str(app.genre_id), "name": GENRES[app.genre_id],
                    "url": f"https://itunes.apple.com/{country}/genre/id{app.genre_id}"}],
        "url": _app_url(app, name, country),
    }


def _legacy_entry(app: DemoApp, country: str, day: dt.date) -> dict:
    name = app.name_on(country, day)
    amount, currency = _local_price(app.price_usd, country)
    url = _app_url(app, name, country) + "?uo=2"
    genre = GENRES[app.genre_id]
    rd = app.release_date
    return {
        "im:name": {"label": name},
        "im:image": [{"label": _artwork(app.app_id, s), "attributes": {"height": str(s)}} for s in (53, 75, 100)],
        "summary": {"label": GENRE_TAGLINE[app.genre_id]},
        "im:price": {"label": _price_label(amount, currency),
                     "attributes": {"amount": f"{amount:.5f}", "currency": currency}},
        "im:contentType": {"attributes": {"term": "Application", "label": "Application"}},
        "rights": {"label": f"© {rd.year} {app.developer}"},
        "title": {"label": f"{name} - {app.developer}"},
        "link": {"attributes": {"rel": "alternate", "type": "text/html", "href": url}},
        "id": {"label": url, "attributes": {"im:id": app.app_id,
                                            "im:bundleId": app.bundle_id or f"demo.chartlake.{app.app_id}"}},
        "im:artist": {"label": app.developer, "attributes": {
            "href": f"https://apps.apple.com/{country}/developer/{_slug(app.developer)}/id{app.developer_id}?uo=2"}},
        "category": {"attributes": {
            "im:id": str(app.genre_id), "term": genre,
            "scheme": f"https://apps.apple.com/{country}/genre/ios-{_slug(genre)}/id{app.genre_id}?uo=2",
            "label": genre}},
        "im:releaseDate": {"label": f"{rd.isoformat()}T00:00:00-07:00",
                           "attributes": {"label": f"{_MONTHS[rd.month - 1]} {rd.day}, {rd.year}"}},
    }


def build_payload(country: str, device: str, chart: str, day: dt.date, depth: int = 100, *,
                  seed: int = DEFAULT_SEED) -> dict:
    """One chart as the JSON document Apple would serve, plus the ``chartlake`` simulated marker."""
    url = feed_url(country, device, chart, depth)
    marker = {"simulated": True, "generator": GENERATOR, "seed": seed}
    if is_v2(device, chart):
        apps = rank_chart(country, device, chart, day, min(depth, V2_MAX_ENTRIES), seed=seed)
        feed = {
            "title": "Top Free Apps" if chart == "top-free" else "Top Paid Apps",
            "id": url,
            "author": {"name": "Apple", "url": "https://www.apple.com/"},
            "links": [{"self": url}],
            "copyright": f"Copyright © {day.year} Apple Inc. All rights reserved.",
            "country": country,
            "icon": "https://www.apple.com/favicon.ico",
            "updated": f"{_WEEKDAYS[day.weekday()]}, {day.day:02d} {_MONTHS[day.month - 1][:3]} {day.year} "
                       f"{_V2_UPDATED_TIME}",
            "results": [_v2_result(a, country, day) for a in apps],
        }
        return {"feed": feed, "chartlake": marker}
    apps = rank_chart(country, device, chart, day, min(depth, LEGACY_MAX_ENTRIES), seed=seed)
    _, title, pop_id = _LEGACY_COLLECTION[(device, chart)]
    entries = [_legacy_entry(a, country, day) for a in apps]
    feed = {
        "author": {"name": {"label": "iTunes Store"}, "uri": {"label": "http://www.apple.com/itunes/"}},
        # The legacy feed is XML turned into JSON: a one-entry feed has an object here, not a list.
        "entry": entries[0] if len(entries) == 1 else entries,
        "updated": {"label": f"{day.isoformat()}{_LEGACY_UPDATED_TIME}"},
        "rights": {"label": "Copyright 2008 Apple Inc."},
        "title": {"label": f"iTunes Store: {title}"},
        "icon": {"label": "http://itunes.apple.com/favicon.ico"},
        "link": [
            {"attributes": {"rel": "alternate", "type": "text/html",
                            "href": f"https://apps.apple.com/WebObjects/MZStore.woa/wa/viewTop?cc={country}"
                                    f"&genreId=36&popId={pop_id}"}},
            {"attributes": {"rel": "self", "href": url}},
        ],
        "id": {"label": url},
    }
    return {"feed": feed, "chartlake": marker}


def payload_bytes(country: str, device: str, chart: str, day: dt.date, depth: int = 100, *,
                  seed: int = DEFAULT_SEED) -> bytes:
    """The exact bytes written for one chart: compact UTF-8 JSON, as Apple serves it."""
    doc = build_payload(country, device, chart, day, depth, seed=seed)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
