"""The ranking model: where each app of the catalogue stands in one chart on one day, scripted story included.

Scores are log-popularity with two slow waves and daily noise per app; randomness comes from ``random.Random``
instances seeded from a hash of (seed, country, device, chart[, date]), never from global state or the clock,
so a date's chart does not depend on which other dates are generated.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from functools import lru_cache

from orchestration.demo.catalogue import DemoApp
from orchestration.demo.invented import CJK, EPOCH, Catalog, catalog, seeded_rng
from orchestration.demo.story import scripted_ranks

DEFAULT_SEED = 20250114


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


def _chart_pool(pool_of: Catalog, country: str, device: str, chart: str) -> list[DemoApp]:
    pool = []
    for app in pool_of.apps_in(country):
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
    rng = seeded_rng(seed, country, device, chart)
    out = []
    for app in _chart_pool(catalog(seed), country, device, chart):
        typical = app.typical(chart, country)
        spread = 0.35 if app.invented else 0.08
        base = -math.log(typical) + rng.gauss(0, spread)
        if app.invented and app.only is None and country in CJK:
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
    t = (day - EPOCH).days
    noise = seeded_rng(seed, country, device, chart, day.isoformat())
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
        app = by_id.get(app_id) or catalog(seed).app(app_id)
        if app is not None:
            ranked.insert(rank - 1, app)
    return ranked[:depth]

