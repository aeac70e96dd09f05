"""chartlake benchmarks: how the warehouse scales, what one more day costs, and the distance to plain DuckDB.

Why it exists: a user choosing chartlake wants figures, not adjectives (issue 6). This harness generates the
simulated demo charts at scale (``--days`` x ``--countries`` x 3 charts x 2 devices x ``--depth`` ranks), loads
them through the project's own code, and writes ``benchmarks/results/latest.json`` and ``latest.md`` with the
machine, the versions and these figures:

- ingest: payload files -> raw store -> ``lake.raw.chart_entries`` (``ingest.stage_files`` + ``ingest.land_day``,
  what ``chartlake import`` does), in rows/s; generating the payloads is timed apart and excluded;
- full build: the Dagster ``warehouse_job`` over every loaded day (dbt build with its tests, the GX marts check,
  publish), with dbt's own per-model and per-test timings;
- the floor: ``benchmarks/floor.sql``, one hand-written DuckDB script computing the same marts from the same raw
  rows in one process; our full build / floor is reported as a ratio and every mart is compared row for row;
- one-day update at 30, 180 and ``--days`` days of history: stage one new day's payloads, then
  ``runner.run_range(home, day, day)`` (raw job with its GX check, then dbt + checks + publish), with the checks'
  share (GX raw and marts checks plus dbt tests);
- peak RSS of each step: every step runs in its own child process; the figure is the sum of the RSS of the step's
  process tree (the Python process and the dbt subprocess it starts), sampled every 0.2 s, next to the kernel's
  high-water mark of the largest single process.

Timings never appear in tests; ``tests/benchmarks`` runs the harness at a tiny size and checks the results file
and the equality check. Run ``python benchmarks/run.py --help`` (or ``make bench``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import string
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: the project package is importable from the repo root
    sys.path.insert(0, str(REPO))

from orchestration.config import DBT_PROJECT_DIR, Home  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
FLOOR_SQL = BENCH_DIR / "floor.sql"
RESULTS_DIR = BENCH_DIR / "results"
START = dt.date(2025, 1, 1)
HISTORY_POINTS = (30, 180)  # plus --days itself
MARTS = ("fct_chart_entries", "mart_daily_rankings", "mart_daily_country_summary", "mart_breakouts", "dim_apps")

# Issue 13's targets, each a ratio to a floor measured in the same run (or a bound), judged at 365 x 50.
TARGETS = {
    "full_build_vs_floor": "full build (dbt + checks + publish) at most 2.5x (floor + serve floor), wall",
    "full_build_vs_floor_cpu": "full build at most 2.5x (floor + serve floor), CPU seconds",
    "ingest_vs_floor_cpu": "ingest CPU seconds at most 1.5x the ingest floor's on the same files",
    "update_scaling": "one-day update at 365 days of history at most 1.1x the one at 30 days",
    "checks_share": "checks at most 15% of the one-day update",
    "peak_memory": "peak RSS of every process under 2 GB",
    "dagster_before_first_step": "Dagster's work before the first step of the full build at most 5% of it",
    "raw_store_vs_lake": "raw store on disk at most 3x the lake's files",
}
LIMITS = {"full_build_vs_floor": 2.5, "full_build_vs_floor_cpu": 2.5, "ingest_vs_floor_cpu": 1.5,
          "update_scaling": 1.1, "checks_share": 0.15, "peak_memory": 2048, "dagster_before_first_step": 0.05,
          "raw_store_vs_lake": 3.0}


class BenchError(RuntimeError):
    pass


# ----------------------------------------------------------------------------------------------- steps
# Each step runs in a child process (``run.py _step NAME ...``) so that its memory is its own and measurable.


def _generate_day(folder: str, day: dt.date, countries: list[str], depth: int) -> tuple[list[Path], float]:
    from orchestration import demo

    t0 = time.perf_counter()
    files = demo.generate(Path(folder), start=day, end=day, countries=countries, depth=depth)
    return files, time.perf_counter() - t0


def step_ingest(home: Home, *, start: dt.date, end: dt.date, countries: list[str], depth: int,
                workdir: Path) -> dict:
    """Generate each day's payloads into a scratch folder, stage and land them, run the ingest floor on the same
    files, delete the scratch folder.

    One day at a time, as a daily import would: the raw store keeps its own copy, so the scratch files go at once
    (at 365 x 50 the payloads are tens of GB). The next day is generated in a second process while this one is
    ingested: generation is not what is measured, and serially it would add ~20 minutes at 365 x 50.

    The ingest floor (``ingest_floor.sql``: DuckDB's JSON reader with an explicit schema + sha256 + one insert per
    day into a DuckLake of its own) runs on exactly the files ours read, interleaved day by day and in alternating
    order so neither side always gets the warmer cache; CPU seconds are this process's (DuckDB's threads included),
    measured around each side alone. Each day's floor rows are compared with ours (``EXCEPT ALL`` both ways)."""
    from concurrent.futures import ProcessPoolExecutor

    from orchestration.lib import ingest, lake
    from orchestration.lib.payload_store import PayloadStore

    store = PayloadStore(home.raw)
    out = {"days": 0, "files": 0, "payload_bytes": 0, "rows": 0, "generate_s": 0.0, "generate_wait_s": 0.0,
           "stage_s": 0.0, "land_s": 0.0, "stage_cpu_s": 0.0, "land_cpu_s": 0.0,
           "floor_s": 0.0, "floor_cpu_s": 0.0, "floor_rows": 0, "floor_mismatched_rows": 0}
    folder = lambda d: str(workdir / f"payloads-{d.isoformat()}")  # noqa: E731
    day = start
    # The pool is forked before the lake is opened: the generator process never holds a DuckDB handle.
    with ProcessPoolExecutor(max_workers=1) as pool, lake.session(home) as con:
        lake.ensure_raw_schema(con)
        attach_ingest_floor(con, home)
        pending = pool.submit(_generate_day, folder(day), day, countries, depth)
        while day <= end:
            t0 = time.perf_counter()
            files, generate_s = pending.result()
            t1 = time.perf_counter()
            nxt = day + dt.timedelta(days=1)
            if nxt <= end:
                pending = pool.submit(_generate_day, folder(nxt), nxt, countries, depth)
            run_id = f"bench-ingest-{day.isoformat()}"

            def ours():
                c0, w0 = _cpu(), time.perf_counter()
                results = ingest.stage_files(con, store, [Path(folder(day))], run_id=run_id)
                c1, w1 = _cpu(), time.perf_counter()
                landed = ingest.land_day(con, store, day, run_id=run_id)
                c2, w2 = _cpu(), time.perf_counter()
                failed = [r for r in results if r.status == "failed"] + landed.failures
                if failed:
                    raise BenchError(f"ingest {day}: {len(failed)} payloads failed, first: {failed[0]}")
                out["stage_s"] += w1 - w0
                out["land_s"] += w2 - w1
                out["stage_cpu_s"] += c1 - c0
                out["land_cpu_s"] += c2 - c1
                out["rows"] += landed.rows_inserted

            def floor():
                c0, w0 = _cpu(), time.perf_counter()
                ingest_floor_day(con, files, day)
                out["floor_s"] += time.perf_counter() - w0
                out["floor_cpu_s"] += _cpu() - c0

            for side in ((ours, floor) if out["days"] % 2 == 0 else (floor, ours)):
                side()
            rows, mismatched = compare_ingest_floor(con, day)
            out["floor_rows"] += rows
            out["floor_mismatched_rows"] += mismatched
            out["days"] += 1
            out["files"] += len(files)
            out["payload_bytes"] += sum(f.stat().st_size for f in files)
            out["generate_s"] += generate_s
            out["generate_wait_s"] += t1 - t0
            shutil.rmtree(folder(day))
            day = nxt
    out["ingest_s"] = out["stage_s"] + out["land_s"]
    out["ingest_cpu_s"] = out["stage_cpu_s"] + out["land_cpu_s"]
    out["rows_per_s"] = out["rows"] / out["ingest_s"] if out["ingest_s"] else None
    return out


