"""Where data enters: every field of every canonical row checked against its type and range, once, at staging.

``validate_charts`` runs on what any parser returns (``ingest`` calls it on every payload it stages), so a value
that would fail later (a cast in landing, a partition Dagster does not know, dbt's relationship to
``dim_countries``) is refused here instead, naming the file, payload hash, field and value. Landing casts
exactly what passed: ranks to INTEGER, prices to DECIMAL(10,2), dates to DATE, text as given.

The rules, per field:

- ``store``, ``device``, ``chart``: one of ``canonical``'s values. ``country``: a storefront in
  ``dbt_project/seeds/dim_countries.csv`` (the marts' relationships test refuses any other).
- ``chart_date``: a date from ``config.PARTITIONS_START`` through ``config.last_chart_date()`` (tomorrow, UTC),
  exactly the daily partitions. ``release_date``: a date from 1990 to a year after the chart date (pre-orders).
- ``genre_id``: null or a positive INTEGER. ``rank``: an integer from 1 to the store's deepest chart.
- ``app_id``, ``developer_id``: per store (``STORE_RULES``): Apple's are digits; Google Play's app id is a package
  name.
- ``price``: null or a finite number from 0 to 99,999,999.99 with at most two decimals (DECIMAL(10,2) holds it
  exactly). ``currency``: null or an ISO 4217 code.
- text (``app_name``, ``developer_name``, ``genre_name``, ``url``, the ids): a string that is valid Unicode
  (encodable as UTF-8: no lone surrogates), without control characters (C0, DEL, C1: a terminal escape such as
  ESC[2J, a NUL), of bounded length. Everything else, emoji, right-to-left text, ideographic spaces, quotes, is kept
  verbatim. ``url``: http(s) with a host.

No Dagster imports. A store's parsers add their store to ``canonical.STORES`` and its id rules to ``STORE_RULES``.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable

from orchestration import config
from orchestration.sources.canonical import CHARTS, ENTRY_FIELDS, STORE_DEVICES, STORES, ChartKey, ParsedChart, PayloadError

INT32_MAX = 2**31 - 1
PRICE_MAX = Decimal("99999999.99")  # DECIMAL(10,2)
_CENT = Decimal("0.01")
RELEASE_DATE_MIN = dt.date(1990, 1, 1)
RELEASE_DATE_AHEAD = dt.timedelta(days=366)
MAX_NAME_CHARS = 1000
MAX_URL_CHARS = 2048
COUNTRIES_SEED = config.DBT_PROJECT_DIR / "seeds" / "dim_countries.csv"

# C0 controls, DEL and C1 controls (Unicode category Cc). Format characters (Cf: RTL marks, zero-width joiners
# inside emoji) and spaces such as U+3000 are text, and stay.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# http(s), a host, then anything without spaces (a regex: urlsplit cost more than the rest of the row's checks).
_URL = re.compile(r"https?://[^\s/?#]+(?:[/?#]\S*)?")
_ENTRY_FIELDS = frozenset(ENTRY_FIELDS)


@dataclass(frozen=True)
class StoreRule:
    """What a store's ids look like and how deep its charts go."""

    app_id: re.Pattern
    app_id_says: str
    developer_id: re.Pattern | None  # None: any text passing the text rule
    developer_id_says: str
    max_depth: int


STORE_RULES: dict[str, StoreRule] = {
    # Apple ids are positive integers written without leading zeros; the legacy feed serves at most 200 positions.
    "apple": StoreRule(re.compile(r"[1-9][0-9]{0,14}"), "digits without a leading zero",
                       re.compile(r"[1-9][0-9]{0,14}"), "digits without a leading zero", 200),
    # Android package names: two or more dot-separated segments, each a letter then letters, digits or '_'.
    # google-play-scraper's developerId is either digits or the developer's URL-encoded name ("WhatsApp+Inc.").
    "google_play": StoreRule(re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)+"),
                             "an Android package name such as com.xingin.xhs", None, "", 200),
}

