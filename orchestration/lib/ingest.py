"""From payloads to the lake's raw layer, in two steps.

1. ``stage_*``: a payload (fetched or imported) goes into the raw store and is registered in ``raw.payloads`` with
   the chart keys it holds, or with its error if it cannot be parsed. One lake commit per batch.
2. ``land_day``: every staged chart of a chart date that is not yet in ``raw.chart_entries`` is inserted, all
   countries of the day in one commit, from the parse kept at stage time when staging ran in this process
   (``PayloadStore.parsed``), else parsed again from the store with the context recorded beside the payload. A
   payload that already landed for a chart key is never landed twice, so re-running a day with an unchanged feed
   changes nothing; a different payload for the same chart key lands as a new version beside the old one.

A file named in chartlake's own layout, ``<country>-<device>-<chart>[-<YYYY-MM-DD>].json``, promises that chart:
a payload saying otherwise fails, as a fetched payload contradicting its request does.

Registry and rows live in the lake, so their history is DuckLake's snapshots. No Dagster here: the raw assets,
the CLI and the inbox sensor all call these functions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import duckdb
import numpy as np
import pandas as pd

from orchestration import config
from orchestration.lib import lake, payload_files, repeats
from orchestration.lib.payload_store import PayloadStore, utcnow
from orchestration.sources.canonical import (ENTRY_FIELDS, RAW_COLUMNS, STORE_DEVICES, ChartKey, ParsedChart,
                                             PayloadError)
from orchestration.sources import play
from orchestration.sources.parsers import parse_payload
from orchestration.sources.validate import InvalidValue, Limits, validate_charts

_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
# A capture time an archive wrote into its file names: ``...__2024-12-28T120432Z__...`` (ohbarye),
# ``...__committed-2026-02-17T0039Z__...`` (WBGame's overall snapshots). UTC, seconds optional.
_TIME_IN_NAME = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})T(\d{2})(\d{2})(\d{2})?Z")
_COUNTRY_IN_NAME = re.compile(r"(?:^|[-_/])([a-z]{2})(?=[-_])")
# chartlake's own file layout, as the demo writes it. Strict on purpose: archive names such as
# ``games-2026-03-08-us-top-paid.json`` promise nothing and are not checked.
_CHARTLAKE_NAME = re.compile(
    r"^(?P<country>[a-z]{2})-(?P<device>iphone|ipad|android)-(?P<chart>top-free|top-paid|top-grossing)"
    r"(?:-(?P<date>\d{4}-\d{2}-\d{2}))?\.json$")
# Payloads stored and looked up per chunk: bounds the bytes held at once and the size of one registry query.
_STAGE_CHUNK = 256


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
    expect: dict | None = None  # {country, device, chart} promised by a chartlake-layout file name


def stage(con: duckdb.DuckDBPyConnection, store: PayloadStore, payloads: Iterable[PayloadSource], *,
          run_id: str, message: str = "stage payloads") -> list[StageResult]:
    """Store and register payloads; one lake commit for the whole batch. Never raises for a bad payload.

    Every chart a payload holds is checked field by field (``sources.validate``): a payload with one value out of
    range is registered ``failed``, naming the field and value, and kept in the raw store like any bad payload.
    """
    lake.ensure_raw_schema(con)
    now = utcnow()
    limits = Limits.now()  # one clock and one country list for the whole batch
    max_bytes = config.max_payload_bytes()
    results: list[StageResult] = []
    registry_rows: list[dict] = []
    repeat_rows: list[dict] = []
    known: set = set()
    looked_up: set[str] = set()
    cache = store.parsed
    cache.clear()  # keep only this batch: a process that stages and never lands holds one batch at most
    for chunk in _chunks(payloads, _STAGE_CHUNK):
        fetched = [(p.fetched_at or now).replace(tzinfo=None) for p in chunk]
        for p in chunk:
            if p.content is not None and len(p.content) > max_bytes and not p.fetch_error:
                p.fetch_error = payload_files.too_large(p.source, len(p.content), max_bytes)
                p.content = None  # not stored: the limit is there so that such a payload is never held or kept
        usable = [i for i, p in enumerate(chunk) if p.content is not None and not p.fetch_error]
        sidecars = {i: _sidecar(chunk[i], fetched[i], run_id) for i in usable}
        stored = dict(zip(usable, store.put_many([(chunk[i].content, sidecars[i]) for i in usable])))
        batch_hashes = {s.sha256 for s in stored.values()} - looked_up
        known |= _registered_keys(con, batch_hashes)
        looked_up |= batch_hashes
        for i, p in enumerate(chunk):
            res = _stage_one(p, stored.get(i), sidecars.get(i), fetched[i], known, registry_rows, cache,
                             run_id=run_id, now=now, limits=limits, repeat_rows=repeat_rows)
            results.append(res)
    if registry_rows:
        df = pd.DataFrame(registry_rows, columns=_REGISTRY_COLUMNS)
        _insert(con, "raw.payloads", df, [(c, None) for c in _REGISTRY_COLUMNS], message,
                run_id=run_id, payloads=len(registry_rows))
    # After the registry: a chart registered without its repeats fails the raw check (gaps), never passes wrongly.
    repeats.record(con, repeat_rows, run_id=run_id, now=now)
    return results


def _stage_one(p: PayloadSource, stored, sidecar: dict | None, fetched_at, known: set, registry_rows: list,
               cache, *, run_id: str, now, limits: Limits, repeat_rows: list | None = None) -> StageResult:
    hint_country, hint_date = _hints(p)
    if stored is None:
        # Nothing to store: record the failure so the partition shows as failed with its URL.
        res = StageResult(p.source, "", "failed", error=p.fetch_error or "no payload",
                          country=hint_country, chart_date=hint_date)
        registry_rows.append(_registry_row(None, p, fetched_at, run_id, now, res))
        return res
    sha = stored.sha256

    def failed(error: str, country, chart_date, key=None) -> StageResult:
        res = StageResult(p.source, sha, "failed", error=error, country=country, chart_date=chart_date)
        if (sha, None) not in known:
            registry_rows.append(_registry_row(None, p, fetched_at, run_id, now, res, key=key))
            known.add((sha, None))
        return res

    try:
        charts = parse_payload(p.content, source=p.source, sha256=sha, chart_date=p.chart_date, request=p.request)
    except PayloadError as exc:
        return failed(str(exc), hint_country, hint_date)
    except Exception as exc:  # noqa: BLE001 - a parser's bug on one payload must not sink the batch
        return failed(str(PayloadError(f"the parser failed on this payload ({type(exc).__name__}: {exc})",
                                       source=p.source, sha256=sha)), hint_country, hint_date)
    try:
        validate_charts(charts, source=p.source, sha256=sha, limits=limits)
    except InvalidValue as exc:
        # The chart is known: register the failure under its country and day (so that day's check sees it),
        # unless that is the value refused.
        key = exc.key or charts[0].key
        if exc.field == "chart_date":
            day = hint_date if hint_date and limits.first_date <= hint_date <= limits.last_date else None
        else:
            day = key.chart_date
        # Its chart (store, device, chart, genre) is known too: the quarantine holds back that chart only.
        return failed(str(exc), hint_country if exc.field == "country" else key.country, day, key)
    mismatch = _name_mismatch(p, charts, sha) if p.expect else None
    if mismatch is not None:
        # Registered under the chart its name promised; the payload's own date when the path has none.
        return failed(str(mismatch), p.expect["country"],
                      p.chart_date or _date_in_path(p.source) or charts[0].key.chart_date)
    new_keys = [c.key for c in charts if (sha, c.key) not in known]
    res = StageResult(p.source, sha, "staged" if new_keys else "unchanged", [c.key for c in charts],
                      sum(len(c.entries) for c in charts),
                      country=charts[0].key.country, chart_date=charts[0].key.chart_date)
    for c in charts:
        if (sha, c.key) in known:
            continue
        known.add((sha, c.key))
        registry_rows.append(_registry_row(c, p, fetched_at, run_id, now, res))
        if repeat_rows is not None:
            repeat_rows.extend(repeats.rows_for(c, sha))
    if new_keys and _land_parses_as_stage(p):
        cache.put((sha, _parse_context(sidecar)), [_chart_rows(c) for c in charts], res.entry_count)
    return res


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _sidecar(p: PayloadSource, fetched_at, run_id: str) -> dict:
    return {
        "source": p.source, "source_url": p.source_url, "http_status": p.http_status, "etag": p.etag,
        "last_modified": p.last_modified, "fetched_at": fetched_at.isoformat(), "run_id": run_id,
        # The parse context, so that landing re-reads the payload exactly as staging did.
        "chart_date_override": p.chart_date.isoformat() if p.chart_date else None,
        "request": dataclasses.asdict(p.request) if dataclasses.is_dataclass(p.request) else None,
    }


def _parse_context(sidecar: dict) -> str:
    """What ``land_day`` parses a payload with, from its sidecar: equal contexts give equal charts."""
    return json.dumps([sidecar.get("source"), sidecar.get("chart_date_override"), sidecar.get("request")],
                      sort_keys=True, default=str)


def _land_parses_as_stage(p: PayloadSource) -> bool:
    """True when landing, from the sidecar, would parse with exactly the arguments staging used."""
    if not p.source:
        return False  # landing would name the payload by its URL or hash instead
    chart_date = p.chart_date.date() if isinstance(p.chart_date, dt.datetime) else p.chart_date
    if _parse_date(p.chart_date.isoformat() if p.chart_date else None) != chart_date:
        return False
    if p.request is None:
        return True
    if not dataclasses.is_dataclass(p.request):
        return False  # not recorded in the sidecar: landing parses without it
    recorded = json.loads(json.dumps(dataclasses.asdict(p.request), default=str))
    try:
        return _request_from(recorded) == p.request
    except (TypeError, ValueError):
        return False


def _expected_from_name(path: Path) -> dict | None:
    m = _CHARTLAKE_NAME.match(path.name)
    return {"country": m["country"], "device": m["device"], "chart": m["chart"]} if m else None


def _store_hint(p: PayloadSource) -> str:
    """The store of a payload that did not parse: what its request or chartlake-layout name says."""
    device = getattr(p.request, "device", None) or (p.expect or {}).get("device")
    if device is None and play.path_hints(p.source):
        device = play.DEVICE
    return next((s for s, devices in STORE_DEVICES.items() if device in devices), "apple")


def _name_mismatch(p: PayloadSource, charts: list[ParsedChart], sha: str) -> PayloadError | None:
    """The file name promised another chart than the payload holds: its rows would land under the wrong key."""
    for c in charts:
        for name in ("country", "device", "chart"):
            got, want = getattr(c.key, name), p.expect[name]
            if got != want:
                return PayloadError(
                    f"{name} mismatch: payload says {got!r}, file name says {want!r} ({Path(p.source).name} "
                    f"must hold the {want} chart its name promises)", source=p.source, sha256=sha)
    return None


@dataclass
class LandResult:
    """What ``land_day`` did for one chart date, per country."""

    chart_date: dt.date
    rows_inserted: int = 0
    snapshot_id: int | None = None
    # country -> {rows, payloads, urls, quarantined, failures}: the current versions (lake.payload_versions)
    countries: dict[str, dict] = field(default_factory=dict)
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
    """Land all staged charts of ``chart_date`` not yet in ``raw.chart_entries`` (one commit)."""
    lake.ensure_raw_schema(con)
    country_filter = ""
    params: list = [chart_date]
    if countries:
        country_filter = f"and p.country in ({', '.join('?' for _ in countries)})"
        params += list(countries)
    pending = con.execute(f"""
        select p.payload_sha256, p.store, p.country, p.device, p.chart, p.genre_id, p.source_url, p.fetched_at,
               p.captured_at
        from raw.payloads p
        where p.status = 'staged' and p.chart_date = ? {country_filter}
          and not exists (
            select 1 from raw.chart_entries e
            where e.payload_sha256 = p.payload_sha256 and e.chart_date = p.chart_date and e.country = p.country
              and e.device = p.device and e.chart = p.chart and e.genre_id is not distinct from p.genre_id)
        order by p.fetched_at, p.payload_sha256""", params).fetchall()
    # Per payload, the charts still to land and their lineage. A payload holding several charts (an archive's
    # aggregate file) has one registry row per chart and must land each chart once.
    todo: dict[str, dict[ChartKey, tuple]] = {}
    for sha, store_, country, device, chart, genre_id, source_url, fetched_at, captured_at in pending:
        key = ChartKey(store_, country, device, chart, genre_id, chart_date)
        todo.setdefault(sha, {}).setdefault(key, (source_url, fetched_at, captured_at))
    result = LandResult(chart_date)
    parts: list[tuple] = []
    cache = store.parsed
    for sha, keys in todo.items():
        meta = store.meta(sha)
        context = (sha, _parse_context(meta)) if meta.get("source") else None
        # A hit skips reading the payload back: this process stored it, hashed, when it staged it.
        charts = cache.get(context) if context else None
        if charts is None:
            source_url = next(iter(keys.values()))[0]
            try:
                charts = [_chart_rows(c) for c in parse_payload(
                    store.get(sha), source=meta.get("source") or source_url or sha, sha256=sha,
                    chart_date=_parse_date(meta.get("chart_date_override")),
                    request=_request_from(meta.get("request")))]
            except PayloadError as exc:  # registered as parsable, so the parser changed: report, do not guess
                result.failures.append({"country": next(iter(keys)).country, "source": source_url,
                                        "payload_sha256": sha, "error": str(exc)})
                continue
        elif all(c.key in keys for c in charts):
            cache.discard(context)  # every chart of it lands now: nothing left to land from this parse
        for c in charts:
            if c.key in keys:
                source_url, fetched_at, captured_at = keys[c.key]
                parts.append((c, sha, source_url, fetched_at, captured_at))
    if parts:
        df = _day_frame(parts, run_id=run_id, ingested_at=utcnow())
        # The pending list above was read before this transaction: a chart that another writer landed since is
        # skipped by the insert itself (the home's writer lock keeps two landings from overlapping at all).
        result.rows_inserted = _insert(
            con, "raw.chart_entries", df, RAW_COLUMNS, f"land {chart_date.isoformat()}", where=_NOT_LANDED,
            asset=asset, partition=chart_date.isoformat(), run_id=run_id, rows=len(df))
        result.snapshot_id = lake.current_snapshot(con)
    _summarise(con, result, countries)
    return result


def _summarise(con, result: LandResult, countries: Sequence[str] | None) -> None:
    """Fill per-country figures for the day's *current* data (what downstream sees), new or not."""
    filt, params = "", [result.chart_date]
    if countries:
        filt = f"and country in ({', '.join('?' for _ in countries)})"
        params += list(countries)
    rel = lake.versions_relation(con)
    # Current versions (what downstream sees), and per country how many newest versions the quarantine holds back.
    for country, rows, payloads, urls, held in con.execute(f"""
        select country, coalesce(sum(row_count) filter (where is_current), 0),
               coalesce(list(distinct payload_sha256 order by payload_sha256) filter (where is_current), []),
               coalesce(list(distinct source_url order by source_url) filter (where is_current), []),
               count(*) filter (where is_quarantined and version_rank = 1)
        from {rel} where chart_date = ? {filt}
        group by country order by country""", params).fetchall():
        result.countries[country] = {"rows": int(rows), "payloads": payloads, "urls": [u for u in urls if u],
                                     "quarantined": int(held), "failures": []}
    for country, source, sha, error in con.execute(f"""
        select country, source_url, payload_sha256, error from raw.payloads
        where status = 'failed' and chart_date = ? {filt} order by country, source_url""", params).fetchall():
        failure = {"country": country, "source": source, "payload_sha256": sha, "error": error}
        result.failures.append(failure)
        result.countries.setdefault(country or "??", {"rows": 0, "payloads": [], "urls": [], "quarantined": 0,
                                                      "failures": []})[
            "failures"].append(failure)