def _cpu() -> float:
    """CPU seconds of this process so far, every thread (DuckDB's included)."""
    import resource

    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


INGEST_FLOOR_SQL = BENCH_DIR / "ingest_floor.sql"
# What both sides must agree on: the canonical row and its payload's hash (not the run's own lineage: ids, times,
# and the format label, which ours marks "-simulated" for the demo generator's files).
INGEST_COMPARED = ("store, country, device, chart, genre_id, chart_date, rank, app_id, app_name, developer_name, "
                   "developer_id, genre_name, release_date, price, currency, url, payload_sha256")


def attach_ingest_floor(con, home: Home) -> None:
    """The ingest floor's own DuckLake (same catalog kind as the default home: SQLite) beside the home."""
    from orchestration.sources.canonical import RAW_COLUMNS

    root = home.root / "bench_ingest_floor"
    (root / "files").mkdir(parents=True, exist_ok=True)
    con.execute(f"ATTACH 'ducklake:sqlite:{root / 'catalog.sqlite'}' AS floorlake (DATA_PATH '{root / 'files'}')")
    con.execute("CREATE SCHEMA IF NOT EXISTS floorlake.raw")
    con.execute("CREATE TABLE IF NOT EXISTS floorlake.raw.chart_entries ("
                + ", ".join(f"{c} {t}" for c, t in RAW_COLUMNS) + ")")


def ingest_floor_day(con, files: list[Path], day: dt.date) -> None:
    listed = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
    sql = INGEST_FLOOR_SQL.read_text().replace("$files", listed).replace("$day", f"'{day.isoformat()}'")
    con.execute("BEGIN")
    try:
        con.execute(sql)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def compare_ingest_floor(con, day: dt.date) -> tuple[int, int]:
    """(floor rows of ``day``, rows only on one side) between the floor's lake and ours."""
    where = f"chart_date = DATE '{day.isoformat()}'"
    rows = con.execute(f"select count(*) from floorlake.raw.chart_entries where {where}").fetchone()[0]
    diff = con.execute(
        f"select (select count(*) from (select {INGEST_COMPARED} from lake.raw.chart_entries where {where} "
        f"  except all select {INGEST_COMPARED} from floorlake.raw.chart_entries where {where})) "
        f"+ (select count(*) from (select {INGEST_COMPARED} from floorlake.raw.chart_entries where {where} "
        f"  except all select {INGEST_COMPARED} from lake.raw.chart_entries where {where}))").fetchone()[0]
    return rows, diff


