"""Landing throughput with 1, 2 and 4 parallel landers on a PostgreSQL catalog, and the cost of one commit on SQLite
vs PostgreSQL (issue 15). Separate from benchmarks/run.py (the full-pipeline benchmark).

    flock /tmp/chartlake-heavy.lock .venv/bin/python benchmarks/multiwriter.py [--days 24 --countries 4 --depth 100]

Starts its own PostgreSQL from Debian's packages (tests/services/conftest.py), stages simulated payloads once per
configuration into a fresh catalog database, then times N lander processes (tests/services/lander.py: the real
``ingest.land_day``, one commit per day) landing disjoint days. Data files go to a local directory: the object store
is not what is measured here. Results: benchmarks/results/multiwriter.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orchestration.config import Home  # noqa: E402
from orchestration.lib import ingest, lake  # noqa: E402
from orchestration.lib.payload_store import store_for  # noqa: E402
from orchestration import demo  # noqa: E402
from tests.services.conftest import postgres_bin, start_postgres  # noqa: E402

LANDER = REPO / "tests" / "services" / "lander.py"
START = dt.date(2025, 1, 1)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _with_env(env: dict):
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    return old


def _restore(old: dict):
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def land(server, payloads: Path, work: Path, days: list[dt.date], workers: int) -> dict:
    home = Home(work / f"home-{workers}").ensure()
    env = {"CHARTLAKE_LAKE_CATALOG": server.dsn(server.create_database(f"bench{workers}")), "CHARTLAKE_HOME": str(home.root)}
    old = _with_env(env)
    try:
        with lake.session(home) as con:
            staged = ingest.stage_files(con, store_for(home), [payloads], run_id="bench-stage")
        rows = sum(r.entry_count for r in staged if r.status == "staged")
        cpu0, t0 = _children_cpu(), time.perf_counter()
        procs = [subprocess.Popen([sys.executable, str(LANDER), str(home.root), ",".join(d.isoformat() for d in days[i::workers])],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})
                 for i in range(workers)]
        outs = [p.communicate() for p in procs]
        wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
        for p, (_, err) in zip(procs, outs):
            if p.returncode != 0:
                raise RuntimeError(f"lander failed: {err[-2000:]}")
        with lake.session(home, read_only=True) as con:
            landed = con.execute("select count(*) from raw.chart_entries").fetchone()[0]
        if landed != rows:
            raise RuntimeError(f"{workers} workers landed {landed} rows, {rows} staged")
        return {"workers": workers, "rows": rows, "days": len(days), "wall_s": round(wall, 2),
                "rows_per_s": round(rows / wall), "cpu_s": round(cpu, 2), "cpu_us_per_row": round(cpu / rows * 1e6, 1)}
    finally:
        _restore(old)


def commit_cost(home: Home, env: dict, commits: int, rows: int) -> dict:
    """Seconds per labelled commit of ``rows`` rows (one Parquet file each: above the inlining limit)."""
    old = _with_env(env)
    try:
        with lake.session(home) as con:
            con.execute("create table if not exists bench_commit (i bigint, s varchar)")
            times = []
            for n in range(commits):
                t0 = time.perf_counter()
                con.execute("BEGIN")
                con.execute(f"insert into bench_commit select range, 'x' || range from range({rows})")
                lake.set_commit_message(con, f"bench commit {n}")
                con.execute("COMMIT")
                times.append(time.perf_counter() - t0)
        return {"commits": commits, "rows_per_commit": rows, "median_s": round(statistics.median(times), 4),
                "p90_s": round(sorted(times)[int(0.9 * len(times))], 4), "mean_s": round(statistics.fmean(times), 4)}
    finally:
        _restore(old)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=24)
    ap.add_argument("--countries", type=int, default=4)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--commits", type=int, default=40)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    bin_dir = postgres_bin()
    if bin_dir is None:
        print("PostgreSQL server binaries not found (apt-get install postgresql)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="chartlake-multiwriter-"))
    try:
        days = [START + dt.timedelta(days=i) for i in range(args.days)]
        payloads = work / "payloads"
        demo.generate(payloads, start=days[0], end=days[-1], countries=demo.DEFAULT_COUNTRIES[: args.countries],
                      depth=args.depth)
        with start_postgres(bin_dir) as server:
            landing = [land(server, payloads, work, days, int(w)) for w in args.workers.split(",")]
            sqlite_home = Home(work / "commit-sqlite").ensure()
            pg_home = Home(work / "commit-pg").ensure()
            commits = {
                "sqlite": commit_cost(sqlite_home, {"CHARTLAKE_LAKE_CATALOG": ""}, args.commits, 1000),
                "postgres": commit_cost(pg_home, {"CHARTLAKE_LAKE_CATALOG": server.dsn(server.create_database("commit"))},
                                        args.commits, 1000),
            }
        result = {"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "cores": os.cpu_count(),
                  "size": {"days": args.days, "countries": args.countries, "depth": args.depth},
                  "landing_postgres_catalog": landing, "commit_cost": commits}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "multiwriter.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "multiwriter.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def markdown(r: dict) -> str:
    s = r["size"]
    lines = [f"# Parallel landing on a PostgreSQL catalog ({r['when']}, {r['cores']} cores)", "",
             f"{s['days']} days x {s['countries']} storefronts x 6 charts, depth {s['depth']} (simulated payloads), "
             "data files on local disk; each lander is a process running `ingest.land_day`, one commit per day.", "",
             "| landers | rows | wall s | rows/s | CPU s (landers) | CPU µs/row |", "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {x['workers']} | {x['rows']:,} | {x['wall_s']} | {x['rows_per_s']:,} | {x['cpu_s']} | {x['cpu_us_per_row']} |"
              for x in r["landing_postgres_catalog"]]
    lines += ["", "One labelled commit of 1,000 rows (one Parquet file), one process:", "",
              "| catalog | commits | median s | p90 s |", "|---|---:|---:|---:|"]
    lines += [f"| {k} | {v['commits']} | {v['median_s']} | {v['p90_s']} |" for k, v in r["commit_cost"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
