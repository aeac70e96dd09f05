"""The daily run: fetch today's charts from Apple, then build, check and publish them.

One run per chart date, over every asset (raw, dbt models and their tests, quality checks, publish): the raw
asset fetches the storefronts and charts the ``AppleFeeds`` resource names, so changing what is fetched is a
resource change, not a code change.

When it runs is ``CHARTLAKE_FETCH_CRON`` (default ``15 6 * * *``, UTC). A schedule's cron string is part of its
definition, so the variable is read once, when the code location loads: ``orchestration/definitions.py`` calls
``build_daily_schedule()``, and importing this module reads nothing. Restart ``dagster dev`` / reload the code
location after changing it. Everything else is read when a tick is evaluated.
"""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg

from orchestration.defs.resources import AppleFeeds, PlayFeeds

FETCH_CRON_ENV = "CHARTLAKE_FETCH_CRON"
# 06:15 UTC: Apple's charts for the day have settled in every storefront we fetch by then, and it is early
# enough that Europe's analysts see the day's ranks when they start work.
DEFAULT_FETCH_CRON = "15 6 * * *"
RAW_OP = "raw__chart_entries"

# Every asset, so one run lands the day and then builds, checks and publishes it. The assets' backfill policies
# differ (dbt and publish: single run; raw: none), so Dagster gives this job one partition per run: right for a
# fetch, which only ever means today. Ranged backfills go through raw_job + warehouse_job (`runner.run_range`).
# Like every run, its run holds the home's writer lock from first step to last (defs/executor.py).
daily_job = dg.define_asset_job(
    "daily_job",
    # Not the dashboards: they have their own job (orchestration/defs/reports/assets.py says why).
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("reports"),
    description="Fetch today's Apple charts, land them, then build, check and publish the marts for that day.",
)


def daily_run_request(chart_date: dt.date, apple_feeds: AppleFeeds) -> dg.RunRequest:
    """The run for one chart date: fetch on, one partition; run_key makes a retried tick request it once."""
    key = chart_date.isoformat()
    return dg.RunRequest(
        run_key=f"daily:{key}",
        partition_key=key,
        run_config={"ops": {RAW_OP: {"config": {"fetch": True}}}},
        # What the run will ask Apple for, visible on the run page before it starts.
        tags={"chartlake/trigger": "daily_schedule",
              "chartlake/countries": ",".join(apple_feeds.country_list()),
              "chartlake/charts": apple_feeds.charts},
    )


def build_daily_schedule(cron: str | None = None, name: str = "daily_schedule") -> dg.ScheduleDefinition:
    """The daily fetch schedule at ``cron`` (UTC; default: ``CHARTLAKE_FETCH_CRON``, read now)."""
    return _built(_daily_schedule, cron, name, FETCH_CRON_ENV, DEFAULT_FETCH_CRON)


def _built(factory, cron: str | None, name: str, env: str, default: str) -> dg.ScheduleDefinition:
    """``factory(cron, name)`` with ``cron`` (default: ``env``'s value, else ``default``); a bad cron string is a
    ValueError naming where it came from."""
    from_env = cron is None
    cron = cron or (os.environ.get(env) or default).strip()
    try:
        return factory(cron, name)
    except dg.DagsterInvalidDefinitionError as exc:
        source = f"{env}={cron!r}" if from_env else f"cron {cron!r}"
        raise ValueError(f"{source} is not a valid cron string (example: {default!r}): {exc}") from exc


def _tick_date(context: dg.ScheduleEvaluationContext) -> dt.date:
    """The tick's date in UTC, not the wall clock's, so a late or replayed tick asks for the day it was for."""
    when = context.scheduled_execution_time or dt.datetime.now(dt.timezone.utc)
    return (when.astimezone(dt.timezone.utc) if when.tzinfo else when).date()


def _daily_schedule(cron: str, name: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=name,
        job=daily_job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,  # turned on deliberately: it calls Apple
        description="Fetch the configured storefronts and charts for today's chart date (UTC), then build, "
        "check and publish. Time: CHARTLAKE_FETCH_CRON (default 06:15 UTC), read when the code location loads.",
    )
    def _daily(context: dg.ScheduleEvaluationContext, apple_feeds: AppleFeeds):
        # Today's chart is the one Apple serves now: the partition is the tick's date.
        if not apple_feeds.country_list():
            return dg.SkipReason("AppleFeeds.countries is empty: no storefront to fetch")
        return daily_run_request(_tick_date(context), apple_feeds)

    return _daily


# --- Google Play -----------------------------------------------------------------------------------------------
# A schedule of its own, beside Apple's: Play's fetch goes through an undocumented endpoint that breaks when Google
# changes it (README, "Google Play"), so it is turned on separately, and a Play run that fails never touches the
# Apple run of the day. Same job (land, build, check, publish), with the raw asset's fetch_play switch instead of
# fetch; the two runs take the home's writer lock in turn.

PLAY_FETCH_CRON_ENV = "CHARTLAKE_PLAY_FETCH_CRON"
# 06:45 UTC: after Apple's 06:15 run has usually finished, so the two runs do not queue on the writer lock.
DEFAULT_PLAY_FETCH_CRON = "45 6 * * *"


def play_run_request(chart_date: dt.date, play_feeds: PlayFeeds) -> dg.RunRequest:
    """The Play run for one chart date: fetch_play on, one partition; its own run_key, apart from Apple's."""
    key = chart_date.isoformat()
    return dg.RunRequest(
        run_key=f"play:{key}",
        partition_key=key,
        run_config={"ops": {RAW_OP: {"config": {"fetch_play": True}}}},
        tags={"chartlake/trigger": "play_schedule",
              "chartlake/store": "google_play",
              "chartlake/countries": ",".join(play_feeds.country_list()),
              "chartlake/charts": play_feeds.charts},
    )


def build_play_schedule(cron: str | None = None, name: str = "play_schedule") -> dg.ScheduleDefinition:
    """The daily Google Play fetch schedule at ``cron`` (UTC; default: ``CHARTLAKE_PLAY_FETCH_CRON``, read now)."""
    return _built(_play_schedule, cron, name, PLAY_FETCH_CRON_ENV, DEFAULT_PLAY_FETCH_CRON)


def _play_schedule(cron: str, name: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=name,
        job=daily_job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,  # turned on deliberately: it scrapes Google Play
        description="Fetch the configured Google Play storefronts and charts (PlayFeeds, through the Node "
        "google-play-scraper: `make play-setup` first) for today's chart date (UTC), then build, check and "
        "publish. Time: CHARTLAKE_PLAY_FETCH_CRON (default 06:45 UTC), read when the code location loads.",
    )
    def _play(context: dg.ScheduleEvaluationContext, play_feeds: PlayFeeds):
        if not play_feeds.country_list():
            return dg.SkipReason("PlayFeeds.countries is empty: no Google Play storefront to fetch")
        return play_run_request(_tick_date(context), play_feeds)

    return _play