def step_warehouse(home: Home, *, start: dt.date, end: dt.date) -> dict:
    """The Dagster warehouse job over ``[start, end]`` (what ``run_range`` runs after landing): a full build when
    the window is every loaded day."""
    from orchestration import runner
    from orchestration.definitions import defs

    instance = runner.instance_for(home)
    t0, epoch0 = time.perf_counter(), time.time()
    res = defs.resolve_job_def("warehouse_job").execute_in_process(
        instance=instance, raise_on_error=False, run_config=runner.QUIET,
        tags={"dagster/asset_partition_range_start": start.isoformat(),
              "dagster/asset_partition_range_end": end.isoformat()},
        resources={"chartlake": runner._home_resource(str(home.root))},
    )
    total = time.perf_counter() - t0
    run = _run_figures(instance, res.run_id)
    if not res.success:
        raise BenchError(f"warehouse_job {start}..{end} failed (run {res.run_id}): {_failed_steps(res)}")
    # Dagster's own work before any step runs: planning the run (its planned-materialization events), creating
    # and starting it; measured from the call to the first step's start.
    first_step = run.get("first_step_start")
    return {"start": start.isoformat(), "end": end.isoformat(), "total_s": total, "runs": [run],
            "cpu_s_in_process": _cpu(),
            "before_first_step_s": (first_step - epoch0) if first_step else None, **_split(run)}


def step_update(home: Home, *, day: dt.date, countries: list[str], depth: int, workdir: Path) -> dict:
    """One new day end to end: stage its payloads, then ``run_range(home, day, day)`` through Dagster."""
    from orchestration import runner
    from orchestration.lib import ingest, lake
    from orchestration.lib.payload_store import PayloadStore
    from orchestration import demo

    folder = workdir / f"payloads-{day.isoformat()}"
    t0 = time.perf_counter()
    demo.generate(folder, start=day, end=day, countries=countries, depth=depth)
    t1 = time.perf_counter()
    with lake.session(home) as con:
        results = ingest.stage_files(con, PayloadStore(home.raw), [folder], run_id=f"bench-update-{day}")
    t2 = time.perf_counter()
    shutil.rmtree(folder)
    if any(r.status == "failed" for r in results):
        raise BenchError(f"update {day}: payloads failed to stage")
    instance = runner.instance_for(home)
    before = {r.dagster_run.run_id for r in instance.get_run_records()}
    messages: list[str] = []
    t3 = time.perf_counter()
    ok = runner.run_range(home, day, day, instance=instance, log=messages.append)
    t4 = time.perf_counter()
    runs = [_run_figures(instance, r.dagster_run.run_id) for r in reversed(instance.get_run_records(limit=10))
            if r.dagster_run.run_id not in before]
    if not ok:
        raise BenchError(f"run_range {day}..{day} failed: {messages}")
    stage_s, run_s = t2 - t1, t4 - t3
    out = {"day": day.isoformat(), "generate_s": t1 - t0, "stage_s": stage_s, "run_range_s": run_s,
           "total_s": stage_s + run_s, "runs": runs, **_split(*runs)}
    out["checks_share"] = out["checks_s"] / out["total_s"] if out["total_s"] else None
    return out


def step_floor(home: Home, *, perturb: bool = False) -> dict:
    """Run the floor script on the lake's raw rows, then the serve floor (its marts written to a DuckDB file with
    ``CREATE TABLE AS``, in the serving file's storage version), and compare every mart with the lake's (row
    multisets). Wall and CPU seconds (this process, DuckDB's threads included) of each part alone."""
    from orchestration.lib import lake

    con = lake.connect(home, read_only=True)
    serve_file = home.root / "bench_serve_floor.duckdb"
    serve_file.unlink(missing_ok=True)
    try:
        con.execute("USE memory")
        c0, t0 = _cpu(), time.perf_counter()
        con.execute(floor_sql())
        elapsed, cpu = time.perf_counter() - t0, _cpu() - c0
        c0, t0 = _cpu(), time.perf_counter()
        con.execute(f"ATTACH '{serve_file}' AS serve_floor (STORAGE_VERSION 'v1.0.0')")
        for mart in MARTS:
            con.execute(f"CREATE TABLE serve_floor.main.{mart} AS SELECT * FROM memory.floor.{mart}")
        con.execute("DETACH serve_floor")
        serve_s, serve_cpu = time.perf_counter() - t0, _cpu() - c0
        if perturb:  # the equality check must be able to fail: move one floor row
            perturb_floor(con)
        equality = compare_marts(con)
        raw_rows = con.execute("select count(*) from lake.raw.chart_entries").fetchone()[0]
    finally:
        con.close()
    serve_mb = serve_file.stat().st_size / 2**20
    serve_file.unlink(missing_ok=True)
    return {"total_s": elapsed, "cpu_s_floor": cpu, "serve_s": serve_s, "serve_cpu_s": serve_cpu,
            "serve_file_mb": serve_mb, "raw_rows": raw_rows, "equality": equality}


def floor_sql() -> str:
    """floor.sql with dbt_project.yml's vars and the watch-list seed filled in."""
    import yaml

    vars_ = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
    return string.Template(FLOOR_SQL.read_text()).substitute(
        top_n=int(vars_["top_n"]), from_rank=int(vars_["breakout_from_rank"]),
        within_days=int(vars_["breakout_within_days"]), spread_days=int(vars_["spread_window_days"]),
        watchlist_csv=str(DBT_PROJECT_DIR / "seeds" / "watchlist.csv").replace("'", "''"))