# Active ISO 4217 codes plus those withdrawn since the App Store opened (2008), which older archives may carry.
ISO_4217 = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BYR BZD CAD CDF
CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EEK EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD
GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR
LRD LSL LTL LVL LYD MAD MDL MGA MKD MMK MNT MOP MRO MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STD STN SVC SYP SZL THB
TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VEF VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR
ZMK ZMW ZWG ZWL
""".split())


class InvalidValue(PayloadError):
    """A field whose value is outside its type or range. ``field``, ``value`` and ``reason`` say which and why."""

    def __init__(self, field: str, value: Any, reason: str, *, where: str, source: str | None,
                 sha256: str | None, key: ChartKey | None = None):
        self.field, self.value, self.why, self.key = field, value, reason, key
        super().__init__(f"invalid {field} {_show(value)} {where}: {reason} (field={field})",
                         source=source, sha256=sha256)


@dataclass(frozen=True)
class Limits:
    """The ranges that depend on configuration and the clock, fixed once per batch."""

    first_date: dt.date
    last_date: dt.date
    countries: frozenset[str]

    @classmethod
    def now(cls, today: dt.date | None = None) -> "Limits":
        return cls(config.PARTITIONS_START, config.last_chart_date(today), known_countries())


@functools.lru_cache(maxsize=4)
def _countries_from(path: Path, mtime_ns: int) -> frozenset[str]:
    import csv

    with path.open(newline="", encoding="utf-8") as f:
        return frozenset(row["code"].strip().lower() for row in csv.DictReader(f) if row.get("code"))


def known_countries(path: Path = COUNTRIES_SEED) -> frozenset[str]:
    """The storefronts chartlake knows (``dim_countries``): the marts refuse any other country."""
    return _countries_from(path, path.stat().st_mtime_ns)


def validate_charts(charts: Iterable[ParsedChart], *, source: str | None, sha256: str | None,
                    limits: Limits | None = None) -> list[ParsedChart]:
    """``charts`` unchanged if every field of every row is in range; else ``InvalidValue`` for the first that is not."""
    limits = limits or Limits.now()
    charts = list(charts)
    for chart in charts:
        _check_chart(chart, limits, source, sha256)
    return charts


def _check_chart(chart: ParsedChart, limits: Limits, source, sha256) -> None:
    key = chart.key
    where = f"in {key.label()}" if isinstance(key.chart_date, dt.date) else "in this chart"

    def bad(field: str, value, reason: str, at: str = where):
        raise InvalidValue(field, value, reason, where=at, source=source, sha256=sha256, key=key)

    if key.store not in STORES or key.store not in STORE_RULES:
        bad("store", key.store, f"not a known store (expected one of {sorted(set(STORES) & set(STORE_RULES))})")
    rule = STORE_RULES[key.store]
    if key.device not in STORE_DEVICES[key.store]:
        bad("device", key.device, f"expected one of {list(STORE_DEVICES[key.store])} for store {key.store}")
    if key.chart not in CHARTS:
        bad("chart", key.chart, f"expected one of {list(CHARTS)}")
    if not isinstance(key.country, str) or key.country not in limits.countries:
        bad("country", key.country, f"not a known storefront (the {len(limits.countries)} of "
                                    f"{COUNTRIES_SEED.name}; ISO 3166-1 alpha-2, lower case)")
    if key.genre_id is not None and (not _is_int(key.genre_id) or not 1 <= key.genre_id <= INT32_MAX):
        bad("genre_id", key.genre_id, f"expected null or a whole number from 1 to {INT32_MAX}")
    chart_date = key.chart_date
    if not isinstance(chart_date, dt.date) or isinstance(chart_date, dt.datetime):
        bad("chart_date", chart_date, "not a calendar date")
    if not limits.first_date <= chart_date <= limits.last_date:
        bad("chart_date", chart_date.isoformat(),
            f"outside the daily partitions {limits.first_date.isoformat()}..{limits.last_date.isoformat()} "
            f"(config.PARTITIONS_START through tomorrow, UTC)")
    if len(chart.entries) > rule.max_depth:
        bad("rank", len(chart.entries), f"{len(chart.entries)} entries, deeper than a {key.store} chart goes "
                                        f"({rule.max_depth})")
    latest_release = chart_date + RELEASE_DATE_AHEAD
    for i, e in enumerate(chart.entries):
        if not isinstance(e, dict) or not _ENTRY_FIELDS.issubset(e):
            bad("entry", i, f"entry {i} does not hold the canonical fields {list(ENTRY_FIELDS)}")
        rank = e["rank"]
        if not _is_int(rank) or not 1 <= rank <= rule.max_depth:
            bad("rank", rank, f"expected a whole number from 1 to {rule.max_depth} (the deepest {key.store} chart)",
                f"at position {i + 1} {where}")
        at = f"at rank {rank} {where}"
        app_id = e["app_id"]
        if not isinstance(app_id, str) or not rule.app_id.fullmatch(app_id):
            bad("app_id", app_id, f"a {key.store} app id is {rule.app_id_says}", at)
        dev_id = e["developer_id"]
        if dev_id is not None:
            if rule.developer_id is not None:
                if not isinstance(dev_id, str) or not rule.developer_id.fullmatch(dev_id):
                    bad("developer_id", dev_id, f"a {key.store} developer id is {rule.developer_id_says}", at)
            else:
                _check_text("developer_id", dev_id, MAX_NAME_CHARS, bad, at)
        name = e["app_name"]
        if name is None:
            bad("app_name", name, "every entry needs a name", at)
        for f in ("app_name", "developer_name", "genre_name"):
            if e[f] is not None:
                _check_text(f, e[f], MAX_NAME_CHARS, bad, at)
        url = e["url"]
        if url is not None:
            _check_text("url", url, MAX_URL_CHARS, bad, at)
            if not _URL.fullmatch(url):
                bad("url", url, "expected an http(s) URL with a host and no spaces", at)
        release = e["release_date"]
        if release is not None:
            if not isinstance(release, dt.date) or isinstance(release, dt.datetime):
                bad("release_date", release, "not a calendar date", at)
            if not RELEASE_DATE_MIN <= release <= latest_release:
                bad("release_date", release.isoformat(),
                    f"expected {RELEASE_DATE_MIN.isoformat()} to a year after the chart date", at)
        if e["price"] is not None:
            _check_price(e["price"], bad, at)
        currency = e["currency"]
        if currency is not None and (not isinstance(currency, str) or currency not in ISO_4217):
            bad("currency", currency, "not an ISO 4217 currency code (upper case, e.g. USD, EUR, JPY)", at)


def _check_text(field: str, value, max_chars: int, bad, at: str) -> None:
    if not isinstance(value, str):
        bad(field, value, f"expected text, got a {type(value).__name__}", at)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            bad(field, value, "not valid Unicode text (a lone surrogate: it has no UTF-8 form)", at)
    m = _CONTROL.search(value)
    if m:
        bad(field, value, f"holds the control character U+{ord(m.group()):04X} at offset {m.start()} (a terminal "
                          f"escape or binary data, not text)", at)
    if len(value) > max_chars:
        bad(field, value, f"{len(value)} characters, over the {max_chars} a {field} may hold", at)


def _check_price(price, bad, at: str) -> None:
    if isinstance(price, bool) or not isinstance(price, (Decimal, int, float, str)):
        bad("price", price, f"expected a number, got a {type(price).__name__}", at)
    if isinstance(price, float) and not math.isfinite(price):
        bad("price", price, "not a finite number", at)
    try:
        value = price if isinstance(price, Decimal) else Decimal(str(price))
    except InvalidOperation:
        bad("price", price, "not a number", at)
    if not value.is_finite():
        bad("price", price, "not a finite number", at)
    if not Decimal(0) <= value <= PRICE_MAX:
        bad("price", price, f"expected 0 to {PRICE_MAX} (DECIMAL(10,2))", at)
    if value != value.quantize(_CENT):
        bad("price", price, "more than two decimals: DECIMAL(10,2) would round it", at)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value) -> str:
    """The value as a short literal: repr() escapes control characters, so the message is safe on a terminal."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
