"""The ``chartlake`` command: thin verbs over ``lib/`` and the Dagster job API.

Runs go through the same Dagster assets the web UI materializes, recorded in the home's Dagster instance
(``<home>/dagster``, which ``make ui`` uses too), so a CLI run shows in the UI's run history.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from orchestration.config import DBT_PROJECT_DIR, Home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chartlake", description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="chartlake home (default: $CHARTLAKE_HOME or data/)")
    sub = parser.add_subparsers(dest="command", required=True)
    # The commands that write the home take its writer lock (one writer per home, lib/home_lock.py).
    writer = argparse.ArgumentParser(add_help=False)
    writer.add_argument("--wait", nargs="?", type=_seconds, const=float("inf"), default=0.0, metavar="SECONDS",
                        help="if another writer holds the home, wait for it (at most SECONDS; no value: as long as "
                             "it takes) instead of exiting with status 2")

    sub.add_parser("setup", parents=[writer],
                   help="install DuckDB extensions from the pip packages and parse the dbt project (offline)")

    p = sub.add_parser("import", parents=[writer],
                       help="import saved payload files or archive folders into the raw store and lake")
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--no-land", action="store_true", help="only stage the payloads; land them later with `run`")
    p.add_argument("--chart-date", dest="chart_date", type=_date, default=None,
                   help="the chart date of every file given, for payloads that carry none (an undated Google Play list())")

    p = sub.add_parser("demo", parents=[writer],
                       help="generate the simulated January 2025 demo data, import it and run the pipeline")
    p.add_argument("--countries", default=None, help="comma-separated storefronts (default: the 12 demo ones)")
    p.add_argument("--start", type=_date, default=dt.date(2025, 1, 1))
    p.add_argument("--end", type=_date, default=dt.date(2025, 1, 31), help="last chart date (inclusive)")
    p.add_argument("--depth", type=int, default=100, help="positions per chart, 1..200 (iPhone v2 charts: at most 100)")

    p = sub.add_parser("run", parents=[writer], help="land, build, check and publish what the lake holds")
    p.add_argument("--from", dest="start", type=_date, help="first chart date (default: earliest staged)")
    p.add_argument("--to", dest="end", type=_date, help="last chart date, inclusive (default: latest staged)")

    sub.add_parser("status", help="the lake's state: staged dates, failed payloads, recent snapshots")

    p = sub.add_parser("versions", help="publishes (id, time, lake snapshot, partitions, checks) and recent lake snapshots")
    p.add_argument("--snapshots", type=int, default=10, help="how many recent lake snapshots to list (default 10)")

    p = sub.add_parser("query", help="read-only SQL against the marts as published (marts by bare name)")
    p.add_argument("sql", help='e.g. "select * from mart_daily_rankings where rank = 1"')
    p.add_argument("--as-of", dest="as_of", metavar="PUBLISH_ID|TIMESTAMP",
                   help="a publish id, or a UTC time (the latest publish at or before it); default: the current serving DB")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--timeout", type=_positive_float, default=60.0, metavar="SECONDS",
                   help="stop the query after this long (default 60; Ctrl-C stops it too)")
    p.add_argument("--memory-limit", dest="memory_limit", default="1GB",
                   help="DuckDB memory limit for the query, no spilling to disk (default 1GB)")
    p.add_argument("--max-rows", dest="max_rows", type=int, default=100_000,
                   help="refuse results longer than this (default 100000): add a LIMIT or aggregate")

    p = sub.add_parser("diff", help="rows added, removed and changed per mart and partition between two publishes")
    p.add_argument("a", metavar="A", help="publish id or UTC time")
    p.add_argument("b", metavar="B", help="publish id or UTC time")
    p.add_argument("--mart", help="only this mart")

    p = sub.add_parser("lineage", help="the raw payloads, sources, runs and lake snapshots one mart row came from")
    p.add_argument("mart", metavar="MART")
    p.add_argument("keys", metavar="KEY", nargs="+", help="column=value pairs that pick one row, e.g. country=us rank=1")
    p.add_argument("--as-of", dest="as_of", metavar="PUBLISH_ID|TIMESTAMP", help="the row as of that publish")

    p = sub.add_parser("migrate-catalog", help="copy the lake's SQLite catalog, with its history, into an empty "
                                               "PostgreSQL database (then set CHARTLAKE_LAKE_CATALOG)")
    p.add_argument("--to", dest="dsn", required=True, metavar="DSN", help="libpq DSN or postgresql:// URI")

    args = parser.parse_args(argv)
    try:
        _check_args(args)
        home = _home(args.home)
        _check_environment()
        # Everything downstream (dbt profile, Dagster resources) resolves the same home.
        os.environ["CHARTLAKE_HOME"] = str(home.root)
        if args.command in WRITERS:
            with _writer(home, args, sys.argv[1:] if argv is None else list(argv)):
                return COMMANDS[args.command](home, args)
        return COMMANDS[args.command](home, args)
    except CliError as exc:
        print(f"chartlake {args.command}: error: {exc}", file=sys.stderr)
        return 2


class CliError(Exception):
    pass


WRITERS = {"setup", "import", "demo", "run"}


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {value!r}")
    return number


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}")
    return seconds


def _check_args(args) -> None:
    """What argparse cannot check by type alone, before anything is locked or written."""
    if args.command == "demo":
        from orchestration import demo

        countries = [c.strip().lower() for c in args.countries.split(",")] if args.countries is not None else []
        if args.countries is not None:
            unknown = [c for c in countries if c not in demo.ALL_COUNTRIES]
            if not countries or unknown or "" in countries:
                raise CliError(f"--countries: unknown storefront(s) {', '.join(repr(c) for c in unknown) or repr('')}"
                               f" (the demo knows: {', '.join(sorted(demo.ALL_COUNTRIES))})")
            if len(set(countries)) != len(countries):
                raise CliError(f"--countries: a storefront is listed twice in {args.countries!r}")
            args.countries = ",".join(countries)
        if not 1 <= args.depth <= demo.LEGACY_MAX_ENTRIES:
            raise CliError(f"--depth {args.depth}: must be 1..{demo.LEGACY_MAX_ENTRIES} (the feeds' longest chart)")
        _check_window(args.start, args.end, "--start", "--end")
    elif args.command == "run":
        if args.start and args.end:
            _check_window(args.start, args.end, "--from", "--to")
        else:
            first, last = _partition_bounds()
            for opt, day in (("--from", args.start), ("--to", args.end)):
                if day is not None and not first <= day <= last:
                    raise CliError(f"{opt} {day} is outside the pipeline's chart dates {first}..{last}")


def _home(arg: str | None) -> Home:
    """The home, created if missing; a path that is not (and cannot become) a directory is a one-line error."""
    source = f"--home {arg}" if arg else f"CHARTLAKE_HOME={os.environ['CHARTLAKE_HOME']}" \
        if os.environ.get("CHARTLAKE_HOME") else "the default home"
    home = Home.resolve(arg)
    for p in (home.root, *home.root.parents):
        if p.exists():
            if not p.is_dir():
                raise CliError(f"{source}: {p} is not a directory")
            break
    try:
        return home.ensure()
    except OSError as exc:
        raise CliError(f"{source}: cannot create the home {home.root}: {exc.strerror or exc}") from None


def _check_environment() -> None:
    """Settings read later, deep in a run (DuckDB's memory bound, the parse cache), checked once up front."""
    import duckdb

    from orchestration.lib import lake
    from orchestration.lib.payload_store import PayloadStoreError, _cache_max_rows, store_for

    limit = os.environ.get(lake.MEMORY_LIMIT_ENV)
    if limit:
        try:
            duckdb.connect(":memory:", config={"memory_limit": limit}).close()
        except duckdb.Error:
            raise CliError(f"{lake.MEMORY_LIMIT_ENV}={limit!r} is not a DuckDB memory limit "
                           "(a size such as 2GB or 512MB)") from None
    try:
        _cache_max_rows()
        store_for(Home.resolve())  # CHARTLAKE_RAW_STORE_URL's form (nothing is contacted yet)
    except PayloadStoreError as exc:
        raise CliError(str(exc)) from None
    from orchestration import config

    try:
        config.max_payload_bytes()
    except ValueError as exc:
        raise CliError(str(exc)) from None


@contextlib.contextmanager
def _writer(home: Home, args, argv: list[str]):
    """Hold the home's writer lock for the command; then clean up after a writer that was killed mid-way."""
    from orchestration import runner
    from orchestration.lib import home_lock

    wait = None if args.wait == float("inf") else args.wait

    def waiting(holder):
        who = holder.describe() if holder else "another process"
        bound = "" if wait is None else f" (at most {wait:.0f} s)"
        print(f"chartlake {args.command}: waiting{bound} for {who} to finish writing {home.root}",
              file=sys.stderr, flush=True)

    command = " ".join(["chartlake", args.command, *argv[argv.index(args.command) + 1:]])[:200]
    try:
        with home_lock.writer_lock(home.root, command, wait=wait, on_wait=waiting):
            runner.recover(home, log=print)
            yield
    except home_lock.HomeBusy as exc:
        raise CliError(str(exc)) from None


def cmd_setup(home: Home, args) -> int:
    from orchestration.lib import lake

    ext = lake.install_extensions(home)
    print(f"DuckDB extensions {', '.join(lake.EXTENSIONS)} installed offline in {ext}")
    dbt = Path(sys.executable).parent / "dbt"
    proc = subprocess.run([str(dbt), "parse", "--quiet"], cwd=DBT_PROJECT_DIR, env={**os.environ})
    if proc.returncode != 0:
        raise CliError("dbt parse failed (see above)")
    print(f"dbt manifest written to {DBT_PROJECT_DIR / 'target' / 'manifest.json'}")
    from orchestration import runner

    # Created here, under the writer lock, so `make ui` (which runs setup first) never races a CLI run into it.
    runner.instance_for(home).dispose()
    print(f"Dagster instance ready in {runner.dagster_home(home)}")
    return 0


def cmd_import(home: Home, args) -> int:
    from orchestration.lib import ingest, lake
    from orchestration.lib.payload_store import PayloadStoreError, store_for

    run_id = f"import-{uuid.uuid4().hex[:12]}"
    try:
        with lake.session(home) as con:
            results = ingest.stage_files(con, store_for(home), args.paths, run_id=run_id,
                                         chart_date=getattr(args, "chart_date", None))
    except (FileNotFoundError, PayloadStoreError) as exc:
        raise CliError(str(exc)) from None
    _print_stage_summary(results)
    failed = [r for r in results if r.status == "failed"]
    landed = True
    if not args.no_land:
        dates = sorted({k.chart_date for r in results for k in r.charts})
        if dates:
            start, end, outside = _within_partitions(dates)
            for d in outside:
                print(f"  NOT LANDED: chart date {d} is outside the pipeline's chart dates "
                      f"{'..'.join(map(str, _partition_bounds()))}", file=sys.stderr)
            landed = not outside
            if start is not None:
                landed = _run_pipeline(home, start, end, raw_only=True,
                                       days=[d for d in dates if d not in outside]) and landed
        if not landed:
            print("import: some chart dates did not land; `chartlake status` lists the failed landings",
                  file=sys.stderr)
    return 1 if failed or not landed else 0


def _print_stage_summary(results) -> None:
    counts = {s: sum(r.status == s for r in results) for s in ("staged", "unchanged", "failed")}
    print(f"{len(results)} payloads: {counts['staged']} new, {counts['unchanged']} already stored, "
          f"{counts['failed']} failed; {sum(r.entry_count for r in results if r.status == 'staged')} chart rows staged")
    for r in results:
        if r.status == "failed":
            print(f"  FAILED {r.source} (payload_sha256={r.sha256 or '-'}): {r.error}", file=sys.stderr)


def cmd_demo(home: Home, args) -> int:
    from orchestration import demo

    countries = tuple(c.strip() for c in args.countries.split(",")) if args.countries else demo.DEFAULT_COUNTRIES
    out = home.root / "demo_payloads"
    files = demo.generate(out, start=args.start, end=args.end, countries=countries, depth=args.depth)
    print(f"generated {len(files)} SIMULATED payload files in {out} ({args.start}..{args.end}, {len(countries)} storefronts)")
    from orchestration.demo import play as demo_play

    play_countries = [c for c in countries if c in demo_play.DEFAULT_COUNTRIES]
    if play_countries:
        play_files = demo_play.generate(out, start=args.start, end=args.end, countries=play_countries,
                                        depth=min(args.depth, demo_play.DEFAULT_DEPTH))
        print(f"generated {len(play_files)} SIMULATED Google Play payload files ({', '.join(play_countries)})")
    _mark_replay(home, args.start, args.end, countries)
    args.paths, args.no_land = [out], True
    cmd_import(home, args)
    if not _run_pipeline(home, args.start, args.end):
        # Say so with the exit code: `make demo` and scripts must not report a demo that did not publish as done.
        print("demo: the pipeline run failed; `chartlake status` and the Dagster UI show which step", file=sys.stderr)
        return 1
    _print_demo_summary(home)
    return 0


def _mark_replay(home: Home, start: dt.date, end: dt.date, countries) -> None:
    """Record that this home replays a past window (see ``config.Replay``); a second demo widens the window."""
    from orchestration.config import Replay, read_replay

    previous = read_replay(home)
    if previous is not None:
        start, end = min(start, previous.start), max(end, previous.end)
        countries = sorted(set(countries) | set(previous.countries))
    path = Replay.for_window(home, start, end, countries).write()
    print(f"marked {home.root} as a replay of {start}..{end} (freshness judged at its end: {path.name})")


def cmd_run(home: Home, args) -> int:
    from orchestration.lib import lake, status

    # Staged dates the partitions cannot hold (a payload dated 1970) must not make every plain run fail: skipped.
    first, last = _partition_bounds()
    with lake.session(home) as con:
        lake.ensure_raw_schema(con)
        lo, hi, n_out = status.staged_window(con, first, last)
    if n_out and (args.start is None or args.end is None):
        print(f"run: {n_out} staged chart date(s) outside the pipeline's dates ({first}..{last}) are skipped",
              file=sys.stderr)
    start, end = args.start or lo, args.end or hi
    if start is None or end is None:
        raise CliError("nothing staged in the lake: `chartlake import PATH...` first")
    _check_window(start, end, "--from", "--to")
    ok = _run_pipeline(home, start, end)
    return 0 if ok else 1


def _partition_bounds() -> tuple[dt.date, dt.date]:
    """First and last chart date the daily partitions hold (the last one moves with the clock: tomorrow)."""
    from orchestration.defs.raw.partitions import daily_partitions

    keys = daily_partitions.get_partition_keys()
    return dt.date.fromisoformat(keys[0]), dt.date.fromisoformat(keys[-1])


def _check_window(start: dt.date, end: dt.date, start_opt: str, end_opt: str) -> None:
    if end < start:
        raise CliError(f"{end_opt} {end} is before {start_opt} {start}")
    first, last = _partition_bounds()
    for opt, day in ((start_opt, start), (end_opt, end)):
        if not first <= day <= last:
            raise CliError(f"{opt} {day} is outside the pipeline's chart dates {first}..{last}")


def _within_partitions(dates) -> tuple[dt.date | None, dt.date | None, list[dt.date]]:
    first, last = _partition_bounds()
    inside = [d for d in dates if first <= d <= last]
    return (inside[0] if inside else None, inside[-1] if inside else None,
            [d for d in dates if not first <= d <= last])


def cmd_status(home: Home, args) -> int:
    from orchestration.lib import audit, lake, status

    if not lake.exists(home):
        print(f"no lake yet at {lake.lake_config(home).describe()}")
        return 0
    with lake.session(home, read_only=True) as con:
        for state, n, first, last in status.payload_counts(con):
            print(f"payloads {state}: {n} ({first}..{last})")
        for chart_date, country, source_url, error in status.failed_payloads(con, limit=20):
            print(f"  failed {chart_date} {country}: {error} ({source_url})")
        held = audit.quarantine_entries(con)  # the one quarantine store (raw/quarantined_payloads)
        print(f"quarantined in the lake: {len(held)} charts or days")
        for q in held[-20:]:
            what = audit.what_held(q) or "whole day"
            print(f"  {q['chart_date']} {q['country'] or '?'} {what}: {_escape(str(q['reason']))}")
        for s in lake.snapshots(con, limit=5):
            print(f"snapshot {s['snapshot_id']} {s['snapshot_time']:%Y-%m-%d %H:%M:%S} {s['commit_message'] or ''}")
    _print_failed_landings(home)
    return 0 if _print_publish_status(home) else 1


def _print_failed_landings(home: Home) -> None:
    from orchestration import runner

    failed = runner.failed_landings(home)
    print(f"failed landings (latest raw_job run of the chart date failed): {len(failed)}")
    for f in failed:
        print(f"  {f['chart_date']}: {_escape(str(f['error']))} (run {f['run_id']})")


def _print_publish_status(home: Home) -> bool:
    """The last publish and what it held back; False (after one line on stderr) when the serving file cannot be
    read as published (held read-write by a client, damaged): never a traceback."""
    import duckdb

    from orchestration.lib import serving, serving_file

    try:
        last = serving.last_publish(home)
        if last is None:
            print("no publish yet")
            return True
        rows = serving.quarantined_partitions(home, last["publish_id"])
    except (serving_file.ServingFileError, serving.ServingError, duckdb.Error) as exc:
        print(f"chartlake status: serving file: {_escape(str(exc).splitlines()[0])}", file=sys.stderr)
        return False
    print(f"last publish #{last['publish_id']} at {last['published_at']:%Y-%m-%d %H:%M:%S} "
          f"(lake snapshot {last['lake_snapshot_id']}, run {last['run_id']})")
    print(f"quarantined partitions: {len(rows)}")
    for country, chart_date, what, reason in rows:
        print(f"  {country} {chart_date} {what or 'whole day'}: {_escape(str(reason))}")
    summary = last.get("check_summary")
    failed = (json.loads(summary) if isinstance(summary, str) else summary or {}).get("failed") or []
    print(f"failing blocking checks: {', '.join(failed) if failed else 'none'}")
    return True


def _run_pipeline(home: Home, start: dt.date, end: dt.date, *, raw_only: bool = False, days=None) -> bool:
    """Materialize raw partitions day by day (each day its own data version), then the rest as one ranged run."""
    from orchestration import runner

    return runner.run_range(home, start, end, raw_only=raw_only, log=print, days=days)


def _print_demo_summary(home: Home) -> None:
    from orchestration.lib import lake, status

    with lake.session(home, read_only=True) as con:
        rows = status.raw_row_count(con)
        snap = lake.current_snapshot(con)
        print(f"\nraw rows loaded: {rows:,}; lake snapshot: {snap}")
        top = status.top_of_chart(con, country="us", device="iphone", chart="top-free", day=dt.date(2025, 1, 14))
    print("US top free iPhone apps on 2025-01-14 (SIMULATED demo data):")
    for rank, name, app_id in top:
        print(f"  #{rank} {name} ({app_id})")


def cmd_migrate_catalog(home: Home, args) -> int:
    from orchestration.lib import lake, migrate

    try:
        res = migrate.migrate_catalog(home, args.dsn)
    except (migrate.MigrateError, lake.LakeError) as exc:
        raise CliError(str(exc)) from None
    print(f"copied {res.tables} catalog tables ({res.catalog_rows} rows, {res.snapshots} snapshots) to "
          f"{res.target.describe()}; {len(res.lake_rows)} lake tables verified row for row")
    print(f"now set CHARTLAKE_LAKE_CATALOG='{lake.mask(args.dsn)}' for every chartlake process and dbt "
          f"(the SQLite file is unchanged: unset it to go back)")
    return 0


def cmd_versions(home: Home, args) -> int:
    from orchestration.lib import versions

    log = versions.publishes(home)
    print(f"publishes: {len(log)}" if log else "publishes: none yet")
    for p in log:
        recorded = p.published_snapshot_id if p.published_snapshot_id is not None else "not recorded"
        checks = f"failed checks: {', '.join(p.failed_checks)}" if p.failed_checks else "checks ok"
        print(f"  #{p.publish_id} {p.published_at:%Y-%m-%d %H:%M:%S} UTC  marts from lake snapshot "
              f"{p.lake_snapshot_id}, published snapshot {recorded}; {p.partitions_published} partitions published, "
              f"{p.partitions_quarantined} quarantined; {checks}; run {p.run_id}")
    snaps = versions.recent_snapshots(home, limit=args.snapshots)
    print(f"recent lake snapshots: {len(snaps)}" if snaps else "no lake yet")
    for s in snaps:
        print(f"  {s['snapshot_id']:>6} {s['snapshot_time']:%Y-%m-%d %H:%M:%S}  {s['commit_message'] or '-'}"
              f"{'  ' + s['commit_extra_info'] if s['commit_extra_info'] else ''}")
    return 0


def cmd_query(home: Home, args) -> int:
    from orchestration.lib import versions

    try:
        result = versions.query(home, args.sql, as_of=args.as_of, timeout=args.timeout,
                                memory_limit=args.memory_limit, max_rows=args.max_rows)
    except versions.VersionsError as exc:
        raise CliError(_escape(" ".join(str(exc).split()))) from None
    _print_rows(result.columns, result.rows, args.format)
    if args.format == "table":
        where = f"publish {result.publish.publish_id}" if result.publish else "the current serving DB"
        print(f"({len(result.rows)} rows, as of {where})", file=sys.stderr)
    return 0


# C0 controls, DEL and C1 controls (ESC, CSI...): a value printed raw could drive the reader's terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DEL_C1 = re.compile(r"[\x7f-\x9f]")


def _escape(text: str) -> str:
    """``text`` with every control character written as a visible escape (``\\x1b``, ``\\n``)."""
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return _CONTROL.sub(lambda m: named.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


def _print_rows(columns: list[str], rows: list[tuple], fmt: str) -> None:
    import csv

    def text(v):
        return "" if v is None else v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else str(v)

    columns = [_escape(str(c)) for c in columns]
    if fmt == "csv":
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(columns)
        w.writerows([[_escape(text(v)) for v in r] for r in rows])
    elif fmt == "json":
        out = json.dumps([dict(zip(columns, r)) for r in rows], default=text, ensure_ascii=False, indent=1)
        # json escapes C0 controls itself; DEL and C1 it leaves raw.
        print(_DEL_C1.sub(lambda m: f"\\u{ord(m.group()):04x}", out))
    else:
        cells = [[_escape(text(v)) for v in r] for r in rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
        print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
        print("  ".join("-" * w for w in widths))
        for r in cells:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths)))