def stage_files(con, store: PayloadStore, paths: Iterable[Path], *, run_id: str,
                chart_date: dt.date | None = None, walk_named_links: bool = True) -> list[StageResult]:
    """Stage saved payload files (Apple v2, legacy, or a known archive layout). Directories are walked.

    Only regular files are read: a symbolic link (which could point anywhere, /etc/passwd included), a FIFO or a
    device is refused by name, and so is a file over ``CHARTLAKE_MAX_PAYLOAD_BYTES``, before it is read. Each is
    registered ``failed`` with its path; the other files of the import go on. ``chart_date`` dates every file
    (``chartlake import --chart-date``): for payloads with no date of their own, such as an undated Google Play
    ``list()`` file. ``walk_named_links=False``: a link among ``paths`` is refused like any other, even one to a
    folder (the inbox sensor: nobody chose that folder).
    """
    files = payload_files.expand(paths, walk_named_links)
    max_bytes = config.max_payload_bytes()
    # Read lazily: ``stage`` holds one chunk of payloads in memory, not the whole import.
    sources = (_file_source(path, max_bytes, chart_date) for path in files)
    return stage(con, store, sources, run_id=run_id, message=f"stage {len(files)} files")


def _file_source(path: Path, max_bytes: int, chart_date: dt.date | None = None) -> PayloadSource:
    source = PayloadSource(content=None, source=str(path),
                           source_url=(path.absolute() if path.is_symlink() else path.resolve()).as_uri(),
                           expect=_expected_from_name(path), chart_date=chart_date)
    source.content, source.fetch_error = payload_files.read_regular(path, max_bytes)
    return source


