"""Issue 17, kill -9 trials: a writer killed at a random point of import, landing, dbt, checks or publish leaves a
home whose re-run publishes exactly what an uninterrupted run published (mart content hashes), with no raw row
lost or duplicated, no half-written serving file, the killed run marked failed and no temp file left behind.

Seeded (``CHARTLAKE_FAULT_SEED``, default 17), ``CHARTLAKE_FAULT_KILLS`` trials (default 20: four per phase, in a
seeded order). One uninterrupted reference run is made once and every trial is compared with it. A kill point is
chosen from the phases the reference logged: the trial waits until its command enters the phase (the writer lock
names the import's pid; the Dagster event log shows the phase's first step start, read with plain sqlite, which
costs the command nothing), then kills after a seeded fraction of the time the reference spent in that phase. A
trial counts only if the kill landed inside its phase (the phase had started and not finished, from the killed
home's own event log). ``CHARTLAKE_FAULT_PARALLEL`` (default 2, one per core) trials run at a time, each on its own
home: the commands are single-threaded, so two at once halve the wall time without changing what a kill hits.

What keeps 20 trials within a few minutes on 2 cores (each trial is still a real ``chartlake`` run killed, then a
real re-run): one chart date (one raw run to land, the smallest dbt window); a trial starts from a copy of the
home as it stood before its phase, so it spends its time where it kills: import trials from an empty home, landing
trials from one with the payloads staged, dbt, checks and publish trials from one with them landed (its
``chartlake run`` lands nothing new, as a run after an ``import`` that landed); and the trials that kill late in a
run are started first, so the last minute is not one long trial on one core.

The kill takes the command's whole process group (the CLI and its dbt subprocess), as a crash or the OOM killer
of the session would: an orphaned dbt still writing after its parent died is not something the writer lock sees.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import sqlite3
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from orchestration import runner
from orchestration.config import Home
from orchestration import demo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from writer_helpers import kill_group, mart_hashes, raw_counts, run, start  # noqa: E402

pytestmark = pytest.mark.slow

DAYS = (dt.date(2025, 1, 14),)
ROWS = len(DAYS) * 6 * 10  # days x charts (2 devices x 3) x depth 10
# Phase -> the Dagster steps that make it up (import: the staging of `chartlake import`, before any run). Landing
# is the raw runs whole (one per day: the landing step, its duplicate check, the quarantine asset's raw check).
PHASES = {
    "import": lambda step: False,
    "landing": lambda step: step.startswith("raw__"),
    "dbt": lambda step: step == "chartlake_dbt_assets",
    "checks": lambda step: step == "marts__mart_daily_rankings_marts_quality",
    "publish": lambda step: step == "serving__chartlake",
}


def _kills() -> int:
    return int(os.environ.get("CHARTLAKE_FAULT_KILLS", "20"))


def _parallel() -> int:
    return max(1, int(os.environ.get("CHARTLAKE_FAULT_PARALLEL", "2")))


def _phase_of(step: str) -> str | None:
    for phase, holds in PHASES.items():
        if holds(step):
            return phase
    return None


def _step_events(home: Home) -> list[tuple[str, str, str, float]]:
    """(run id, step key, STEP_START|STEP_SUCCESS|STEP_FAILURE, unix time) from the home's SQLite event logs."""
    out = []
    runs = home.root / "dagster" / "history" / "runs"
    for db in sorted(runs.glob("*.db")) if runs.is_dir() else []:
        if db.name == "index.db":
            continue
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            try:
                rows = con.execute(
                    "select step_key, dagster_event_type, timestamp from event_logs where step_key is not null "
                    "and dagster_event_type in ('STEP_START', 'STEP_SUCCESS', 'STEP_FAILURE')").fetchall()
            finally:
                con.close()
        except sqlite3.OperationalError:  # created but not yet migrated, or briefly locked: read it next time
            continue
        for step, kind, ts in rows:
            when = dt.datetime.fromisoformat(ts).replace(tzinfo=dt.timezone.utc).timestamp() \
                if isinstance(ts, str) else float(ts)
            out.append((db.stem, step, kind, when))
    return out


def _phase_progress(home: Home, phase: str) -> tuple[bool, bool]:
    """(started, finished) of a run phase, from the event log: finished when every step of it that started ended
    and the next phase started (landing spans several raw runs), or, for publish, its step ended."""
    events = _step_events(home)
    mine = [(r, s, k) for r, s, k, _ in events if _phase_of(s) == phase]
    started = any(k == "STEP_START" for _, _, k in mine)
    open_steps = {(r, s) for r, s, k in mine if k == "STEP_START"} - {(r, s) for r, s, k in mine if k != "STEP_START"}
    order = list(PHASES)
    later = set(order[order.index(phase) + 1:])
    next_started = not later or any(_phase_of(s) in later and k == "STEP_START" for _, s, k, _ in events)
    return started, started and not open_steps and next_started


def _phase_spans(home: Home) -> dict[str, float]:
    """Seconds from each run phase's first step start to its last step end, in the reference run."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for _, step, kind, when in _step_events(home):
        phase = _phase_of(step)
        if phase is None:
            continue
        if kind == "STEP_START":
            first[phase] = min(first.get(phase, when), when)
        else:
            last[phase] = max(last.get(phase, when), when)
    return {p: last[p] - first[p] for p in first if p in last}


def _holds_lock(home: Home, pid: int) -> bool:
    try:
        return json.loads((home.root / ".writer.lock").read_text() or "null")["pid"] == pid
    except (OSError, ValueError, TypeError, KeyError):
        return False


def _wait_until(proc, ready, timeout: float = 900) -> bool:
    """Poll ``ready()`` until True, or until the command ended first (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    raise AssertionError(f"the phase did not start within {timeout} s")


def _unfinished_cli_runs(home: Home) -> list[str]:
    instance = runner.instance_for(home)
    try:
        return [r.run_id for r in instance.get_runs(filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED],
            tags={runner.LAUNCHED_BY_TAG: "cli"}))]
    finally:
        instance.dispose()


