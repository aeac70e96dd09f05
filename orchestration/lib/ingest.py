"""From payloads to the lake's raw layer, in two steps.

1. ``stage_*``: a payload (fetched or imported) goes into the raw store and is registered in ``raw.payloads`` with
   the chart keys it holds, or with its error if it cannot be parsed. One lake commit per batch.
2. ``land_day``: every staged payload of a chart date that is not yet in ``raw.chart_entries`` is parsed again
   from the store and its rows are inserted, all countries of the day in one commit. A payload that already landed
   for a chart key is never landed twice, so re-running a day with an unchanged feed changes nothing; a different
   payload for the same chart key lands as a new version beside the old one.

Registry and rows live in the lake, so their history is DuckLake's snapshots. No Dagster here: the raw assets,
the CLI and the inbox sensor all call these functions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import duckdb
import pandas as pd

from orchestration.lib import lake
from orchestration.lib.payload_store import PayloadStore, utcnow
from orchestration.sources.canonical import RAW_COLUMNS, ChartKey, PayloadError
from orchestration.sources.parsers import parse_payload

_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
_COUNTRY_IN_NAME = re.compile(r"(?:^|[-_/])([a-z]{2})(?=[-_])")


@dataclass
class StageResult:
    """What happened to one payload: ``staged`` (new chart versions), ``unchanged`` (seen before) or ``failed``."""

    source: str
    sha256: str
    status: str
    charts: list[ChartKey] = field(default_factory=list)
    entry_count: int = 0
    error: str | None = None
    country: str | None = None
    chart_date: dt.date | None = None


@dataclass
class PayloadSource:
    """A payload to stage, with what is known about where it came from."""

    content: bytes
    source: str  # file path or URL, used in messages
    source_url: str | None = None
    http_status: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    fetched_at: dt.datetime | None = None
    chart_date: dt.date | None = None
    request: object | None = None  # a feeds.FeedRequest when the payload was fetched
    fetch_error: str | None = None  # transport error (timeout, 404): no usable payload


def stage(con: duckdb.DuckDBPyConnection, store: PayloadStore, payloads: Iterable[PayloadSource], *,
          run_id: str, message: str = "stage payloads") -> list[StageResult]:
    """Store and register payloads; one lake commit for the whole batch. Never raises for a bad payload."""
    lake.ensure_raw_schema(con)
    now = utcnow()
    results: list[StageResult] = []
    registry_rows: list[dict] = []
    known = _registered_keys(con)
    for p in payloads:
        fetched_at = (p.fetched_at or now).replace(tzinfo=None)
        hint_country, hint_date = _hints(p)
        if p.content is None or p.fetch_error:
            # Nothing to store: record the failure so the partition shows as failed with its URL.
            sha = ""
            res = StageResult(p.source, sha, "failed", error=p.fetch_error or "no payload",
                              country=hint_country, chart_date=hint_date)
            registry_rows.append(_registry_row(None, p, fetched_at, run_id, now, res))
            results.append(res)
            continue
        stored = store.put(p.content, {
            "source": p.source, "source_url": p.source_url, "http_status": p.http_status, "etag": p.etag,
            "last_modified": p.last_modified, "fetched_at": fetched_at.isoformat(), "run_id": run_id,
            # The parse context, so that landing re-reads the payload exactly as staging did.
            "chart_date_override": p.chart_date.isoformat() if p.chart_date else None,
            "request": dataclasses.asdict(p.request) if dataclasses.is_dataclass(p.request) else None,
        })
        sha = stored.sha256
        try:
            charts = parse_payload(p.content, source=p.source, sha256=sha, chart_date=p.chart_date,
                                   request=p.request)
        except PayloadError as exc:
            res = StageResult(p.source, sha, "failed", error=str(exc), country=hint_country, chart_date=hint_date)
            if (sha, None) not in known:
                registry_rows.append(_registry_row(None, p, fetched_at, run_id, now, res))
                known.add((sha, None))
            results.append(res)
            continue
        new_keys = [c.key for c in charts if (sha, c.key) not in known]
        res = StageResult(p.source, sha, "staged" if new_keys else "unchanged", [c.key for c in charts],
                          sum(len(c.entries) for c in charts),
                          country=charts[0].key.country, chart_date=charts[0].key.chart_date)
        for c in charts:
            if (sha, c.key) in known:
                continue
            known.add((sha, c.key))
            registry_rows.append(_registry_row(c, p, fetched_at, run_id, now, res))
        results.append(res)
    if registry_rows:
        df = pd.DataFrame(registry_rows, columns=_REGISTRY_COLUMNS)
        _insert(con, "raw.payloads", df, [(c, None) for c in _REGISTRY_COLUMNS], message,
                run_id=run_id, payloads=len(registry_rows))
    return results


@dataclass
class LandResult:
    """What ``land_day`` did for one chart date, per country."""

    chart_date: dt.date
    rows_inserted: int = 0
    snapshot_id: int | None = None
    countries: dict[str, dict] = field(default_factory=dict)  # country -> {rows, payloads, urls, failures}
    failures: list[dict] = field(default_factory=list)  # {country, source, payload_sha256, error}

    @property
    def payload_hashes(self) -> list[str]:
        return sorted({h for c in self.countries.values() for h in c["payloads"]})

    @property
    def data_version(self) -> str:
        """Hash of the day's current payloads: unchanged feeds give the same version."""
        return hashlib.sha256("\n".join(self.payload_hashes).encode()).hexdigest()[:16]