@dataclass
class _ChartRows:
    """One parsed chart as columns, as landing inserts it: built once per parse (and kept from stage time)."""

    key: ChartKey
    source_format: str
    n: int
    columns: dict[str, list]  # ENTRY_FIELDS -> values; release_date and price as text


def _chart_rows(chart: ParsedChart) -> _ChartRows:
    entries = chart.entries
    cols = {f: [e[f] for e in entries] for f in ENTRY_FIELDS}
    # Text, cast by the insert: DuckDB types an object column from a sample of its rows, so Decimal prices made
    # a later 11000.00 overflow the DECIMAL(9,5) guessed from small ones. format(): no exponent ("1E+1").
    cols["release_date"] = [v if v is None or isinstance(v, str) else v.isoformat() for v in cols["release_date"]]
    cols["price"] = [v if v is None or isinstance(v, str) else format(v, "f") for v in cols["price"]]
    return _ChartRows(chart.key, chart.source_format, len(entries), cols)


def _day_frame(parts: list[tuple], *, run_id: str, ingested_at: dt.datetime) -> pd.DataFrame:
    """One typed frame for the day from ``(chart rows, sha, source_url, fetched_at, captured_at)`` parts, in
    RAW_COLUMNS order."""
    counts = np.array([c.n for c, *_ in parts], dtype=np.int64)
    n = int(counts.sum())

    def per_chart(values: list, dtype="object"):
        return np.repeat(np.array(values, dtype=dtype), counts)

    def text(values) -> pd.api.extensions.ExtensionArray:
        return pd.array(values, dtype="str")

    keys = [c.key for c, *_ in parts]
    data: dict[str, object] = {
        "store": text(per_chart([k.store for k in keys])),
        "country": text(per_chart([k.country for k in keys])),
        "device": text(per_chart([k.device for k in keys])),
        "chart": text(per_chart([k.chart for k in keys])),
        "genre_id": pd.array(per_chart([k.genre_id for k in keys]), dtype="Int64"),
        "chart_date": per_chart([k.chart_date for k in keys], "datetime64[D]"),
    }
    for f in ENTRY_FIELDS:
        values = list(itertools.chain.from_iterable(c.columns[f] for c, *_ in parts))
        data[f] = np.array(values, dtype=np.int64) if f == "rank" else text(values)
    data["payload_sha256"] = text(per_chart([p[1] for p in parts]))
    data["source_url"] = text(per_chart([p[2] for p in parts]))
    data["source_format"] = text(per_chart([c.source_format for c, *_ in parts]))
    data["fetched_at"] = per_chart([p[3] for p in parts], "datetime64[us]")
    data["captured_at"] = per_chart([p[4] for p in parts], "datetime64[us]")
    data["run_id"] = text(np.full(n, run_id, dtype=object))
    data["ingested_at"] = np.full(n, np.datetime64(ingested_at, "us"))
    return pd.DataFrame({name: data[name] for name, _ in RAW_COLUMNS}, copy=False)


