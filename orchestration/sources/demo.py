"""Deterministic, simulated App Store top charts for demos, tests and docs.

Why it exists: no public archive of the *overall* US/FR charts for January 2025 could be obtained (see
``/work/shared/real_charts/README.md``), yet chartlake's questions are about that month. This module writes
payloads that Apple *could* have served, so the whole pipeline (payload store, parsers, lake, dbt, audit,
serving) runs on them unchanged, and a scripted story modelled on January 2025 gives the marts something to
find: RedNote's multi-country breakout and name change, Lemon8's climb, TikTok leaving and re-entering the
US charts.

Grain of the output: one file per (chart date, country, device, chart), named
``{date}/{country}-{device}-{chart}.json``, holding that chart's top ``depth`` positions in the format Apple
serves it: iPhone top-free/top-paid as RSS v2 JSON (``feed.results[]``, at most 100 entries), top-grossing and
every iPad chart as the legacy iTunes RSS JSON (``feed.entry[]``). Each payload carries one extra top-level key,
``"chartlake": {"simulated": true, ...}``, so nothing generated here can pass for real data downstream.

Everything is a pure function of the arguments: randomness comes from ``random.Random`` instances seeded from a
hash of (seed, country, device, chart[, date]), never from global state or the clock, and a date's charts do
not depend on ``start``/``end`` (generating one day gives the same bytes as that day within a whole month).

Apps: real, well-known apps keep their real App Store ids and names (``WELL_KNOWN_APPS``); every other app is
invented, with an id in 9000000000-9999999999, a range Apple has not reached, so a simulated app can never be
mistaken for (or collide with) a real one. All positions are simulated. No Dagster here.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import math
import random
import re
import urllib.parse
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

from orchestration.sources.canonical import CHARTS, DEVICES

DEFAULT_COUNTRIES = ("us", "fr", "gb", "de", "jp", "cn", "ca", "br", "in", "kr", "it", "es")
DEFAULT_SEED = 20250114
GENERATOR = "chartlake demo"

V2_MAX_ENTRIES = 100  # Apple's v2 feed answers HTTP 500 above 100
LEGACY_MAX_ENTRIES = 200

# Day 0 of the ranking model. Only used as a phase origin, so any date can be generated.
_EPOCH = dt.date(2025, 1, 1)

# Fixed publication times make the payload bytes deterministic. Both map to the same calendar date in UTC,
# US Pacific and East Asia, so the chart date read from ``feed.updated`` never depends on the reader's zone.
_V2_UPDATED_TIME = "10:00:00 +0000"
_LEGACY_UPDATED_TIME = "T02:00:00-07:00"  # the legacy feed reports -07:00 all year round

REDNOTE_ID = "741292507"
TIKTOK_ID = "835599320"
LEMON8_ID = "1498607143"
CAPCUT_ID = "1500855883"

GENRES: dict[int, str] = {
    6000: "Business", 6002: "Utilities", 6003: "Travel", 6004: "Sports", 6005: "Social Networking",
    6006: "Reference", 6007: "Productivity", 6008: "Photo & Video", 6009: "News", 6010: "Navigation",
    6011: "Music", 6012: "Lifestyle", 6013: "Health & Fitness", 6014: "Games", 6015: "Finance",
    6016: "Entertainment", 6017: "Education", 6018: "Books", 6023: "Food & Drink", 6024: "Shopping",
}

# ISO 4217 currency of each storefront, and how a US price tier converts to it (factor, rounding style).
_CURRENCY = {
    "us": "USD", "ca": "CAD", "gb": "GBP", "fr": "EUR", "de": "EUR", "it": "EUR", "es": "EUR",
    "jp": "JPY", "cn": "CNY", "br": "BRL", "in": "INR", "kr": "KRW",
}

# More storefronts, for benchmarks at scale (50 countries need 50 codes): currency, approximate units per US
# dollar (early 2025) and the storefront's name, used for its invented local apps. Appended after the twelve
# demo storefronts, so the catalogue and every payload of those twelve stay byte for byte what they were.
_EXTRA_STOREFRONTS: dict[str, tuple[str, str, str]] = {
    "mx": ("MXN", "20", "Mexico"), "ar": ("USD", "1", "Argentina"), "cl": ("CLP", "950", "Chile"),
    "co": ("COP", "4200", "Colombia"), "pe": ("PEN", "3.8", "Peru"), "ie": ("EUR", "1", "Ireland"),
    "at": ("EUR", "1", "Austria"), "ch": ("CHF", "0.9", "Swiss"), "be": ("EUR", "1", "Belgian"),
    "nl": ("EUR", "1", "Dutch"), "pt": ("EUR", "1", "Lisbon"), "gr": ("EUR", "1", "Athens"),
    "dk": ("DKK", "7", "Danish"), "se": ("SEK", "11", "Swedish"), "no": ("NOK", "11", "Norwegian"),
    "fi": ("EUR", "1", "Finnish"), "pl": ("PLN", "4.1", "Polish"), "cz": ("CZK", "24", "Prague"),
    "hu": ("HUF", "390", "Budapest"), "ro": ("RON", "4.8", "Romanian"), "tr": ("TRY", "35", "Istanbul"),
    "hk": ("HKD", "7.8", "Hong Kong"), "tw": ("TWD", "32", "Taipei"), "id": ("IDR", "16000", "Jakarta"),
    "my": ("MYR", "4.5", "Malaysia"), "sg": ("SGD", "1.35", "Singapore"), "th": ("THB", "35", "Bangkok"),
    "vn": ("VND", "25000", "Saigon"), "ph": ("PHP", "58", "Manila"), "au": ("AUD", "1.6", "Aussie"),
    "nz": ("NZD", "1.75", "Kiwi"), "ae": ("AED", "3.7", "Dubai"), "sa": ("SAR", "3.75", "Riyadh"),
    "il": ("ILS", "3.6", "Tel Aviv"), "eg": ("EGP", "50", "Cairo"), "za": ("ZAR", "18", "Cape"),
    "ng": ("NGN", "1550", "Lagos"), "ke": ("KES", "130", "Nairobi"),
}
_CURRENCY.update({cc: cur for cc, (cur, _, _) in _EXTRA_STOREFRONTS.items()})
# The twelve demo storefronts and the extra ones: the 50 a benchmark at scale uses.
ALL_COUNTRIES = DEFAULT_COUNTRIES + tuple(_EXTRA_STOREFRONTS)


# --------------------------------------------------------------------------------------------------- apps


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


def _known(app_id, name, developer, genre_id, released, *, free=None, paid=None, grossing=None, price="0",
           devices=("iphone", "ipad"), only=None, blocked=("cn",), bundle_id=""):
    return DemoApp(app_id=app_id, name=name, developer=developer, genre_id=genre_id,
                   release_date=dt.date.fromisoformat(released), price_usd=Decimal(price), free=free or {},
                   paid=paid or {}, grossing=grossing or {}, devices=devices, only=only, blocked=blocked,
                   bundle_id=bundle_id)


# Real apps with their real App Store ids (checked against public App Store links); their ranks are simulated.
# Storefront availability follows early 2025: Western services are not listed in China, WhatsApp, Instagram
# and Threads had no iPad app yet.
_WELL_KNOWN: tuple[DemoApp, ...] = (
    _known("1641486558", "Temu: Shop Like a Billionaire", "Temu", 6024, "2022-08-31",
           free={"us": 2, "*": 6}, bundle_id="com.einnovation.temu"),
    _known("6446901002", "Threads", "Instagram, Inc.", 6005, "2023-07-05",
           free={"us": 3, "*": 16}, devices=("iphone",), bundle_id="com.burbn.barcelona"),
    _known("6448311069", "ChatGPT", "OpenAI", 6007, "2023-05-18",
           free={"us": 5, "*": 3}, grossing={"us": 6, "*": 7}, bundle_id="com.openai.chat"),
    _known(TIKTOK_ID, "TikTok", "TikTok Ltd.", 6016, "2014-04-02",
           free={"us": 4, "*": 5}, grossing={"us": 3, "*": 4}, bundle_id="com.zhiliaoapp.musically"),
    _known(CAPCUT_ID, "CapCut - Video Editor", "Bytedance Pte. Ltd", 6008, "2020-04-13",
           free={"us": 7, "*": 10}, grossing={"us": 24, "*": 30}, bundle_id="com.lemon.lvoverseas"),
    _known("389801252", "Instagram", "Instagram, Inc.", 6008, "2010-10-06",
           free={"us": 8, "*": 4}, devices=("iphone",), bundle_id="com.burbn.instagram"),
    _known("310633997", "WhatsApp Messenger", "WhatsApp Inc.", 6005, "2009-05-03",
           free={"us": 10, "*": 2}, devices=("iphone",), bundle_id="net.whatsapp.WhatsApp"),
    _known("585027354", "Google Maps", "Google LLC", 6010, "2012-12-12",
           free={"us": 11, "*": 9}, bundle_id="com.google.Maps"),
    _known("544007664", "YouTube", "Google LLC", 6008, "2012-09-11",
           free={"us": 9, "*": 7}, grossing={"us": 1, "*": 2}, bundle_id="com.google.ios.youtube"),
    _known("284882215", "Facebook", "Meta Platforms, Inc.", 6005, "2019-02-05",
           free={"us": 14, "*": 11}, bundle_id="com.facebook.Facebook"),
    _known("422689480", "Gmail - Email by Google", "Google LLC", 6007, "2011-11-02", free={"us": 13, "*": 18}),
    _known("284815942", "Google", "Google LLC", 6002, "2008-07-11", free={"us": 12, "*": 14}),
    _known("535886823", "Google Chrome", "Google LLC", 6002, "2012-06-28", free={"us": 17, "*": 15}),
    _known("454638411", "Messenger", "Meta Platforms, Inc.", 6005, "2011-08-09", free={"us": 20, "*": 25}),
    _known("447188370", "Snapchat", "Snap, Inc.", 6008, "2011-07-13",
           free={"us": 15, "*": 28}, grossing={"us": 12, "*": 40}),
    _known("363590051", "Netflix", "Netflix, Inc.", 6016, "2010-04-01", free={"us": 25, "*": 22}),
    _known("324684580", "Spotify: Music and Podcasts", "Spotify", 6011, "2009-07-15", free={"us": 21, "*": 13}),
    _known("297606951", "Amazon Shopping", "AMZN Mobile LLC", 6024, "2008-12-03", free={"us": 18, "*": 24}),
    _known("686449807", "Telegram Messenger", "Telegram FZ-LLC", 6005, "2013-08-14",
           free={"us": 40, "*": 12}, grossing={"*": 45}),
    _known("429047995", "Pinterest", "Pinterest", 6012, "2011-03-04", free={"us": 28, "*": 30}),
    _known("333903271", "X", "X Corp.", 6009, "2009-10-07", free={"us": 26, "*": 20}, grossing={"*": 60}),
    _known("368677368", "Uber - Request a ride", "Uber Technologies, Inc.", 6003, "2010-05-21",
           free={"us": 30, "*": 35}),
    _known("546505307", "Zoom Workplace", "Zoom Communications, Inc.", 6000, "2012-08-15",
           free={"us": 60, "*": 55}),
    _known("431946152", "Roblox", "Roblox Corporation", 6014, "2011-12-11",
           free={"us": 16, "*": 19}, grossing={"us": 4, "*": 6}),
    _known("570060128", "Duolingo - Language Lessons", "Duolingo", 6017, "2012-11-13",
           free={"us": 35, "*": 26}, grossing={"us": 14, "*": 18}, blocked=()),
    _known("711923939", "Cash App", "Block, Inc.", 6015, "2013-10-16", free={"us": 19}, only=("us",)),
    _known("351727428", "Venmo", "PayPal, Inc.", 6015, "2013-04-03", free={"us": 33}, only=("us",)),
    _known("283646709", "PayPal - Pay, Send, Save", "PayPal, Inc.", 6015, "2008-07-10",
           free={"us": 50, "*": 45}),
    _known("878577184", "SHEIN - Shopping Online", "Roadget Business Pte. Ltd.", 6024, "2014-06-18",
           free={"us": 22, "*": 17}),
    _known("719972451", "DoorDash - Food Delivery", "DoorDash", 6023, "2013-10-09",
           free={"us": 24, "ca": 20}, only=("us", "ca")),
    _known("1446075923", "Disney+", "Disney", 6016, "2019-11-12",
           free={"us": 45, "*": 50}, grossing={"us": 10, "*": 15}),
    _known("547702041", "Tinder Dating App: Date & Chat", "Tinder Inc.", 6012, "2012-08-02",
           free={"us": 70, "*": 60}, grossing={"us": 5, "*": 5}),
    _known("951937596", "Microsoft Outlook", "Microsoft Corporation", 6007, "2015-01-28",
           free={"us": 55, "*": 50}, blocked=()),
    _known("288429040", "LinkedIn: Network & Job Finder", "LinkedIn Corporation", 6000, "2008-11-05",
           free={"us": 65, "*": 70}, grossing={"us": 20, "*": 25}),
    _known("985746746", "Discord - Chat, Talk & Hangout", "Discord, Inc.", 6005, "2015-05-21",
           free={"us": 38, "*": 40}, grossing={"*": 70}),
    _known("1064216828", "Reddit", "reddit", 6009, "2016-04-07", free={"us": 27, "*": 45}),
    _known("553834731", "Candy Crush Saga", "King", 6014, "2012-11-14",
           free={"us": 80, "*": 60}, grossing={"us": 9, "*": 10}, blocked=()),
    _known("529479190", "Clash of Clans", "Supercell", 6014, "2012-08-02",
           free={"*": 90}, grossing={"us": 18, "*": 12}, blocked=()),
    _known("1094591345", "Pokémon GO", "Niantic, Inc.", 6014, "2016-07-06",
           free={"*": 85}, grossing={"us": 15, "*": 14}),
    _known("512939461", "Subway Surfers", "Sybo Games ApS", 6014, "2012-05-24",
           free={"us": 75, "*": 50}, blocked=()),
    _known("414478124", "WeChat", "WeChat", 6005, "2011-01-21",
           free={"cn": 2, "*": 150}, grossing={"cn": 8}, blocked=()),
    _known("333206289", "Alipay - Simplify Your Life", "Alipay.com Co., Ltd", 6015, "2009-11-18",
           free={"cn": 4}, only=("cn",), blocked=()),
    _known("387682726", "Taobao", "Taobao (China) Software Co., Ltd.", 6024, "2010-08-31",
           free={"cn": 3}, only=("cn",), blocked=()),
    _known("443904275", "LINE", "LY Corporation", 6005, "2011-06-23",
           free={"jp": 1}, grossing={"jp": 3}, only=("jp",), blocked=()),
    _known("362057947", "KakaoTalk : Messenger", "Kakao Corp.", 6005, "2010-03-18",
           free={"kr": 1}, grossing={"kr": 6}, only=("kr",), blocked=()),
    # RedNote sits in China's charts every day; elsewhere it is far outside them until the scripted surge.
    _known(REDNOTE_ID, "小红书", "Xingin", 6005, "2013-12-26",
           free={"cn": 9, "*": 420}, grossing={"cn": 35}, blocked=(), bundle_id="com.xingin.discover"),
    _known(LEMON8_ID, "Lemon8 - Lifestyle Community", "Bytedance Pte. Ltd", 6012, "2020-03-30",
           free={"us": 55, "jp": 40, "*": 130}),
    # Paid apps.
    _known("479516143", "Minecraft", "Mojang", 6014, "2011-11-17", price="6.99",
           paid={"*": 1}, grossing={"us": 40, "*": 50}, blocked=()),
    _known("916366645", "Procreate Pocket", "Savage Interactive Pty Ltd", 6016, "2014-12-17", price="5.99",
           paid={"us": 2, "*": 4}, devices=("iphone",), blocked=()),
    _known("425073498", "Procreate", "Savage Interactive Pty Ltd", 6016, "2011-03-15", price="12.99",
           paid={"*": 1}, devices=("ipad",), blocked=()),
    _known("294934058", "HotSchedules", "HotSchedules", 6000, "2008-10-13", price="2.99",
           paid={"us": 3}, only=("us",), blocked=()),
    _known("932747118", "Shadowrocket", "Shadow Launch Technology Limited", 6002, "2015-04-01", price="2.99",
           paid={"us": 4, "*": 2}),
    _known("623592465", "Heads Up!", "Warner Bros.", 6014, "2013-05-02", price="1.99",
           paid={"us": 5, "*": 10}, blocked=()),
    _known("625334537", "Geometry Dash", "RobTop Games AB", 6014, "2013-08-13", price="1.99",
           paid={"*": 3}, blocked=()),
    _known("1118115766", "Bloons TD 6", "ninja kiwi", 6014, "2018-06-13", price="6.99",
           paid={"*": 6}, grossing={"*": 90}, blocked=()),
    _known("1406710800", "Stardew Valley", "ConcernedApe", 6014, "2018-10-24", price="4.99",
           paid={"*": 8}, blocked=()),
    _known("373493387", "AnkiMobile Flashcards", "Ankitects Pty Ltd", 6017, "2010-05-18", price="24.99",
           paid={"*": 12}, blocked=()),
)
WELL_KNOWN_APPS: dict[str, DemoApp] = {a.app_id: a for a in _WELL_KNOWN}

# The heavyweights RedNote overtook in the US in January 2025: the watch list a dbt seed uses (id -> name).
WATCHLIST: dict[str, str] = {
    "389801252": "Instagram",
    "310633997": "WhatsApp",
    "585027354": "Google Maps",
    "6448311069": "ChatGPT",
    "6446901002": "Threads",
    "1641486558": "Temu",
    "544007664": "YouTube",
    "284882215": "Facebook",
    "1500855883": "CapCut",
    TIKTOK_ID: "TikTok",
}


# ------------------------------------------------------------------------------------------------ story


@dataclass(frozen=True)
class NameChange:
    """An app renamed from ``effective`` on, in every storefront except ``except_countries``."""

    app_id: str
    effective: dt.date
    old_name: str
    new_name: str
    except_countries: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class ScriptedEvent:
    """Positions forced on one app in some charts: ``ranks[date]`` is its rank that day, None = not in the chart.

    Dates not in ``ranks`` fall back to the ranking model. A scripted rank larger than the chart's depth means
    the app is just outside the chart.
    """

    key: str
    app_id: str
    description: str
    countries: tuple[str, ...]
    devices: tuple[str, ...]
    charts: tuple[str, ...]
    ranks: Mapping[dt.date, int | None]


def _series(first: str, values: Sequence[int | None]) -> dict[dt.date, int | None]:
    d0 = dt.date.fromisoformat(first)
    return {d0 + dt.timedelta(days=i): v for i, v in enumerate(values)}


NAME_CHANGES: tuple[NameChange, ...] = (
    # Xiaohongshu shows as "REDnote" outside China from the day of the surge; the Chinese storefront keeps 小红书.
    NameChange(REDNOTE_ID, dt.date(2025, 1, 13), "小红书", "REDnote", except_countries=("cn",)),
)

_US_REMOVAL = [None] * 6  # 2025-01-19 .. 2025-01-24

SCRIPTED_EVENTS: tuple[ScriptedEvent, ...] = (
    ScriptedEvent("rednote-us-iphone", REDNOTE_ID,
                  "RedNote climbs from outside the US top-free chart to #1 on 2025-01-13/14, stays high a week, fades",
                  ("us",), ("iphone",), ("top-free",),
                  _series("2025-01-10", [48, 12, 3, 1, 1, 1, 1, 1, 2, 4, 7, 10, 14, 19, 26, 33, 41, 50, 58, 67,
                                         75, 84])),
    ScriptedEvent("rednote-us-ipad", REDNOTE_ID, "RedNote #1 of the US iPad top-free chart on 2025-01-13/14",
                  ("us",), ("ipad",), ("top-free",),
                  _series("2025-01-10", [70, 21, 5, 1, 1, 2, 2, 3, 3, 6, 9, 13, 17, 23, 30, 38, 47, 56, 65, 74,
                                         83, 92])),
    ScriptedEvent("rednote-fr-iphone", REDNOTE_ID, "RedNote reaches #4 in France on 2025-01-14",
                  ("fr",), ("iphone",), ("top-free",),
                  _series("2025-01-11", [95, 36, 11, 4, 5, 8, 12, 17, 25, 34, 45, 57, 70, 84, 97])),
    ScriptedEvent("rednote-fr-ipad", REDNOTE_ID, "RedNote's smaller surge on French iPads",
                  ("fr",), ("ipad",), ("top-free",),
                  _series("2025-01-12", [62, 20, 9, 11, 15, 22, 30, 41, 55, 70, 88])),
    ScriptedEvent("rednote-gb-iphone", REDNOTE_ID, "RedNote peaks at #2 in the UK on 2025-01-14",
                  ("gb",), ("iphone",), ("top-free",),
                  _series("2025-01-11", [41, 8, 3, 2, 3, 5, 8, 12, 18, 26, 35, 46, 58, 71, 85])),
    ScriptedEvent("rednote-gb-ipad", REDNOTE_ID, "RedNote peaks at #3 on UK iPads",
                  ("gb",), ("ipad",), ("top-free",),
                  _series("2025-01-11", [60, 14, 5, 3, 4, 7, 11, 16, 23, 32, 43, 56, 70, 86])),
    ScriptedEvent("rednote-ca-iphone", REDNOTE_ID, "RedNote #1 in Canada on 2025-01-14",
                  ("ca",), ("iphone",), ("top-free",),
                  _series("2025-01-11", [30, 6, 2, 1, 2, 3, 5, 8, 13, 20, 28, 38, 50, 63, 77, 92])),
    ScriptedEvent("rednote-ca-ipad", REDNOTE_ID, "RedNote peaks at #2 on Canadian iPads",
                  ("ca",), ("ipad",), ("top-free",),
                  _series("2025-01-11", [45, 10, 4, 2, 3, 4, 7, 11, 17, 25, 34, 45, 58, 72, 88])),
    ScriptedEvent("lemon8-us-iphone", LEMON8_ID,
                  "Lemon8 climbs into the US top 10 beside RedNote, is pulled with ByteDance's apps, returns lower",
                  ("us",), ("iphone",), ("top-free",),
                  _series("2025-01-10", [38, 15, 7, 3, 2, 2, 3, 4, 5, *_US_REMOVAL, 18, 24, 30, 36, 41, 45, 49])),
    ScriptedEvent("lemon8-us-ipad", LEMON8_ID, "Lemon8 on US iPads, same story",
                  ("us",), ("ipad",), ("top-free",),
                  _series("2025-01-10", [52, 22, 10, 4, 3, 3, 4, 5, 7, *_US_REMOVAL, 25, 31, 37, 43, 48, 53, 58])),
    # TikTok (and CapCut, pulled with it) left the US App Store on 2025-01-18: still in that day's charts, absent
    # from 2025-01-19. In reality TikTok only came back on 2025-02-13; the demo brings it back on 2025-01-25 so
    # that the default month (January) shows a re-entry as well as an exit.
    ScriptedEvent("tiktok-us-removal", TIKTOK_ID,
                  "TikTok absent from every US chart 2025-01-19..2025-01-24, back from 2025-01-25",
                  ("us",), DEVICES, CHARTS, _series("2025-01-19", _US_REMOVAL)),
    ScriptedEvent("capcut-us-removal", CAPCUT_ID, "CapCut pulled from the US store with TikTok",
                  ("us",), DEVICES, CHARTS, _series("2025-01-19", _US_REMOVAL)),
)


def scripted_ranks(country: str, device: str, chart: str, day: dt.date) -> dict[str, int | None]:
    """The app ids whose position in this chart is scripted on ``day``, with that position (None = absent)."""
    out: dict[str, int | None] = {}
    for ev in SCRIPTED_EVENTS:
        if country in ev.countries and device in ev.devices and chart in ev.charts and day in ev.ranks:
            out[ev.app_id] = ev.ranks[day]
    return out


# ----------------------------------------------------------------------------------------- invented apps

_PREFIXES = ("Pocket", "Smart", "Happy", "Bright", "Nova", "Pixel", "Zen", "Daily", "Quick", "Super", "Blue",
             "Lucky", "Magic", "Tiny", "Epic", "Royal", "Urban", "Swift", "Cosmic", "Simple", "Wild", "Clever",
             "Sunny", "Neo")
_NOUNS: dict[int, tuple[str, ...]] = {
    6014: ("Quest", "Kingdom", "Merge", "Blast", "Saga", "Tiles", "Dash", "Legends", "Tycoon", "Farm", "Puzzle",
           "Arena", "Heroes", "Solitaire", "Sort", "Match"),
    6007: ("Notes", "Planner", "Scanner", "Tasks", "Calendar", "Docs", "Mail", "Focus"),
    6015: ("Wallet", "Budget", "Bank", "Pay", "Invest", "Cash"),
    6013: ("Fit", "Workout", "Sleep", "Steps", "Yoga", "Fasting"),
    6008: ("Cam", "Photo Editor", "Video Maker", "Filters", "Collage"),
    6002: ("VPN", "Cleaner", "Translator", "QR Reader", "Widgets", "Fonts"),
    6024: ("Market", "Deals", "Shop", "Outlet"),
    6016: ("TV", "Stream", "Movies", "Anime"),
    6011: ("Radio", "Music", "Beats", "Tuner"),
    6005: ("Chat", "Connect", "Circle", "Friends"),
    6017: ("Math", "Words", "Kids Learn", "Flashcards"),
    6003: ("Trips", "Flights", "Hotels", "Rides"),
    6023: ("Eats", "Recipes", "Delivery"),
    6012: ("Home", "Style", "Dating", "Astrology"),
    6004: ("Scores", "Live Sports", "Fantasy"),
}
_GENRE_TAGLINE = {
    6014: "A casual game.", 6007: "Get things done.", 6015: "Manage your money.", 6013: "Stay healthy.",
    6008: "Create and share.", 6002: "A handy tool.", 6024: "Shop and save.", 6016: "Watch anywhere.",
    6011: "Listen anywhere.", 6005: "Stay in touch.", 6017: "Learn every day.", 6003: "Go places.",
    6023: "Food, fast.", 6012: "Everyday life.", 6004: "Follow your teams.", 6010: "Find your way.",
    6009: "Stay informed.", 6000: "Work better.", 6006: "Look it up.", 6018: "Read more.",
}
_DEVELOPERS = ("Northwind Labs", "Bluefin Studio", "Kumo Inc.", "Lantern Apps", "Orchard Games", "Tidewater LLC",
               "Copperleaf Ltd", "Brightside Mobile", "Redwood Interactive", "Pebble & Co.", "Skylark Software",
               "Harbor Digital", "Quartz Play", "Meadow Tech", "Ironbark Studios", "Polar Bear Apps",
               "Juniper Works", "Starling Labs", "Cobalt Games", "Fernway Inc.", "Summit Mobile", "Waffle Studio",
               "Glowworm Games", "Marble Apps", "Nimbus Ltd")
# Local apps: words of each storefront's language, and how a local company name is formed.
_LOCAL: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "us": (("American", "Metro", "Liberty", "Main Street", "Coast", "Prairie", "Empire", "Lakeside"),
           ("Bank", "Transit", "Weather", "Grocery", "Pharmacy", "News", "Radio", "Sports", "Deals", "Rewards",
            "Pizza", "Coffee"), "{} LLC"),
    "gb": (("British", "London", "Royal", "High Street", "Northern", "Crown", "Albion", "Thames"),
           ("Rail", "Bank", "Weather", "Grocer", "Football", "News", "Radio", "Deals", "Rewards", "Pub Quiz",
            "Bus", "Tea"), "{} Ltd"),
    "ca": (("Maple", "Canuck", "Northern", "Great Lakes", "Pacific", "Prairie", "True North", "Aurora"),
           ("Bank", "Transit", "Weather", "Grocery", "Hockey", "News", "Radio", "Deals", "Rewards", "Coffee",
            "Pharmacy", "Trail"), "{} Inc."),
    "fr": (("Mon", "Ma", "Le Petit", "La Belle", "Super", "Vite", "Bon", "Grand"),
           ("Marché", "Météo", "Banque", "Recette", "Trajet", "Carnet", "Cuisine", "Santé", "Quiz", "Boutique",
            "Foot", "Radio"), "{} SAS"),
    "de": (("Mein", "Schnell", "Gute", "Super", "Klar", "Einfach", "Deutsche", "Stadt"),
           ("Wetter", "Bank", "Bahn", "Rezepte", "Markt", "Fahrplan", "Kasse", "Nachrichten", "Fußball", "Radio",
            "Quiz", "Notizen"), "{} GmbH"),
    "it": (("Il Mio", "Pronto", "Buon", "Super", "Facile", "Piccolo", "Gran", "Città"),
           ("Meteo", "Banca", "Ricette", "Mercato", "Treno", "Calcio", "Radio", "Notizie", "Spesa", "Quiz",
            "Viaggi", "Salute"), "{} S.r.l."),
    "es": (("Mi", "Súper", "Rápido", "Buen", "Fácil", "Gran", "Ciudad", "Hola"),
           ("Tiempo", "Banco", "Recetas", "Mercado", "Tren", "Fútbol", "Radio", "Noticias", "Compras", "Quiz",
            "Viajes", "Salud"), "{} S.L."),
    "br": (("Meu", "Super", "Rápido", "Bom", "Fácil", "Mais", "Cidade", "Olá"),
           ("Tempo", "Banco", "Receitas", "Mercado", "Ônibus", "Futebol", "Rádio", "Notícias", "Compras", "Quiz",
            "Viagens", "Saúde"), "{} Ltda."),
    "in": (("Bharat", "Desi", "Quick", "Smart", "Super", "Apna", "Mera", "Namaste"),
           ("Pay", "Kirana", "Cricket", "News", "Rail", "Recipes", "Bazaar", "Wallet", "Radio", "Quiz", "Tutor",
            "Rides"), "{} Pvt Ltd"),
    "jp": (("ポケット", "スマート", "かんたん", "まいにち", "ハッピー", "ネオ", "みんなの", "スーパー"),
           ("天気", "家計簿", "レシピ", "マンガ", "ニュース", "パズル", "乗換案内", "ポイント", "ラジオ", "翻訳",
            "クーポン", "写真"), "株式会社{}"),
    "cn": (("小", "快", "美", "大", "新", "爱", "好", "云"),
           ("天气", "外卖", "地图", "音乐", "视频", "阅读", "记账", "商城", "翻译", "相机", "游戏", "购物"),
           "{}科技有限公司"),
    "kr": (("우리", "스마트", "쉬운", "매일", "해피", "슈퍼", "모두의", "빠른"),
           ("날씨", "가계부", "레시피", "웹툰", "뉴스", "퍼즐", "지하철", "쿠폰", "라디오", "번역", "쇼핑", "사진"),
           "(주){}"),
}
# The extra storefronts' local apps, built from the place's name; after the twelve, so their ids stay the same.
_GENERIC_PREFIXES = ("My", "City", "Metro", "Quick", "Smart", "Daily", "Local")
_GENERIC_NOUNS = ("Bank", "Transit", "Weather", "Grocery", "Pharmacy", "News", "Radio", "Sports", "Deals",
                  "Rewards", "Taxi", "Coffee")
_LOCAL.update({cc: ((place, *_GENERIC_PREFIXES), _GENERIC_NOUNS, place + " {} Ltd")
               for cc, (_, _, place) in _EXTRA_STOREFRONTS.items()})
_CJK = ("jp", "cn", "kr")
_LOCAL_GENRES = (6015, 6003, 6009, 6023, 6024, 6004, 6011, 6007, 6014, 6012, 6017, 6002)

_N_GLOBAL_FREE, _N_GLOBAL_PAID = 170, 180
_N_LOCAL_FREE, _N_LOCAL_PAID = 55, 40
_PRICE_TIERS = tuple(Decimal(p) for p in ("0.99", "1.99", "2.99", "3.99", "4.99", "6.99", "9.99"))


def _rng(*parts: object) -> random.Random:
    # A hash of the parts, not hash(): stable across processes and Python versions.
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _invented_id(kind: str, key: str, taken: set[str]) -> str:
    salt = 0
    while True:
        h = int.from_bytes(hashlib.sha256(f"chartlake-demo|{kind}|{key}|{salt}".encode()).digest()[:8], "big")
        candidate = str(9_000_000_000 + h % 1_000_000_000)
        if candidate not in taken:
            taken.add(candidate)
            return candidate
        salt += 1


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _random_release(rng: random.Random) -> dt.date:
    return dt.date(2010, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 15 - 30))


@dataclass(frozen=True, eq=False)
class _Catalog:
    global_apps: tuple[DemoApp, ...]
    local_apps: Mapping[str, tuple[DemoApp, ...]]

    def apps_in(self, country: str) -> list[DemoApp]:
        return [a for a in self.global_apps if a.listed_in(country)] + list(self.local_apps.get(country, ()))

    def app(self, app_id: str) -> DemoApp | None:
        return next((a for a in self.global_apps if a.app_id == app_id), None)


@lru_cache(maxsize=4)
def _catalog(seed: int) -> _Catalog:
    """The stable pool of apps for a seed: well-known apps, invented global apps, invented local apps."""
    taken = set(WELL_KNOWN_APPS)
    rng = _rng(seed, "catalog")
    names: set[str] = {a.name for a in _WELL_KNOWN}
    invented: list[DemoApp] = []
    genres = list(_NOUNS)

    def new_name(genre: int) -> str:
        while True:
            name = f"{rng.choice(_PREFIXES)} {rng.choice(_NOUNS[genre])}"
            if name not in names:
                names.add(name)
                return name

    for i in range(_N_GLOBAL_FREE + _N_GLOBAL_PAID):
        paid = i >= _N_GLOBAL_FREE
        genre = rng.choice(genres if not paid else [6014, 6014, 6007, 6002, 6008, 6017, 6013, 6011])
        name = new_name(genre)
        developer = rng.choice(_DEVELOPERS)
        typical = _log_uniform(rng, 14, 450)
        # Most games and a share of other free apps earn through in-app purchases, so they enter top grossing.
        grosses = rng.random() < (0.9 if genre == 6014 else 0.5 if not paid else 0.35)
        grossing = {"*": _log_uniform(rng, 12, 400)} if grosses else {}
        launch = not paid and i % 29 == 7  # a handful of apps launched during January 2025
        release = _EPOCH + dt.timedelta(days=2 + (i * 7) % 26) if launch else _random_release(rng)
        invented.append(DemoApp(
            app_id=_invented_id("app", name, taken), name=name, developer=developer, genre_id=genre,
            release_date=release,
            price_usd=rng.choice(_PRICE_TIERS) if paid else Decimal("0"),
            free={} if paid else {"*": typical * (2.5 if launch else 1)},
            paid={"*": typical} if paid else {}, grossing=grossing, invented=True, launch_boost=launch,
            devices=("iphone",) if rng.random() < 0.08 else ("iphone", "ipad")))

    local: dict[str, tuple[DemoApp, ...]] = {}
    for country, (prefixes, nouns, company) in _LOCAL.items():
        lrng = _rng(seed, "catalog", country)
        combos = [(p, n) for p in prefixes for n in nouns]
        lrng.shuffle(combos)
        apps = []
        sep = "" if country in _CJK else " "
        for i, (p, n) in enumerate(combos[: _N_LOCAL_FREE + _N_LOCAL_PAID]):
            paid = i >= _N_LOCAL_FREE
            name = f"{p}{sep}{n}"
            typical = _log_uniform(lrng, 6, 400)
            apps.append(DemoApp(
                app_id=_invented_id("app", f"{country}|{name}", taken), name=name,
                developer=company.format(n), genre_id=lrng.choice(_LOCAL_GENRES),
                release_date=_random_release(lrng),
                price_usd=lrng.choice(_PRICE_TIERS) if paid else Decimal("0"),
                free={} if paid else {country: typical}, paid={country: typical} if paid else {},
                grossing={country: _log_uniform(lrng, 15, 400)} if lrng.random() < 0.45 else {},
                only=(country,), invented=True))
        local[country] = tuple(apps)

    # One developer id per developer name, always from the invented range: Apple's real developer ids are not
    # needed for the story, and an invented one can never be taken for a real fact.
    dev_ids: dict[str, str] = {}
    by_id: dict[str, DemoApp] = {}
    for app in (*_WELL_KNOWN, *invented, *(a for apps in local.values() for a in apps)):
        if app.developer not in dev_ids:
            dev_ids[app.developer] = _invented_id("developer", app.developer, taken)
        by_id[app.app_id] = dataclasses.replace(app, developer_id=dev_ids[app.developer])
    return _Catalog(
        global_apps=tuple(by_id[a.app_id] for a in (*_WELL_KNOWN, *invented)),
        local_apps={c: tuple(by_id[a.app_id] for a in apps) for c, apps in local.items()},
    )


# ---------------------------------------------------------------------------------------- ranking model


@dataclass(frozen=True)
class _Params:
    base: float
    amp1: float
    period1: float
    phase1: float
    amp2: float
    period2: float
    phase2: float
    sigma: float


def _chart_pool(catalog: _Catalog, country: str, device: str, chart: str) -> list[DemoApp]:
    pool = []
    for app in catalog.apps_in(country):
        if device not in app.devices or app.typical(chart, country) is None:
            continue
        is_paid = app.price_usd > 0
        if (chart == "top-free" and is_paid) or (chart == "top-paid" and not is_paid):
            continue
        pool.append(app)
    return sorted(pool, key=lambda a: int(a.app_id))


@lru_cache(maxsize=256)
def _chart_model(seed: int, country: str, device: str, chart: str) -> tuple[tuple[DemoApp, _Params], ...]:
    """Each app's score parameters for one chart: ``score(t) = base + two slow waves + daily noise``.

    Scores are log-popularity (``-ln(typical rank)``), so the gaps at the top are wide and the tail is crowded:
    the top ten barely moves while positions 60-100 churn every day, as in the real charts.
    """
    rng = _rng(seed, country, device, chart)
    out = []
    for app in _chart_pool(_catalog(seed), country, device, chart):
        typical = app.typical(chart, country)
        spread = 0.35 if app.invented else 0.08
        base = -math.log(typical) + rng.gauss(0, spread)
        if app.invented and app.only is None and country in _CJK:
            base -= math.log(2.5)  # Chinese, Japanese and Korean charts are dominated by local apps
        if device == "ipad":
            # iPad charts favour games and video, and disfavour messaging; each app also differs a little.
            base += rng.gauss(0, 0.25 if app.invented else 0.05)
            base += {6014: 0.35, 6016: 0.25, 6008: 0.1, 6005: -0.3}.get(app.genre_id, 0.0)
        amp = rng.uniform(0.05, 0.45) if app.invented else rng.uniform(0.02, 0.07)
        out.append((app, _Params(
            base=base, amp1=amp, period1=rng.uniform(12, 60), phase1=rng.uniform(0, 2 * math.pi),
            amp2=amp / 2, period2=rng.uniform(5, 11), phase2=rng.uniform(0, 2 * math.pi),
            sigma=0.10 if app.invented else 0.03)))
    return tuple(out)


def rank_chart(country: str, device: str, chart: str, day: dt.date, depth: int = 100, *,
               seed: int = DEFAULT_SEED) -> list[DemoApp]:
    """The apps of one chart on one day, best first, at most ``depth`` of them (scripted story included)."""
    t = (day - _EPOCH).days
    noise = _rng(seed, country, device, chart, day.isoformat())
    scripted = scripted_ranks(country, device, chart, day)
    natural: list[tuple[float, int, DemoApp]] = []
    by_id: dict[str, DemoApp] = {}
    for app, p in _chart_model(seed, country, device, chart):
        eps = noise.gauss(0, p.sigma)  # drawn for every app so one app's presence never shifts another's noise
        by_id[app.app_id] = app
        if app.release_date > day or app.app_id in scripted:
            continue
        score = (p.base + p.amp1 * math.sin(2 * math.pi * t / p.period1 + p.phase1)
                 + p.amp2 * math.sin(2 * math.pi * t / p.period2 + p.phase2) + eps)
        if app.launch_boost:
            score += 2.0 * math.exp(-(day - app.release_date).days / 6)
        natural.append((-score, int(app.app_id), app))
    natural.sort(key=lambda x: (x[0], x[1]))
    ranked = [a for _, _, a in natural]
    for app_id, rank in sorted(((k, v) for k, v in scripted.items() if v is not None), key=lambda kv: kv[1]):
        app = by_id.get(app_id) or _catalog(seed).app(app_id)
        if app is not None:
            ranked.insert(rank - 1, app)
    return ranked[:depth]


# ------------------------------------------------------------------------------------------- payloads

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
    cur = _CURRENCY[country]
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
    if country in _EXTRA_STOREFRONTS:
        factor = Decimal(_EXTRA_STOREFRONTS[country][1])
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
        "summary": {"label": _GENRE_TAGLINE[app.genre_id]},
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


def relative_path(day: dt.date, country: str, device: str, chart: str) -> str:
    return f"{day.isoformat()}/{country}-{device}-{chart}.json"


def _check_args(start: dt.date, end: dt.date, countries: Sequence[str], devices: Sequence[str],
                charts: Sequence[str], depth: int) -> None:
    if start > end:
        raise ValueError(f"demo: start {start} is after end {end}")
    unknown = [c for c in countries if c not in _CURRENCY]
    if unknown:
        raise ValueError(f"demo: unsupported countries {unknown}; supported: {sorted(_CURRENCY)}")
    if len(set(countries)) != len(countries):
        raise ValueError(f"demo: duplicate countries in {list(countries)}")
    bad = [d for d in devices if d not in DEVICES] + [c for c in charts if c not in CHARTS]
    if bad:
        raise ValueError(f"demo: unknown devices/charts {bad}; expected devices {DEVICES}, charts {CHARTS}")
    if not 1 <= depth <= LEGACY_MAX_ENTRIES:
        raise ValueError(f"demo: depth must be 1..{LEGACY_MAX_ENTRIES} (the legacy feed's limit), got {depth}")


def generate(out_dir: Path, *, start: dt.date = dt.date(2025, 1, 1), end: dt.date = dt.date(2025, 1, 31),
             countries: Sequence[str] = DEFAULT_COUNTRIES, devices: Sequence[str] = ("iphone", "ipad"),
             charts: Sequence[str] = ("top-free", "top-paid", "top-grossing"), depth: int = 100,
             seed: int = DEFAULT_SEED) -> list[Path]:
    """Write one simulated payload per (date, country, device, chart), ``start`` to ``end`` inclusive.

    Files are ``out_dir/{date}/{country}-{device}-{chart}.json``. iPhone top-free/top-paid hold at most 100
    entries (the v2 feed's limit) whatever ``depth`` says. Same arguments, same bytes. Returns the paths written,
    in (date, country, device, chart) order.
    """
    countries, devices, charts = tuple(countries), tuple(devices), tuple(charts)
    _check_args(start, end, countries, devices, charts, depth)
    out_dir = Path(out_dir)
    written: list[Path] = []
    day = start
    while day <= end:
        (out_dir / day.isoformat()).mkdir(parents=True, exist_ok=True)
        for country in countries:
            for device in devices:
                for chart in charts:
                    path = out_dir / relative_path(day, country, device, chart)
                    path.write_bytes(payload_bytes(country, device, chart, day, depth, seed=seed))
                    written.append(path)
        day += dt.timedelta(days=1)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m orchestration.sources.demo",
                                 description="Write simulated App Store chart payloads (chartlake demo data).")
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2025, 1, 1))
    ap.add_argument("--end", type=dt.date.fromisoformat, default=dt.date(2025, 1, 31))
    ap.add_argument("--countries", default=",".join(DEFAULT_COUNTRIES))
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = ap.parse_args(argv)
    paths = generate(args.out_dir, start=args.start, end=args.end, countries=args.countries.split(","),
                     depth=args.depth, seed=args.seed)
    print(f"wrote {len(paths)} simulated payloads under {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
