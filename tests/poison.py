"""Payloads carrying one poisonous value each (issue 17's table), in Apple's and WBGame's real layouts.

Each builder returns the bytes of an otherwise good chart; ``POISON`` maps a case name to (bytes, field, value
text the error must show). The good charts are for ``GOOD_DAY`` so they land beside the bad ones.
"""

from __future__ import annotations

import json

from tests.conftest import v2_payload

GOOD_DAY = "2025-01-14"
APPS = [("741292507", "REDnote"), ("835599320", "TikTok"), ("389801252", "Instagram")]


def legacy(country: str = "us", prices=("0", "0.99000", "4.99000"), *, currency: str = "USD",
           names=None, updated: str = "2025-01-14T02:00:00-07:00") -> bytes:
    """A legacy iTunes RSS top-paid iPhone chart, one entry per price (layout as Apple serves it)."""
    url = f"https://itunes.apple.com/{country}/rss/toppaidapplications/limit=200/json"
    names = names or [f"App {i}" for i in range(len(prices))]
    entries = [{
        "im:name": {"label": name},
        "im:price": {"label": "Get", "attributes": {"amount": amount, "currency": currency}},
        "link": {"attributes": {"rel": "alternate", "href": f"https://apps.apple.com/{country}/app/a/id{1000 + i}"}},
        "id": {"label": f"https://apps.apple.com/{country}/app/a/id{1000 + i}", "attributes": {"im:id": str(1000 + i)}},
        "im:artist": {"label": f"Dev {i}", "attributes": {"href": f"https://apps.apple.com/developer/d/id{500 + i}"}},
        "category": {"attributes": {"im:id": "6014", "label": "Games"}},
        "im:releaseDate": {"label": "2019-03-01T00:00:00-07:00"},
    } for i, (amount, name) in enumerate(zip(prices, names))]
    return json.dumps({"feed": {"id": {"label": url}, "updated": {"label": updated},
                                "link": [{"attributes": {"rel": "self", "href": url}}], "entry": entries}},
                      ensure_ascii=False).encode()


def archive(country: str = "fr", ranks=(1, 2, 3), *, day: str = GOOD_DAY) -> bytes:
    """A WBGame archive chart: the layout with explicit ranks, written as given (numbers or strings)."""
    items = [{"date": day, "rank": r, "id": a, "name": n, "artistName": f"Dev {n}", "kind": "apps",
              "releaseDate": "2020-01-01", "url": f"https://apps.apple.com/{country}/app/x/id{a}"}
             for r, (a, n) in zip(ranks, APPS)]
    return json.dumps({"date": day, "country": country, "mediaType": "apps", "feedType": "top-free",
                       "genre": None, "source": "archive", "total": len(items), "items": items}).encode()


def v2(country: str = "gb", *, day: str = GOOD_DAY, names=None) -> bytes:
    apps = [(a, n) for (a, _), n in zip(APPS, names)] if names else APPS
    return v2_payload(country, "top-free", apps, updated=f"{day}T12:00:00Z")


# case -> (payload, field named in the error, value as the error shows it)
POISON: dict[str, tuple[bytes, str, str]] = {
    "price-nan": (legacy("us", ("0", "NaN")), "price", "Decimal('NaN')"),
    "price-infinity": (legacy("ca", ("Infinity",)), "price", "Decimal('Infinity')"),
    "price-1e400": (legacy("de", ("0", "0", "1e400")), "price", "Decimal('1E+400')"),
    "price-over-decimal-10-2": (legacy("it", ("123456789012.99",)), "price", "Decimal('123456789012.99')"),
    "rank-3000000000": (archive("fr", (1, 2, 3000000000)), "rank", "3000000000"),
    "rank-20-digits": (archive("es", (1, "99999999999999999999", 3)), "rank", "99999999999999999999"),
    "date-1970": (v2("us", day="1970-01-01"), "chart_date", "'1970-01-01'"),
    "date-2999": (v2("fr", day="2999-01-01"), "chart_date", "'2999-01-01'"),
    "date-9999": (v2("gb", day="9999-12-31"), "chart_date", "'9999-12-31'"),
    "country-zz": (v2("zz"), "country", "'zz'"),
    "terminal-escape": (v2("jp", names=["REDnote", "\x1b[2J\x1b[HTikTok", "Instagram"]), "app_name",
                        "'\\x1b[2J\\x1b[HTikTok'"),
}
# Refused by the parser itself (the value is not a number at all), named likewise.
SUPERSCRIPT_RANK = archive("nl", (1, "²", 3))

# case -> the reason the error gives (after the field and value)
REASONS: dict[str, str] = {
    "price-nan": "not a finite number",
    "price-infinity": "not a finite number",
    "price-1e400": "expected 0 to 99999999.99 (DECIMAL(10,2))",
    "price-over-decimal-10-2": "expected 0 to 99999999.99 (DECIMAL(10,2))",
    "rank-3000000000": "expected a whole number from 1 to 200",
    "rank-20-digits": "expected a whole number from 1 to 200",
    "date-1970": "outside the daily partitions",
    "date-2999": "outside the daily partitions",
    "date-9999": "outside the daily partitions",
    "country-zz": "not a known storefront",
    "terminal-escape": "holds the control character U+001B",
}
assert REASONS.keys() == POISON.keys()