def land_day(con: duckdb.DuckDBPyConnection, store: PayloadStore, chart_date: dt.date, *, run_id: str,
             countries: Sequence[str] | None = None, asset: str = "raw/chart_entries") -> LandResult:
    """Land all staged payloads of ``chart_date`` not yet in ``raw.chart_entries`` (one commit)."""
    lake.ensure_raw_schema(con)
    country_filter = ""
    params: list = [chart_date]
    if countries:
        country_filter = f"and p.country in ({', '.join('?' for _ in countries)})"
        params += list(countries)
    pending = con.execute(f"""
        select distinct p.payload_sha256, p.source_url, p.source_format, p.fetched_at, p.country
        from raw.payloads p
        where p.status = 'staged' and p.chart_date = ? {country_filter}
          and not exists (
            select 1 from raw.chart_entries e
            where e.payload_sha256 = p.payload_sha256 and e.chart_date = p.chart_date and e.country = p.country
              and e.device = p.device and e.chart = p.chart and e.genre_id is not distinct from p.genre_id)
        order by p.fetched_at, p.payload_sha256""", params).fetchall()
    result = LandResult(chart_date)
    now = utcnow()
    frames: list[pd.DataFrame] = []
    for sha, source_url, source_format, fetched_at, _country in pending:
        content = store.get(sha)
        meta = store.meta(sha)
        try:
            charts = parse_payload(content, source=meta.get("source") or source_url or sha, sha256=sha,
                                   chart_date=_parse_date(meta.get("chart_date_override")),
                                   request=_request_from(meta.get("request")))
        except PayloadError as exc:  # registered as parsable, so the parser changed: report, do not guess
            result.failures.append({"country": _country, "source": source_url, "payload_sha256": sha,
                                    "error": str(exc)})
            continue
        for c in charts:
            if c.key.chart_date != chart_date or (countries and c.key.country not in countries):
                continue
            frames.append(_rows_frame(c, sha=sha, source_url=source_url, fetched_at=fetched_at,
                                      run_id=run_id, ingested_at=now))
    if frames:
        df = pd.concat(frames, ignore_index=True)
        _insert(con, "raw.chart_entries", df, RAW_COLUMNS, f"land {chart_date.isoformat()}", asset=asset,
                partition=chart_date.isoformat(), run_id=run_id, rows=len(df))
        result.rows_inserted = len(df)
        result.snapshot_id = lake.current_snapshot(con)
    _summarise(con, result, countries)
    return result


def _summarise(con, result: LandResult, countries: Sequence[str] | None) -> None:
    """Fill per-country figures for the day's *current* data (what downstream sees), new or not."""
    filt, params = "", [result.chart_date]
    if countries:
        filt = f"and country in ({', '.join('?' for _ in countries)})"
        params += list(countries)
    for country, rows, payloads, urls in con.execute(f"""
        with versions as (
            select store, country, device, chart, genre_id, chart_date, payload_sha256,
                   any_value(source_url) as source_url, count(*) as n,
                   max(fetched_at) as fetched_at, max(ingested_at) as ingested_at
            from raw.chart_entries where chart_date = ? {filt}
            group by store, country, device, chart, genre_id, chart_date, payload_sha256),
        current as (
            select * from versions qualify row_number() over (
                partition by store, country, device, chart, genre_id, chart_date
                order by fetched_at desc, ingested_at desc, payload_sha256 desc) = 1)
        select country, sum(n), list(distinct payload_sha256 order by payload_sha256),
               list(distinct source_url order by source_url)
        from current group by country order by country""", params).fetchall():
        result.countries[country] = {"rows": int(rows), "payloads": payloads, "urls": [u for u in urls if u],
                                     "failures": []}
    for country, source, sha, error in con.execute(f"""
        select country, source_url, payload_sha256, error from raw.payloads
        where status = 'failed' and chart_date = ? {filt} order by country, source_url""", params).fetchall():
        failure = {"country": country, "source": source, "payload_sha256": sha, "error": error}
        result.failures.append(failure)
        result.countries.setdefault(country or "??", {"rows": 0, "payloads": [], "urls": [], "failures": []})[
            "failures"].append(failure)