def compare_marts(con) -> dict:
    """Each mart of the lake against the floor's table: same columns, same rows (as multisets). ``passed`` is
    True only when every mart matches; per mart the counts of rows found on one side only."""
    marts = {}
    for name in MARTS:
        lake_cols = [r[0] for r in con.execute(
            "select column_name from duckdb_columns() where database_name = 'lake' and schema_name = 'marts' "
            "and table_name = ? order by column_index", [name]).fetchall()]
        floor_cols = [r[0] for r in con.execute(
            "select column_name from duckdb_columns() where database_name = 'memory' and schema_name = 'floor' "
            "and table_name = ? order by column_index", [name]).fetchall()]
        entry = {"lake_rows": None, "floor_rows": None, "only_in_lake": None, "only_in_floor": None,
                 "columns_match": sorted(lake_cols) == sorted(floor_cols) and bool(lake_cols)}
        if entry["columns_match"]:
            cols = ", ".join(f'"{c}"' for c in lake_cols)
            a, b = f"lake.marts.{name}", f"memory.floor.{name}"
            entry["lake_rows"] = con.execute(f"select count(*) from {a}").fetchone()[0]
            entry["floor_rows"] = con.execute(f"select count(*) from {b}").fetchone()[0]
            entry["only_in_lake"] = con.execute(
                f"select count(*) from (select {cols} from {a} except all select {cols} from {b})").fetchone()[0]
            entry["only_in_floor"] = con.execute(
                f"select count(*) from (select {cols} from {b} except all select {cols} from {a})").fetchone()[0]
        else:
            entry["lake_columns"], entry["floor_columns"] = lake_cols, floor_cols
        entry["equal"] = bool(entry["columns_match"] and entry["only_in_lake"] == 0 and entry["only_in_floor"] == 0
                              and entry["lake_rows"] == entry["floor_rows"])
        marts[name] = entry
    return {"passed": all(m["equal"] for m in marts.values()), "marts": marts}


def perturb_floor(con) -> None:
    """Change one ranking row of the floor (its rank), so the comparison has something to find."""
    con.execute("""update memory.floor.mart_daily_rankings set rank = rank + 1000
                   where rowid = (select min(rowid) from memory.floor.mart_daily_rankings)""")


# -------------------------------------------------------------------------------------- Dagster figures


def _run_figures(instance, run_id: str) -> dict:
    """Per-step durations of one Dagster run, and dbt's per-node timings if the run invoked dbt."""
    import dagster as dg

    run = instance.get_run_by_id(run_id)
    stats = instance.get_run_stats(run_id)
    steps, starts = {}, []
    for s in instance.get_run_step_stats(run_id):
        if s.start_time and s.end_time:
            steps[s.step_key] = s.end_time - s.start_time
            starts.append(s.start_time)
    planned = len(instance.get_records_for_run(run_id, of_type={
        dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED},
        limit=1_000_000).records)
    out = {"run_id": run_id, "job": run.job_name,
           "duration_s": (stats.end_time - stats.start_time) if stats.end_time and stats.start_time else None,
           "steps_s": steps, "first_step_start": min(starts) if starts else None, "planned_events": planned}
    dbt = _dbt_run_results(run_id)
    if dbt:
        out["dbt"] = dbt
    return out


def _dbt_run_results(run_id: str) -> dict | None:
    """dbt's run_results.json of the invocation dagster-dbt made in this run (its target folder is named after the
    run id): time spent in models, seeds and tests, and the slowest nodes."""
    found = sorted((DBT_PROJECT_DIR / "target").glob(f"*-{run_id[:7]}-*/run_results.json"))
    if not found:
        return None
    data = json.loads(found[-1].read_text())
    by_kind: dict[str, float] = {}
    nodes = []
    for r in data.get("results", []):
        kind = r["unique_id"].split(".")[0]
        by_kind[kind] = by_kind.get(kind, 0.0) + float(r.get("execution_time") or 0.0)
        parts = r["unique_id"].split(".")  # test ids end in a hash: keep the test's name
        nodes.append((float(r.get("execution_time") or 0.0), parts[2] if kind == "test" else parts[-1]))
    nodes.sort(reverse=True)
    return {"elapsed_s": data.get("elapsed_time"), "by_kind_s": by_kind,
            "slowest": [{"node": n, "s": round(t, 3)} for t, n in nodes[:12]]}


def _split(*runs: dict) -> dict:
    """Where a run's time goes: raw landing, dbt models, dbt tests, GX checks, publish."""
    raw = dbt = gx = publish = other = tests = 0.0
    for run in runs:
        for key, secs in run["steps_s"].items():
            if "quality" in key or "freshness" in key:
                gx += secs
            elif key.startswith("raw"):
                raw += secs
            elif "dbt" in key:
                dbt += secs
            elif key.startswith("serving"):
                publish += secs
            else:
                other += secs
        tests += (run.get("dbt") or {}).get("by_kind_s", {}).get("test", 0.0)
    return {"raw_land_s": raw, "dbt_s": dbt, "dbt_tests_s": tests, "gx_checks_s": gx, "publish_s": publish,
            "other_steps_s": other, "checks_s": gx + tests}


def _failed_steps(res) -> str:
    return "; ".join(f"{e.step_key}: {e.event_specific_data.error.message.strip()[:300]}"
                     for e in res.all_events if e.event_type_value == "STEP_FAILURE")