_REGISTRY_COLUMNS = ["payload_sha256", "store", "country", "device", "chart", "genre_id", "chart_date",
                     "source_url", "source_format", "http_status", "fetched_at", "run_id", "registered_at",
                     "status", "error", "entry_count", "captured_at"]


def _registry_row(chart, p: PayloadSource, fetched_at, run_id, now, res: StageResult, key=None) -> dict:
    """The registry row of one chart of a payload, or (``chart`` None) of a payload that failed: its chart key as
    far as known (``key``: the parsed chart whose value was refused; else the request's or the name's), with the
    failure's own country and date, which may be the value refused."""
    parsed = chart.key if chart is not None else None
    known = parsed or key
    return {
        "payload_sha256": res.sha256 or None,
        "store": known.store if known else _store_hint(p),
        "country": parsed.country if parsed else res.country,
        "device": known.device if known else getattr(p.request, "device", None) or (p.expect or {}).get("device"),
        "chart": known.chart if known else getattr(p.request, "chart", None) or (p.expect or {}).get("chart"),
        "genre_id": known.genre_id if known else getattr(p.request, "genre_id", None),
        "chart_date": parsed.chart_date if parsed else res.chart_date,
        "source_url": p.source_url or p.source,
        "source_format": chart.source_format if chart is not None else None,
        "http_status": p.http_status,
        "fetched_at": fetched_at,
        "run_id": run_id,
        "registered_at": now,
        "status": "staged" if chart is not None else "failed",
        "error": res.error,
        "entry_count": len(chart.entries) if chart is not None else None,
        "captured_at": captured_at(p, chart) if chart is not None else None,
    }


