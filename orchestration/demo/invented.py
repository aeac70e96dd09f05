"""The invented apps that fill the charts around the well-known ones, and the catalogue of a seed.

Every invented app has an id in 9000000000-9999999999, a range Apple has not reached, so a simulated app can
never be mistaken for (or collide with) a real one. Names are built from the words of ``data/names.json``: global
apps from English prefixes and genre nouns, each storefront's local apps from words of its language.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import random
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Mapping

from orchestration.demo._data import load
from orchestration.demo.catalogue import EXTRA_STOREFRONTS, WELL_KNOWN, WELL_KNOWN_APPS, DemoApp

# Day 0 of the ranking model. Only used as a phase origin, so any date can be generated.
EPOCH = dt.date(2025, 1, 1)

_NAMES = load("names.json")
_PREFIXES: tuple[str, ...] = tuple(_NAMES["prefixes"])
_NOUNS: dict[int, tuple[str, ...]] = {int(g): tuple(words) for g, words in _NAMES["nouns"].items()}
_DEVELOPERS: tuple[str, ...] = tuple(_NAMES["developers"])
# Local apps: words of each storefront's language, and how a local company name is formed. The extra
# storefronts' come after the twelve, built from the place's name, so the twelve's ids stay the same.
_GENERIC = _NAMES["generic_local"]
LOCAL: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    cc: (tuple(w["prefixes"]), tuple(w["nouns"]), w["company"]) for cc, w in _NAMES["local"].items()}
LOCAL.update({cc: ((place, *_GENERIC["prefixes"]), tuple(_GENERIC["nouns"]), _GENERIC["company"].replace("{place}", place))
              for cc, (_, _, place) in EXTRA_STOREFRONTS.items()})
CJK = ("jp", "cn", "kr")
_LOCAL_GENRES = (6015, 6003, 6009, 6023, 6024, 6004, 6011, 6007, 6014, 6012, 6017, 6002)

_N_GLOBAL_FREE, _N_GLOBAL_PAID = 170, 180
_N_LOCAL_FREE, _N_LOCAL_PAID = 55, 40
_PRICE_TIERS = tuple(Decimal(p) for p in ("0.99", "1.99", "2.99", "3.99", "4.99", "6.99", "9.99"))


def seeded_rng(*parts: object) -> random.Random:
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
class Catalog:
    global_apps: tuple[DemoApp, ...]
    local_apps: Mapping[str, tuple[DemoApp, ...]]

    def apps_in(self, country: str) -> list[DemoApp]:
        return [a for a in self.global_apps if a.listed_in(country)] + list(self.local_apps.get(country, ()))

    def app(self, app_id: str) -> DemoApp | None:
        return next((a for a in self.global_apps if a.app_id == app_id), None)


@lru_cache(maxsize=4)
def catalog(seed: int) -> Catalog:
    """The stable pool of apps for a seed: well-known apps, invented global apps, invented local apps."""
    taken = set(WELL_KNOWN_APPS)
    rng = seeded_rng(seed, "catalog")
    names: set[str] = {a.name for a in WELL_KNOWN}
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
        release = EPOCH + dt.timedelta(days=2 + (i * 7) % 26) if launch else _random_release(rng)
        invented.append(DemoApp(
            app_id=_invented_id("app", name, taken), name=name, developer=developer, genre_id=genre,
            release_date=release,
            price_usd=rng.choice(_PRICE_TIERS) if paid else Decimal("0"),
            free={} if paid else {"*": typical * (2.5 if launch else 1)},
            paid={"*": typical} if paid else {}, grossing=grossing, invented=True, launch_boost=launch,
            devices=("iphone",) if rng.random() < 0.08 else ("iphone", "ipad")))

    local: dict[str, tuple[DemoApp, ...]] = {}
    for country, (prefixes, nouns, company) in LOCAL.items():
        lrng = seeded_rng(seed, "catalog", country)
        combos = [(p, n) for p in prefixes for n in nouns]
        lrng.shuffle(combos)
        apps = []
        sep = "" if country in CJK else " "
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
    for app in (*WELL_KNOWN, *invented, *(a for apps in local.values() for a in apps)):
        if app.developer not in dev_ids:
            dev_ids[app.developer] = _invented_id("developer", app.developer, taken)
        by_id[app.app_id] = dataclasses.replace(app, developer_id=dev_ids[app.developer])
    return Catalog(
        global_apps=tuple(by_id[a.app_id] for a in (*WELL_KNOWN, *invented)),
        local_apps={c: tuple(by_id[a.app_id] for a in apps) for c, apps in local.items()},
    )
