"""The ``chartlake`` command: thin verbs over ``lib/`` and the Dagster job API.

Runs go through the same Dagster assets the web UI materializes, recorded in the home's Dagster instance
(``<home>/dagster``, which ``make ui`` uses too), so a CLI run shows in the UI's run history.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from orchestration.config import DBT_PROJECT_DIR, Home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chartlake", description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="chartlake home (default: $CHARTLAKE_HOME or data/)")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("setup", help="install DuckDB extensions from the pip packages and parse the dbt project (offline)")

    p = sub.add_parser("import", help="import saved payload files or archive folders into the raw store and lake")
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--no-land", action="store_true", help="only stage the payloads; land them later with `run`")

    p = sub.add_parser("demo", help="generate the simulated January 2025 demo data, import it and run the pipeline")
    p.add_argument("--countries", default=None, help="comma-separated storefronts (default: the 12 demo ones)")
    p.add_argument("--start", type=_date, default=dt.date(2025, 1, 1))
    p.add_argument("--end", type=_date, default=dt.date(2025, 1, 31), help="last chart date (inclusive)")
    p.add_argument("--depth", type=int, default=100)

    p = sub.add_parser("run", help="land, build, check and publish what the lake holds")
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
    home = Home.resolve(args.home).ensure()
    # Everything downstream (dbt profile, Dagster resources) resolves the same home.
    os.environ["CHARTLAKE_HOME"] = str(home.root)
    try:
        return COMMANDS[args.command](home, args)
    except CliError as exc:
        print(f"chartlake {args.command}: error: {exc}", file=sys.stderr)
        return 2


class CliError(Exception):
    pass


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def cmd_setup(home: Home, args) -> int:
    from orchestration.lib import lake

    ext = lake.install_extensions(home)
    print(f"DuckDB extensions {', '.join(lake.EXTENSIONS)} installed offline in {ext}")
    dbt = Path(sys.executable).parent / "dbt"
    proc = subprocess.run([str(dbt), "parse", "--quiet"], cwd=DBT_PROJECT_DIR, env={**os.environ})
    if proc.returncode != 0:
        raise CliError("dbt parse failed (see above)")
    print(f"dbt manifest written to {DBT_PROJECT_DIR / 'target' / 'manifest.json'}")
    return 0


def cmd_import(home: Home, args) -> int:
    from orchestration.lib import ingest, lake
    from orchestration.lib.payload_store import PayloadStore

    run_id = f"import-{uuid.uuid4().hex[:12]}"
    try:
        with lake.session(home) as con:
            results = ingest.stage_files(con, PayloadStore(home.raw), args.paths, run_id=run_id)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from None
    _print_stage_summary(results)
    failed = [r for r in results if r.status == "failed"]
    if not args.no_land:
        dates = sorted({k.chart_date for r in results for k in r.charts})
        if dates:
            _run_pipeline(home, dates[0], dates[-1], raw_only=True)
    return 1 if failed else 0


def _print_stage_summary(results) -> None:
    counts = {s: sum(r.status == s for r in results) for s in ("staged", "unchanged", "failed")}
    print(f"{len(results)} payloads: {counts['staged']} new, {counts['unchanged']} already stored, "
          f"{counts['failed']} failed; {sum(r.entry_count for r in results if r.status == 'staged')} chart rows staged")
    for r in results:
        if r.status == "failed":
            print(f"  FAILED {r.source} (payload_sha256={r.sha256 or '-'}): {r.error}", file=sys.stderr)


def cmd_demo(home: Home, args) -> int:
    from orchestration.sources import demo

    countries = tuple(c.strip() for c in args.countries.split(",")) if args.countries else demo.DEFAULT_COUNTRIES
    out = home.root / "demo_payloads"
    files = demo.generate(out, start=args.start, end=args.end, countries=countries, depth=args.depth)
    print(f"generated {len(files)} SIMULATED payload files in {out} ({args.start}..{args.end}, {len(countries)} storefronts)")
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
    from orchestration.lib import lake

    with lake.session(home) as con:
        lake.ensure_raw_schema(con)
        lo, hi = con.execute("select min(chart_date), max(chart_date) from raw.payloads where status='staged'").fetchone()
    start, end = args.start or lo, args.end or hi
    if start is None:
        raise CliError("nothing staged in the lake: `chartlake import PATH...` first")
    if end < start:
        raise CliError(f"--to {end} is before --from {start}")
    ok = _run_pipeline(home, start, end)
    return 0 if ok else 1


def cmd_status(home: Home, args) -> int:
    from orchestration.lib import lake

    if not lake.exists(home):
        print(f"no lake yet at {lake.lake_config(home).describe()}")
        return 0
    with lake.session(home, read_only=True) as con:
        for line in con.execute("""
            select status, count(*), min(chart_date), max(chart_date) from raw.payloads group by status order by 1
        """).fetchall():
            print(f"payloads {line[0]}: {line[1]} ({line[2]}..{line[3]})")
        for row in con.execute("""
            select chart_date, country, source_url, error from raw.payloads where status='failed'
            order by chart_date desc limit 20""").fetchall():
            print(f"  failed {row[0]} {row[1]}: {row[3]} ({row[2]})")
        for s in lake.snapshots(con, limit=5):
            print(f"snapshot {s['snapshot_id']} {s['snapshot_time']:%Y-%m-%d %H:%M:%S} {s['commit_message'] or ''}")
    _print_publish_status(home)
    return 0


def _print_publish_status(home: Home) -> None:
    import duckdb

    from orchestration.lib import serving

    last = serving.last_publish(home)
    if last is None:
        print("no publish yet")
        return
    print(f"last publish #{last['publish_id']} at {last['published_at']:%Y-%m-%d %H:%M:%S} "
          f"(lake snapshot {last['lake_snapshot_id']}, run {last['run_id']})")
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{home.serving_db}' AS s (READ_ONLY)")
        rows = con.execute("""select country, chart_date, reason from s.analytics.quarantine
                              where publish_id = ? order by chart_date, country""", [last["publish_id"]]).fetchall()
    finally:
        con.close()
    print(f"quarantined partitions: {len(rows)}")
    for country, chart_date, reason in rows:
        print(f"  {country} {chart_date}: {reason}")
    summary = last.get("check_summary")
    failed = (json.loads(summary) if isinstance(summary, str) else summary or {}).get("failed") or []
    print(f"failing blocking checks: {', '.join(failed) if failed else 'none'}")


def _run_pipeline(home: Home, start: dt.date, end: dt.date, *, raw_only: bool = False) -> bool:
    """Materialize raw partitions day by day (each day its own data version), then the rest as one ranged run."""
    from orchestration.defs import jobs

    return jobs.run_range(home, start, end, raw_only=raw_only, log=print)


def _print_demo_summary(home: Home) -> None:
    from orchestration.lib import lake

    with lake.session(home, read_only=True) as con:
        rows = con.execute("select count(*) from raw.chart_entries").fetchone()[0]
        snap = lake.current_snapshot(con)
        print(f"\nraw rows loaded: {rows:,}; lake snapshot: {snap}")
        top = _top5(con)
    print("US top free iPhone apps on 2025-01-14 (SIMULATED demo data):")
    for rank, name, app_id in top:
        print(f"  #{rank} {name} ({app_id})")


def _top5(con):
    has_marts = con.execute(
        "select count(*) from duckdb_tables() where schema_name='marts' and table_name='mart_daily_rankings'"
    ).fetchone()[0]
    rel = "marts.mart_daily_rankings" if has_marts else """(
        select * from raw.chart_entries qualify dense_rank() over (
            partition by store, country, device, chart, genre_id, chart_date
            order by fetched_at desc, ingested_at desc, payload_sha256 desc) = 1)"""
    return con.execute(f"""
        select rank, app_name, app_id from {rel}
        where country='us' and device='iphone' and chart='top-free' and chart_date=date '2025-01-14'
          {"and genre_id is null" if not has_marts else ""}
        order by rank limit 5""").fetchall()


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
        result = versions.query(home, args.sql, as_of=args.as_of)
    except versions.VersionsError as exc:
        raise CliError(str(exc)) from None
    _print_rows(result.columns, result.rows, args.format)
    if args.format == "table":
        where = f"publish {result.publish.publish_id}" if result.publish else "the current serving DB"
        print(f"({len(result.rows)} rows, as of {where})", file=sys.stderr)
    return 0


def _print_rows(columns: list[str], rows: list[tuple], fmt: str) -> None:
    import csv

    def text(v):
        return "" if v is None else v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else str(v)

    if fmt == "csv":
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(columns)
        w.writerows([[text(v) for v in r] for r in rows])
    elif fmt == "json":
        print(json.dumps([dict(zip(columns, r)) for r in rows], default=text, ensure_ascii=False, indent=1))
    else:
        cells = [[text(v) for v in r] for r in rows]
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
        print(f"{p.mart:<28} {p.label():<24} +{p.added} added  -{p.removed} removed  ~{p.changed} changed")
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
        print(f"       source {p.source_url} ({p.source_format}), fetched {p.fetched_at}, run {p.run_id}, "
              f"{p.rows} row(s); landed in lake {landed}")
    return 0


COMMANDS = {"setup": cmd_setup, "import": cmd_import, "demo": cmd_demo, "run": cmd_run, "status": cmd_status,
            "versions": cmd_versions, "query": cmd_query, "diff": cmd_diff, "lineage": cmd_lineage,
            "migrate-catalog": cmd_migrate_catalog}

if __name__ == "__main__":
    sys.exit(main())