def _temp_files(home: Home) -> list[Path]:
    return [*home.raw.glob("*/.tmp-*"), *home.serving.glob(".chartlake.duckdb.*.tmp*")]


@dataclass
class Trial:
    index: int
    phase: str
    fraction: float  # of the reference's time in the phase, after the command entered it
    delay: float = 0.0
    hit: bool = False
    seconds: float = 0.0


def test_kill_9_at_random_points_then_rerun_publishes_the_same_marts(tmp_path):
    t_start = time.monotonic()
    seed = int(os.environ.get("CHARTLAKE_FAULT_SEED", "17"))
    rng = random.Random(seed)
    payloads = tmp_path / "payloads"
    demo.generate(payloads, start=DAYS[0], end=DAYS[-1], countries=("us",), depth=10)

    # The uninterrupted reference, timed per phase: `import --no-land`, then `run`.
    ref = Home(tmp_path / "reference")
    proc = start(ref, "import", "--no-land", str(payloads))
    assert _wait_until(proc, lambda: _holds_lock(ref, proc.pid)), proc.communicate()
    locked_at = time.monotonic()
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    spans = {"import": time.monotonic() - locked_at}
    staged = tmp_path / "staged-template"  # the payloads staged, before any run: where landing trials start
    shutil.copytree(ref.root, staged)
    # Where dbt, checks and publish trials start: the same payloads staged and landed by `import`, made beside the
    # reference run (one per core, as the trials run). Nothing is asserted of it that the trials do not check.
    landed = Home(tmp_path / "landed-template")
    with ThreadPoolExecutor(max_workers=2) as pool:
        reference = pool.submit(run, ref, "run")
        landing = pool.submit(run, landed, "import", str(payloads))
        proc, land = reference.result(), landing.result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert land.returncode == 0, land.stderr[-3000:]
    expected = mart_hashes(ref)
    assert raw_counts(ref) == (ROWS, 0)
    assert raw_counts(landed) == (ROWS, 0)
    spans |= _phase_spans(ref)
    assert set(spans) == set(PHASES), spans
    reference_seconds = time.monotonic() - t_start
    template = {"import": None, "landing": staged, "dbt": landed.root, "checks": landed.root,
                "publish": landed.root}

    order = list(PHASES)
    rng.shuffle(order)
    trials = [Trial(i, order[i % len(order)], rng.random()) for i in range(_kills())]

    def one(trial: Trial) -> Trial:
        t0 = time.monotonic()
        home = Home(tmp_path / f"trial-{trial.index}-{trial.phase}")
        trial.delay = trial.fraction * 0.9 * spans[trial.phase]
        where = f"seed {seed}, trial {trial.index} ({trial.phase}, {trial.delay:.2f} s into it)"
        if trial.phase == "import":
            proc = start(home, "import", "--no-land", str(payloads))
            entered = _wait_until(proc, lambda: _holds_lock(home, proc.pid))
            time.sleep(trial.delay)
            trial.hit = entered and proc.poll() is None
            kill_group(proc)
        else:
            shutil.copytree(template[trial.phase], home.root)
            proc = start(home, "run")
            entered = _wait_until(proc, lambda: _phase_progress(home, trial.phase)[0])
            time.sleep(trial.delay)
            alive = proc.poll() is None
            kill_group(proc)
            trial.hit = entered and alive and not _phase_progress(home, trial.phase)[1]
        # Whatever the kill interrupted, a serving file is either absent or a whole publish.
        if home.serving_db.exists():
            assert mart_hashes(home) == expected, where

        # The re-run: what a user does next.
        if trial.phase == "import":
            again = run(home, "import", "--no-land", str(payloads))
            assert again.returncode == 0, (where, again.stderr[-3000:])
        again = run(home, "run")
        assert again.returncode == 0, (where, again.stdout[-2000:], again.stderr[-3000:])
        assert raw_counts(home) == (ROWS, 0), where
        assert mart_hashes(home) == expected, where
        assert _unfinished_cli_runs(home) == [], where
        assert _temp_files(home) == [], where
        shutil.rmtree(home.root)
        trial.seconds = time.monotonic() - t0
        return trial

    # Longest first (a late kill costs a run up to its phase, then a whole re-run); the trials stay as seeded.
    cost = {phase: i for i, phase in enumerate(reversed(list(PHASES)))}
    queue = sorted(trials, key=lambda t: (cost[t.phase], -t.fraction))
    with ThreadPoolExecutor(max_workers=_parallel()) as pool:
        done = sorted(pool.map(one, queue), key=lambda t: t.index)

    print(f"\nkill -9 trials, seed {seed}: reference {reference_seconds:.0f} s, phase spans "
          + ", ".join(f"{p} {s:.1f} s" for p, s in spans.items())
          + f"; {len(done)} trials, {_parallel()} at a time, {time.monotonic() - t_start:.0f} s in all")
    for t in done:
        print(f"  trial {t.index:2d} {t.phase:8s} killed {t.delay:5.2f} s into it, inside it: {t.hit}, "
              f"{t.seconds:.0f} s")
    missed = [(t.index, t.phase, round(t.delay, 2)) for t in done if not t.hit]
    assert not missed, f"kills that did not land inside their phase: {missed}"
    if len(done) >= len(PHASES):
        assert {t.phase for t in done} == set(PHASES)