# ---------------------------------------------------------------------------------------- the harness


def run_step(name: str, home: Home, log, **kwargs) -> dict:
    """Run one step in a child process; return its figures plus wall time and peak memory."""
    with tempfile.TemporaryDirectory(prefix="chartlake-bench-") as tmp:
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "_step", name, "--home", str(home.root),
               "--out", str(out), "--kwargs", json.dumps(kwargs, default=str)]
        env = {**os.environ, "CHARTLAKE_HOME": str(home.root), "DAGSTER_HOME": str(home.root / "dagster")}
        # dbt and Dagster are chatty: each step's output goes to a log beside the home, shown if the step fails.
        logs = home.root / "bench_logs"
        logs.mkdir(exist_ok=True)
        log_path = logs / f"{len(list(logs.iterdir())):02d}-{name}.log"
        t0 = time.perf_counter()
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT)
            sampler = _TreeRss(proc.pid)
            sampler.start()
            _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise BenchError(f"step {name} {kwargs} failed with exit code {proc.returncode}; log {log_path}:\n{tail}")
        figures = json.loads(out.read_text())
    # ru_maxrss is in KiB on Linux; the sampled figure is in bytes.
    # CPU seconds of the step's process tree: on a shared machine, a steadier measure than wall time.
    figures.update(step=name, wall_s=wall, cpu_s=usage.ru_utime + usage.ru_stime, load_avg=os.getloadavg()[0],
                   peak_rss_tree_mb=sampler.peak / 2**20, peak_rss_single_process_mb=usage.ru_maxrss / 1024)
    log(f"  {name} {kwargs}: {wall:.1f} s wall, peak RSS {figures['peak_rss_tree_mb']:.0f} MB")
    return figures