def stage_files(con, store: PayloadStore, paths: Iterable[Path], *, run_id: str) -> list[StageResult]:
    """Stage saved payload files (Apple v2, legacy, or a known archive layout). Directories are walked."""
    sources = []
    for path in _expand(paths):
        sources.append(PayloadSource(content=path.read_bytes(), source=str(path), source_url=path.resolve().as_uri()))
    return stage(con, store, sources, run_id=run_id, message=f"stage {len(sources)} files")


def _expand(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"no such file or directory: {p}")
    return out


def _rows_frame(chart, *, sha, source_url, fetched_at, run_id, ingested_at) -> pd.DataFrame:
    k = chart.key
    df = pd.DataFrame.from_records(chart.entries)
    for name, value in (("store", k.store), ("country", k.country), ("device", k.device), ("chart", k.chart),
                        ("genre_id", k.genre_id), ("chart_date", k.chart_date)):
        df[name] = value
    df["payload_sha256"] = sha
    df["source_url"] = source_url
    df["source_format"] = chart.source_format
    df["fetched_at"] = fetched_at
    df["run_id"] = run_id
    df["ingested_at"] = ingested_at
    for name, _ in RAW_COLUMNS:
        if name not in df:
            df[name] = None
    df = df[[n for n, _ in RAW_COLUMNS]]
    # Keep every column an object column: DuckDB then casts from Python values, not from pandas' guesses.
    return df.astype(object).where(df.notna(), None)


_REGISTRY_COLUMNS = ["payload_sha256", "store", "country", "device", "chart", "genre_id", "chart_date",
                     "source_url", "source_format", "http_status", "fetched_at", "run_id", "registered_at",
                     "status", "error", "entry_count"]


def _registry_row(chart, p: PayloadSource, fetched_at, run_id, now, res: StageResult) -> dict:
    key = chart.key if chart is not None else None
    return {
        "payload_sha256": res.sha256 or None,
        "store": key.store if key else "apple",
        "country": key.country if key else res.country,
        "device": key.device if key else getattr(p.request, "device", None),
        "chart": key.chart if key else getattr(p.request, "chart", None),
        "genre_id": key.genre_id if key else getattr(p.request, "genre_id", None),
        "chart_date": key.chart_date if key else res.chart_date,
        "source_url": p.source_url or p.source,
        "source_format": chart.source_format if chart is not None else None,
        "http_status": p.http_status,
        "fetched_at": fetched_at,
        "run_id": run_id,
        "registered_at": now,
        "status": "staged" if chart is not None else "failed",
        "error": res.error,
        "entry_count": len(chart.entries) if chart is not None else None,
    }


def _registered_keys(con) -> set:
    known: set = set()
    for sha, store_, country, device, chart, genre_id, chart_date, status in con.execute(
        "select payload_sha256, store, country, device, chart, genre_id, chart_date, status from raw.payloads "
        "where payload_sha256 is not null"
    ).fetchall():
        if status == "failed":
            known.add((sha, None))
        else:
            known.add((sha, ChartKey(store_, country, device, chart, genre_id, chart_date)))
    return known


def _hints(p: PayloadSource) -> tuple[str | None, dt.date | None]:
    """Country and date of a payload that could not be parsed, from its request or its file name."""
    country = getattr(p.request, "country", None)
    chart_date = p.chart_date
    name = Path(p.source).name.lower() if p.source else ""
    if chart_date is None:
        m = _DATE_IN_NAME.search(p.source or "")
        chart_date = _parse_date(m.group(1)) if m else (p.fetched_at.date() if p.fetched_at else None)
    if country is None:
        m = _COUNTRY_IN_NAME.search(name)
        country = m.group(1) if m else None
    return country, chart_date


def _request_from(data: dict | None):
    if not data:
        return None
    from orchestration.sources.feeds import FeedRequest

    return FeedRequest(**data)


def _parse_date(value) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _insert(con, table: str, df: pd.DataFrame, columns, message: str, **extra) -> None:
    """Insert a frame in one labelled DuckLake commit."""
    cols = ", ".join(n for n, _ in columns)
    exprs = ", ".join(f"cast({n} as {t}) as {n}" if t else n for n, t in columns)
    con.register("_chartlake_batch", df)
    con.execute("BEGIN")
    try:
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {exprs} FROM _chartlake_batch")
        lake.set_commit_message(con, message, **extra)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_chartlake_batch")