def cmd_diff(home: Home, args) -> int:
    from orchestration.lib import versions

    try:
        result = versions.diff(home, args.a, args.b, mart=args.mart)
    except versions.VersionsError as exc:
        raise CliError(str(exc)) from None
    for p in result.partitions:
        print(f"{p.mart:<28} {p.label():<40} +{p.added} added  -{p.removed} removed  ~{p.changed} changed")
    print(result.summary())
    return 0


def cmd_lineage(home: Home, args) -> int:
    from orchestration.lib import versions

    keys = {}
    for pair in args.keys:
        col, sep, value = pair.partition("=")
        if not sep or not col:
            raise CliError(f"KEY must be column=value, got {pair!r}")
        keys[col.strip()] = value
    try:
        result = versions.lineage(home, args.mart, keys, as_of=args.as_of)
    except versions.VersionsError as exc:
        raise CliError(str(exc)) from None
    where = f"publish {result.publish.publish_id}" if result.publish else "the current serving DB"
    print(f"{args.mart} row ({where}):")
    for k, v in result.row.items():
        print(f"  {k} = {v}")
    print(f"raw payload versions in the lake as of snapshot {result.lake_snapshot_id}: {len(result.payloads)}")
    for p in result.payloads:
        landed = (f"snapshot {p.landed_snapshot_id} ({p.landed_message or '-'}, partition "
                  f"{(p.landed_extra or {}).get('partition', '-')}, run {(p.landed_extra or {}).get('run_id', '-')})"
                  if p.landed_message is not None or p.landed_extra else f"snapshot {p.landed_snapshot_id} (expired)")
        print(f"  {'USED' if p.used else 'old '} {p.chart} payload_sha256={p.payload_sha256}")
        print(f"       source {p.source_url} ({p.source_format}), captured {p.captured_at}, fetched {p.fetched_at}, "
              f"run {p.run_id}, "
              f"{p.rows} row(s); landed in lake {landed}")
    return 0


COMMANDS = {"setup": cmd_setup, "import": cmd_import, "demo": cmd_demo, "run": cmd_run, "status": cmd_status,
            "versions": cmd_versions, "query": cmd_query, "diff": cmd_diff, "lineage": cmd_lineage,
            "migrate-catalog": cmd_migrate_catalog}

if __name__ == "__main__":
    sys.exit(main())