class _TreeRss(threading.Thread):
    """Samples the summed RSS of a process and all its descendants (from /proc) and keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop_event = threading.Event()

    def run(self):
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop_event.is_set():
            self.peak = max(self.peak, _tree_rss(self.pid, page))
            self._stop_event.wait(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join()


def _tree_rss(root: int, page: int) -> int:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            pass
        todo.extend(children.get(pid, []))
    return total


def history_points(days: int) -> list[int]:
    """The history sizes (days already built) at which a one-day update is measured."""
    return [h for h in HISTORY_POINTS if h < days] + [days]


def bench(*, days: int, countries: int, depth: int, home_root: Path, results_dir: Path, keep: bool,
          log=print) -> dict:
    """The whole benchmark. Day ``d`` (1-based) is ``START + d - 1``. For each history size H: land days up to H,
    build what is not built yet, then measure the update of day H + 1. Before the last update (H = --days), the
    full build over all H days is timed and compared with the floor on exactly those raw rows."""
    from orchestration.lib import lake
    from orchestration import demo

    if not 1 <= countries <= len(demo.ALL_COUNTRIES):
        raise BenchError(f"--countries must be 1..{len(demo.ALL_COUNTRIES)}, got {countries}")
    ccs = list(demo.ALL_COUNTRIES[:countries])
    home = Home(home_root).ensure()
    if home.lake_catalog.exists():
        raise BenchError(f"{home.root} already holds a lake: benchmarks start from an empty home")
    lake.install_extensions(home)
    workdir = home.root / "bench_scratch"
    workdir.mkdir(exist_ok=True)
    day_of = lambda n: START + dt.timedelta(days=n - 1)  # noqa: E731
    started = time.time()
    result: dict = {"size": {"days": days, "countries": countries, "country_codes": ccs, "depth": depth,
                             "charts": 3, "devices": 2,
                             "note": "iPhone top-free/top-paid come from Apple's v2 feed, capped at 100 entries"},
                    "ingest_batches": [], "catchup_builds": [], "updates": []}
    loaded, built = 0, 0
    for h in history_points(days):
        if loaded < h:
            log(f"ingest days {loaded + 1}..{h}")
            result["ingest_batches"].append(run_step("ingest", home, log, start=day_of(loaded + 1), end=day_of(h),
                                                     countries=ccs, depth=depth, workdir=str(workdir)))
            loaded = h
        if h == days:
            log(f"full build of days 1..{h}")
            result["full_build"] = run_step("warehouse", home, log, start=day_of(1), end=day_of(h))
            log("floor")
            result["floor"] = run_step("floor", home, log)
        elif built < h:
            log(f"catch-up build of days {built + 1}..{h}")
            result["catchup_builds"].append(run_step("warehouse", home, log, start=day_of(built + 1),
                                                     end=day_of(h)))
        built = h
        log(f"one-day update at {h} days of history (day {h + 1})")
        upd = run_step("update", home, log, day=day_of(h + 1), countries=ccs, depth=depth, workdir=str(workdir))
        upd["history_days"] = h
        result["updates"].append(upd)
        loaded = built = h + 1
    result["elapsed_s"] = time.time() - started
    result["disk"] = {"raw_store_mb": _du(home.raw) / 2**20, "lake_files_mb": _du(home.lake_files) / 2**20,
                      "serving_mb": _du(home.serving) / 2**20}
    result.update(figures(result), machine=machine(), versions=versions(),
                  measured_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "latest.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (results_dir / "latest.md").write_text(render_markdown(result))
    if not keep:
        shutil.rmtree(home.root, ignore_errors=True)
    return result


def figures(r: dict) -> dict:
    """The headline figures and each target, met or not, from the steps' measurements."""
    batches = r["ingest_batches"]
    rows = sum(b["rows"] for b in batches)
    ingest_s = sum(b["ingest_s"] for b in batches)
    ingest_cpu = sum(b["ingest_cpu_s"] for b in batches)
    ingest_floor_cpu = sum(b["floor_cpu_s"] for b in batches)
    full, floor = r["full_build"], r["floor"]
    dbt_full = (full["runs"][0].get("dbt") or {}).get("elapsed_s")
    updates = {u["history_days"]: u for u in r["updates"]}
    first, last = updates[min(updates)], updates[max(updates)]
    # The target is about the warehouse's own steps: the floor is a reference script whose DuckDB runs with its
    # default limit (80% of RAM), so it is reported apart.
    steps = [*batches, *r["catchup_builds"], full, *r["updates"]]
    peak_tree = max(s["peak_rss_tree_mb"] for s in steps)
    peak_single = max(s["peak_rss_single_process_mb"] for s in steps)
    floor_total = floor["total_s"] + floor["serve_s"]
    floor_total_cpu = floor["cpu_s_floor"] + floor["serve_cpu_s"]
    disk = r["disk"]
    f = {
        "raw_rows": floor["raw_rows"],
        "ingest_rows_per_s": rows / ingest_s if ingest_s else None,
        "ingest_rows_per_cpu_s": rows / ingest_cpu if ingest_cpu else None,
        "ingest_cpu_s": ingest_cpu,
        "ingest_floor_cpu_s": ingest_floor_cpu,
        "ingest_floor_s": sum(b["floor_s"] for b in batches),
        "ingest_vs_floor_cpu": ingest_cpu / ingest_floor_cpu if ingest_floor_cpu else None,
        "ingest_vs_floor_wall": ingest_s / sum(b["floor_s"] for b in batches) if batches else None,
        "ingest_floor_equal": all(b["floor_mismatched_rows"] == 0 for b in batches)
                              and sum(b["floor_rows"] for b in batches) == rows,
        "full_build_s": full["total_s"],
        "full_build_cpu_s": full["cpu_s"],
        "full_build_dbt_s": dbt_full,
        "floor_s": floor["total_s"],
        "serve_floor_s": floor["serve_s"],
        "floor_cpu_s": floor["cpu_s_floor"],
        "serve_floor_cpu_s": floor["serve_cpu_s"],
        "full_build_vs_floor": full["total_s"] / floor_total,
        "full_build_vs_floor_cpu": full["cpu_s"] / floor_total_cpu if floor_total_cpu else None,
        "dbt_build_vs_floor": (dbt_full / floor["total_s"]) if dbt_full else None,
        "dagster_before_first_step_s": full.get("before_first_step_s"),
        "dagster_before_first_step": (full["before_first_step_s"] / full["total_s"])
                                     if full.get("before_first_step_s") is not None else None,
        "planned_events_full_build": full["runs"][0].get("planned_events"),
        "equality_passed": floor["equality"]["passed"],
        "update_s": {h: u["total_s"] for h, u in sorted(updates.items())},
        "update_scaling": last["total_s"] / first["total_s"],
        "update_scaling_between": [min(updates), max(updates)],
        "checks_share": last["checks_share"],
        "peak_rss_mb": peak_tree,
        "peak_rss_single_process_mb": peak_single,
        "floor_peak_rss_mb": floor["peak_rss_tree_mb"],
        "raw_store_vs_lake": disk["raw_store_mb"] / disk["lake_files_mb"] if disk["lake_files_mb"] else None,
    }
    size = r["size"]
    at_scale = size["days"] >= 365 and size["countries"] >= 50
    values = {"full_build_vs_floor": f["full_build_vs_floor"], "full_build_vs_floor_cpu": f["full_build_vs_floor_cpu"],
              "ingest_vs_floor_cpu": f["ingest_vs_floor_cpu"], "update_scaling": f["update_scaling"],
              "checks_share": f["checks_share"], "peak_memory": peak_single,
              "dagster_before_first_step": f["dagster_before_first_step"],
              "raw_store_vs_lake": f["raw_store_vs_lake"]}
    targets = {}
    for k, value in values.items():
        limit = LIMITS[k]
        met = value is not None and (value < limit if k == "peak_memory" else value <= limit)
        targets[k] = {"value": value, "limit": limit, "met": met, "target": TARGETS[k],
                      "at_target_size": size["days"] >= 365 if k == "update_scaling" else at_scale}
    return {"figures": f, "targets": targets}