def captured_at(p: PayloadSource, chart: ParsedChart) -> dt.datetime:
    """When ``chart`` was captured, which orders its versions (``lake.payload_versions``), naive UTC.

    A fetch: when it was made. An imported file: the time its archive records, in its file name first (the
    scraper's own record), then in the payload (a feed's ``updated`` stamp); without either, the chart date's
    midnight, so an undated re-import never outranks a dated capture of that day. Never the import time: a
    later capture of a chart date wins whatever order the files were imported in.
    """
    if p.fetched_at is not None:
        at = p.fetched_at
        return at.astimezone(dt.timezone.utc).replace(tzinfo=None) if at.tzinfo else at
    m = _TIME_IN_NAME.search(Path(p.source).name if p.source else "")
    if m:
        try:
            return dt.datetime.fromisoformat(f"{m[1]}T{m[2]}:{m[3]}:{m[4] or '00'}")
        except ValueError:
            pass  # not a real time: the payload or the chart date says when
    if chart.captured_at is not None:
        return chart.captured_at
    return dt.datetime.combine(chart.key.chart_date, dt.time())


def _registered_keys(con, hashes: set[str]) -> set:
    """What the registry already holds for these payloads: (sha, ChartKey) per staged chart, (sha, None) if failed."""
    known: set = set()
    if not hashes:
        return known
    for sha, store_, country, device, chart, genre_id, chart_date, status in con.execute(
        "select payload_sha256, store, country, device, chart, genre_id, chart_date, status from raw.payloads "
        "where payload_sha256 in (select unnest(?::varchar[]))", [sorted(hashes)]
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
    play_hint = play.path_hints(p.source)  # Play archive names carry their storefront in the folder or name
    if chart_date is None:
        chart_date = (_date_in_path(p.source) or play_hint.get("date")
                      or (p.fetched_at.date() if p.fetched_at else None))
    if country is None:
        m = _COUNTRY_IN_NAME.search(name)
        country = m.group(1) if m else play_hint.get("country")
    return country, chart_date


def _date_in_path(source: str | None) -> dt.date | None:
    m = _DATE_IN_NAME.search(source or "")
    return _parse_date(m.group(1)) if m else None


def _request_from(data: dict | None):
    if not data:
        return None
    if data.get("device") == play.DEVICE:  # a Google Play fetch: the request a Play source recorded
        return play.PlayRequest(**data)
    from orchestration.sources.feeds import FeedRequest

    return FeedRequest(**data)


def _parse_date(value) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


_NOT_LANDED = """where not exists (
    select 1 from raw.chart_entries e
    where e.payload_sha256 = b.payload_sha256 and e.chart_date = b.chart_date and e.country = b.country
      and e.store = b.store and e.device = b.device and e.chart = b.chart and e.genre_id is not distinct from b.genre_id)"""


def _insert(con, table: str, df: pd.DataFrame, columns, message: str, *, where: str = "", **extra) -> int:
    """Insert a frame (the rows of it ``where`` keeps, a filter on ``b``) in one labelled DuckLake commit;
    returns the rows inserted."""
    cols = ", ".join(n for n, _ in columns)
    exprs = ", ".join(f"cast({n} as {t}) as {n}" if t else n for n, t in columns)
    con.register("_chartlake_batch", df)
    con.execute("BEGIN")
    try:
        inserted = con.execute(
            f"INSERT INTO {table} ({cols}) SELECT * FROM (SELECT {exprs} FROM _chartlake_batch) b {where}"
        ).fetchone()[0]
        lake.set_commit_message(con, message, **extra)
        con.execute("COMMIT")
        return int(inserted)
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_chartlake_batch")
