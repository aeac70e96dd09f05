"""Deterministic, simulated App Store and Google Play top charts for demos, tests and docs.

Why it exists: no public archive of the *overall* US/FR charts for January 2025 could be obtained (see
``/work/shared/real_charts/README.md``), yet chartlake's questions are about that month. This package writes
payloads that Apple *could* have served, so the whole pipeline (payload store, parsers, lake, dbt, audit,
serving) runs on them unchanged, and a scripted story modelled on January 2025 gives the marts something to
find: RedNote's multi-country breakout and name change, Lemon8's climb, TikTok leaving and re-entering the
US charts.

One concern a module, the facts as data (``data/*.json``, package data):

- ``catalogue``: storefronts, genres and the real, well-known apps (``data/storefronts.json``,
  ``data/catalogue.json``);
- ``story``: the January 2025 story, name changes and scripted ranks (``data/story.json``);
- ``invented``: the invented apps around them and the whole catalogue of a seed (words in ``data/names.json``);
- ``ranking``: the ranking model, one chart on one day;
- ``payloads``: a chart as the JSON Apple serves (RSS v2 or legacy iTunes RSS);
- ``appstore``: the files, ``{date}/{country}-{device}-{chart}.json``, and the command line;
- ``play``: the simulated Google Play charts that follow the App Store story a day or two late.

Everything is a pure function of the arguments: a date's charts do not depend on ``start``/``end`` (generating
one day gives the same bytes as that day within a whole month). Real apps keep their real App Store ids and
names; every other app is invented, with an id in a range Apple has not reached. All positions are simulated.
No Dagster here.
"""

from orchestration.demo.appstore import generate, main, relative_path
from orchestration.demo.catalogue import (ALL_COUNTRIES, CAPCUT_ID, CURRENCY, DEFAULT_COUNTRIES, GENRES, LEMON8_ID,
                                          REDNOTE_ID, TIKTOK_ID, WATCHLIST, WELL_KNOWN_APPS, DemoApp)
from orchestration.demo.payloads import (GENERATOR, LEGACY_MAX_ENTRIES, V2_MAX_ENTRIES, build_payload, feed_url,
                                         is_v2, payload_bytes)
from orchestration.demo.ranking import DEFAULT_SEED, rank_chart
from orchestration.demo.story import NAME_CHANGES, SCRIPTED_EVENTS, NameChange, ScriptedEvent, scripted_ranks

__all__ = [
    "ALL_COUNTRIES", "CAPCUT_ID", "CURRENCY", "DEFAULT_COUNTRIES", "DEFAULT_SEED", "GENERATOR", "GENRES",
    "LEGACY_MAX_ENTRIES", "LEMON8_ID", "NAME_CHANGES", "REDNOTE_ID", "SCRIPTED_EVENTS", "TIKTOK_ID", "V2_MAX_ENTRIES",
    "WATCHLIST", "WELL_KNOWN_APPS", "DemoApp", "NameChange", "ScriptedEvent", "build_payload", "feed_url",
    "generate", "is_v2", "main", "payload_bytes", "rank_chart", "relative_path", "scripted_ranks",
]