def machine() -> dict:
    cpu = ""
    try:
        cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                    if l.startswith("model name")), "")
    except OSError:
        pass
    mem = 0
    try:
        mem = int(next(l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines()
                       if l.startswith("MemTotal"))) * 1024
    except (OSError, StopIteration):
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem / 2**30, 1),
            "python": platform.python_version(), "load_avg_at_end": load}


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("duckdb", "dagster", "dagster-dbt", "dbt-core", "dbt-duckdb", "great-expectations", "pandas"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


# ------------------------------------------------------------------------------------------- markdown


def render_markdown(r: dict) -> str:
    f, t, size = r["figures"], r["targets"], r["size"]
    m, v = r["machine"], r["versions"]
    lines = [
        "# chartlake benchmark results",
        "",
        f"Measured {r['measured_at']} by `benchmarks/run.py --days {size['days']} --countries {size['countries']} "
        f"--depth {size['depth']}` ({size['days']} days x {size['countries']} countries x 3 charts x 2 devices x "
        f"up to {size['depth']} ranks; {size['note']}). Whole run: {r['elapsed_s'] / 60:.1f} min.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB RAM, {m['platform']}, Python {m['python']}; "
        f"load average at the end {tuple(round(x, 2) for x in m['load_avg_at_end'] or ())} (the cores are shared "
        "with other work, so times are upper bounds).",
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
        "## Targets",
        "",
        "| target | measured | met | measured at the target's size |",
        "|---|---|---|---|",
    ]
    ratio = lambda x: f"{x:.2f}x"  # noqa: E731
    fmt = {"full_build_vs_floor": ratio, "full_build_vs_floor_cpu": ratio, "ingest_vs_floor_cpu": ratio,
           "update_scaling": ratio, "checks_share": lambda x: f"{x:.0%}", "peak_memory": lambda x: f"{x:,.0f} MB",
           "dagster_before_first_step": lambda x: f"{x:.1%}", "raw_store_vs_lake": ratio}
    for k, tg in t.items():
        val = fmt[k](tg["value"]) if tg["value"] is not None else "n/a"
        lines.append(f"| {tg['target']} | {val} | {'**met**' if tg['met'] else '**not met**'} | "
                     f"{'yes' if tg['at_target_size'] else 'no (smaller run)'} |")
    h0, h1 = f["update_scaling_between"]
    lines += [
        "",
        f"The update-scaling ratio compares the update at {h1} days of history with the one at {h0} days.",
        "",
        "## Figures",
        "",
        f"- Raw rows in the lake at the full build: {f['raw_rows']:,}.",
        f"- Ingest (payload files -> raw store -> lake, stage + land): {f['ingest_rows_per_s']:,.0f} rows/s, "
        f"{f['ingest_rows_per_cpu_s']:,.0f} rows per CPU-second " + _ingest_detail(r) + ".",
        f"- Ingest floor (`benchmarks/ingest_floor.sql`: DuckDB `read_json` with an explicit schema + sha256 + one "
        f"DuckLake insert per day, on the same files, interleaved): {f['ingest_floor_s']:.1f} s wall, "
        f"{f['ingest_floor_cpu_s']:.1f} CPU s. Ours / floor: {_x(f['ingest_vs_floor_cpu'])} in CPU seconds, "
        f"{_x(f['ingest_vs_floor_wall'])} wall. Same rows as ours: **{'yes' if f['ingest_floor_equal'] else 'NO'}**.",
        f"- Full build (Dagster `warehouse_job`: dbt build with tests, GX marts check, publish): "
        f"{f['full_build_s']:.1f} s wall, {f['full_build_cpu_s']:.1f} CPU s; dbt alone {_s(f['full_build_dbt_s'])}; "
        f"Dagster before the first step {_s(f['dagster_before_first_step_s'])} "
        f"({f['planned_events_full_build']} planned-materialization/check events).",
        f"- Floor (`benchmarks/floor.sql`, one DuckDB process): {f['floor_s']:.1f} s wall, {f['floor_cpu_s']:.1f} "
        f"CPU s; serve floor (its marts into a DuckDB file, `CREATE TABLE AS`): {f['serve_floor_s']:.1f} s wall, "
        f"{f['serve_floor_cpu_s']:.1f} CPU s. Full build / (floor + serve floor): {f['full_build_vs_floor']:.2f}x "
        f"wall, {_x(f['full_build_vs_floor_cpu'])} CPU (dbt build alone / floor: {_x(f['dbt_build_vs_floor'])}).",
        f"- Marts equal to the floor's: **{'yes' if f['equality_passed'] else 'NO'}** "
        + _equality_detail(r["floor"]["equality"]) + ".",
        f"- Peak RSS: largest single process {f['peak_rss_single_process_mb']:,.0f} MB; largest step's process "
        f"tree {f['peak_rss_mb']:,.0f} MB; the floor script's own DuckDB (default limit, 80% of RAM): "
        f"{f.get('floor_peak_rss_mb', 0):,.0f} MB.",
        f"- Disk: raw store {r['disk']['raw_store_mb']:,.0f} MB, lake files {r['disk']['lake_files_mb']:,.0f} MB "
        f"(raw / lake {_x(f['raw_store_vs_lake'])}), serving {r['disk']['serving_mb']:,.0f} MB.",
        "",
        "### One-day update (stage one new day + `run_range(home, day, day)`)",
        "",
        "| history (days) | total s | stage s | raw land s | dbt s (of which tests) | GX checks s | publish s | "
        "checks share | peak RSS MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for u in r["updates"]:
        lines.append(f"| {u['history_days']} | {u['total_s']:.1f} | {u['stage_s']:.1f} | {u['raw_land_s']:.1f} | "
                     f"{u['dbt_s']:.1f} ({u['dbt_tests_s']:.1f}) | {u['gx_checks_s']:.1f} | {u['publish_s']:.1f} | "
                     f"{u['checks_share']:.0%} | {u['peak_rss_tree_mb']:,.0f} |")
    lines += ["", "Checks = GX raw and marts checks + dbt tests. Step times are Dagster's; the rest of "
              "`run_range` is Dagster's own run start-up and bookkeeping.", "",
              "### Every step", "",
              "| step | window | wall s | CPU s | peak RSS MB (process tree) | largest single process MB | "
              "load avg (1 min) at its end |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for s in [*r["ingest_batches"], *r["catchup_builds"], r["full_build"], r["floor"], *r["updates"]]:
        window = (s.get("day") or (f"{s['start']}..{s['end']}" if s.get("start") else "")
                  or (f"{s['days']} days" if "days" in s else "all raw rows"))
        lines.append(f"| {s['step']} | {window} | {s['wall_s']:.1f} | {s.get('cpu_s', 0):.1f} | "
                     f"{s['peak_rss_tree_mb']:,.0f} | "
                     f"{s['peak_rss_single_process_mb']:,.0f} | {s.get('load_avg', 0):.2f} |")
    lines += ["", "### Where the time goes: slowest dbt nodes", ""]
    for label, run in [("full build", r["full_build"]["runs"][0]),
                       *[(f"update at {u['history_days']} days", u["runs"][-1]) for u in r["updates"]]]:
        dbt = run.get("dbt")
        if not dbt:
            continue
        kinds = ", ".join(f"{k} {s:.1f} s" for k, s in sorted(dbt["by_kind_s"].items()))
        lines.append(f"- {label} (dbt {_s(dbt['elapsed_s'])}; {kinds}): "
                     + ", ".join(f"`{n['node']}` {n['s']:.1f} s" for n in dbt["slowest"][:8]))
    analysis = BENCH_DIR / "analysis.md"
    if analysis.exists():
        lines += ["", analysis.read_text().rstrip()]
    return "\n".join(lines) + "\n"


def _ingest_detail(r) -> str:
    b = r["ingest_batches"]
    files, rows = sum(x["files"] for x in b), sum(x["rows"] for x in b)
    return (f"({files:,} payload files, {sum(x['payload_bytes'] for x in b) / 2**20:,.0f} MB, {rows:,} rows; "
            f"stage {sum(x['stage_s'] for x in b):.1f} s, land {sum(x['land_s'] for x in b):.1f} s; generating the "
            f"payloads took another {sum(x['generate_s'] for x in b):.1f} s in a second process, of which "
            f"{sum(x.get('generate_wait_s', 0) for x in b):.1f} s were waited for; not counted)")


def _equality_detail(eq: dict) -> str:
    return "(" + "; ".join(f"{k}: {m['lake_rows']:,} rows" if m["equal"] else
                           f"{k}: DIFFERS (lake {m['lake_rows']}, floor {m['floor_rows']}, only in lake "
                           f"{m['only_in_lake']}, only in floor {m['only_in_floor']})"
                           for k, m in eq["marts"].items()) + ")"


def _s(x) -> str:
    return f"{x:.1f} s" if x is not None else "n/a"


def _x(x) -> str:
    return f"{x:.2f}x" if x is not None else "n/a"


# ----------------------------------------------------------------------------------------------- CLI


STEPS = {"ingest": step_ingest, "warehouse": step_warehouse, "update": step_update, "floor": step_floor}


def _step_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="run.py _step")
    ap.add_argument("name", choices=sorted(STEPS))
    ap.add_argument("--home", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--kwargs", default="{}")
    args = ap.parse_args(argv)
    kwargs = json.loads(args.kwargs)
    for key in ("start", "end", "day"):
        if key in kwargs:
            kwargs[key] = dt.date.fromisoformat(kwargs[key])
    if "workdir" in kwargs:
        kwargs["workdir"] = Path(kwargs["workdir"])
    out = STEPS[args.name](Home(Path(args.home)), **kwargs)
    Path(args.out).write_text(json.dumps(out, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_step"]:
        return _step_main(argv[1:])
    ap = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=365, help="days of history (default 365)")
    ap.add_argument("--countries", type=int, default=50, help="number of storefronts, 1..50 (default 50)")
    ap.add_argument("--depth", type=int, default=200, help="ranks per chart, 1..200 (default 200)")
    ap.add_argument("--home", type=Path, help="an empty folder for the benchmark's chartlake home "
                    "(default: a new temporary folder, deleted afterwards unless --keep)")
    ap.add_argument("--results", type=Path, default=RESULTS_DIR, help="where latest.json/latest.md go")
    ap.add_argument("--keep", action="store_true", help="keep the home afterwards (it is deleted by default)")
    args = ap.parse_args(argv)
    if args.days < 1:
        ap.error("--days must be at least 1")
    if not (DBT_PROJECT_DIR / "target" / "manifest.json").exists():
        ap.error("no dbt manifest: run `make setup` (or `.venv/bin/chartlake setup`) first")
    home_root = args.home or Path(tempfile.mkdtemp(prefix="chartlake-bench-home-"))
    print(f"benchmark home: {home_root}")
    try:
        result = bench(days=args.days, countries=args.countries, depth=args.depth, home_root=home_root,
                       results_dir=args.results, keep=args.keep)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    print(f"results: {args.results / 'latest.md'}")
    for k, t in result["targets"].items():
        print(f"  {'met    ' if t['met'] else 'NOT met'}  {t['target']}: {t['value']}")
    f = result["figures"]
    return 0 if f["equality_passed"] and f["ingest_floor_equal"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
