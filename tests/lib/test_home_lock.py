"""Issue 17, one writer per home: the writer lock between real processes, the sensor and Dagster runs, the
instance created once, and recovery after a writer was killed (``kill -9``)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from orchestration import runner
from orchestration.config import Home
from orchestration.defs.executor import writer_executor
from orchestration.lib import home_lock
from tests.conftest import v2_payload

REPO = Path(__file__).resolve().parents[2]
CHARTLAKE = Path(sys.executable).parent / "chartlake"
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _holder(home: Home, seconds: float = 60) -> subprocess.Popen:
    """Another process holding the home's writer lock, as a writer would; ready once it printed 'held'."""
    proc = _python("""
        import sys, time
        from pathlib import Path
        from orchestration.lib import home_lock
        with home_lock.writer_lock(Path(sys.argv[1]), "holder-test --fake", wait=0):
            print("held", flush=True)
            time.sleep(float(sys.argv[2]))
        """, str(home.root), str(seconds))
    assert proc.stdout.readline().strip() == "held", proc.stderr.read()
    return proc


def _chartlake(home: Home, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHARTLAKE), "--home", str(home.root), *args], capture_output=True, text=True,
                          env=ENV, timeout=timeout)


def test_second_writer_exits_2_naming_the_holder(home):
    holder = _holder(home)
    try:
        t0 = time.monotonic()
        proc = _chartlake(home, "run")
        assert proc.returncode == 2, proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith("chartlake run: error: home ")
        assert f"pid {holder.pid} on " in line and "(holder-test --fake, since 20" in line, line
        assert "--wait" in line
        # Refused at once, before anything was written: no lake, no Dagster instance.
        assert time.monotonic() - t0 < 60
        assert not home.lake_catalog.exists() and not (home.root / "dagster").exists()
        proc = _chartlake(home, "import", "--wait", "1", str(home.root / "nothing"))
        assert proc.returncode == 2
        waiting, error = proc.stderr.strip().splitlines()
        assert waiting.startswith("chartlake import: waiting (at most 1 s) for pid ") and "holder-test" in waiting
        assert "busy after waiting 1 s" in error and f"pid {holder.pid}" in error
    finally:
        holder.kill()
        holder.wait()


def test_waiting_writer_goes_on_when_the_holder_finishes(home):
    holder = _holder(home, seconds=20)  # still holding when the CLI, slow to start on a busy machine, asks
    proc = _chartlake(home, "run", "--wait")
    holder.wait()
    # Past the lock: it now says what it found (nothing staged), not that the home is busy.
    assert proc.returncode == 2
    waiting, error = proc.stderr.strip().splitlines()
    assert waiting.startswith("chartlake run: waiting for pid ")
    assert error == "chartlake run: error: nothing staged in the lake: `chartlake import PATH...` first"


def test_a_killed_holder_frees_the_home_at_once(home):
    holder = _holder(home)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    proc = _chartlake(home, "run")
    assert proc.returncode == 2 and "nothing staged" in proc.stderr and "busy" not in proc.stderr, proc.stderr


def test_lock_is_reentrant_in_one_process_and_exclusive_across(home):
    with home_lock.writer_lock(home.root, "outer") as me:
        assert me.pid == os.getpid()
        with home_lock.writer_lock(home.root, "inner (demo -> import)", wait=0):
            assert home_lock.holder(home.root).command == "outer"
        # Another thread of this process is another writer (a code server evaluating two things at once).
        import threading

        seen = []

        def other_thread():
            try:
                with home_lock.writer_lock(home.root, "thread", wait=0):
                    seen.append("got it")
            except home_lock.HomeBusy as exc:
                seen.append(f"busy: {exc.holder.command}")

        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        assert seen == ["busy: outer"]
        probe = _python("""
            import sys
            from pathlib import Path
            from orchestration.lib import home_lock
            try:
                with home_lock.writer_lock(Path(sys.argv[1]), "probe", wait=0):
                    print("got it")
            except home_lock.HomeBusy as exc:
                print("busy:", exc.holder.command)
            """, str(home.root))
        out, err = probe.communicate(timeout=60)
        assert out.strip() == "busy: outer", err
    probe = _python("""
        import sys
        from pathlib import Path
        from orchestration.lib import home_lock
        with home_lock.writer_lock(Path(sys.argv[1]), "probe", wait=0):
            print("got it")
        """, str(home.root))
    assert probe.communicate(timeout=60)[0].strip() == "got it"


def test_inbox_sensor_skips_a_tick_while_the_home_is_busy(home):
    from orchestration.defs.raw.sensors import build_inbox_sensor
    from orchestration.defs.resources import ChartlakeHome

    dropped = home.inbox / "us-iphone-top-free-2025-01-14.json"
    dropped.write_bytes(v2_payload("us", "top-free", [("1", "A"), ("2", "B")]))
    sensor = build_inbox_sensor(settle_seconds=0)
    holder = _holder(home)
    try:
        with dg.build_sensor_context(resources={"chartlake": ChartlakeHome(path=str(home.root))}) as ctx:
            result = sensor(ctx)
        assert isinstance(result, dg.SkipReason), result
        assert "1 settled file(s) wait in" in result.skip_message and f"pid {holder.pid}" in result.skip_message
        assert dropped.exists() and not home.lake_catalog.exists()
    finally:
        holder.kill()
        holder.wait()
    with dg.build_sensor_context(resources={"chartlake": ChartlakeHome(path=str(home.root))}) as ctx:
        result = sensor(ctx)
    assert [r.partition_key for r in result.run_requests] == ["2025-01-14"]
    assert not dropped.exists() and (home.inbox / "processed" / dropped.name).exists()


# --- the executor every Dagster run on a home uses (daemon- and UI-launched runs) ------------------------------
@dg.op
def _probe_lock(context) -> dict:
    """Inside a step (its own process under the multiprocess executor): is the home locked by someone else?"""
    import fcntl

    root = Path(os.environ["CHARTLAKE_HOME"])
    fd = os.open(home_lock.lock_path(root), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        locked = False
    except BlockingIOError:
        locked = True
    finally:
        os.close(fd)
    return {"locked": locked, "pid": os.getpid(), "at": time.time(), "holder": home_lock.holder(root).command}


@dg.job(executor_def=writer_executor)
def _two_parallel_steps():
    _probe_lock.alias("a")()
    _probe_lock.alias("b")()


def test_dagster_runs_hold_the_lock_for_the_whole_run_and_wait_for_it(home, monkeypatch, tmp_path):
    monkeypatch.setenv("CHARTLAKE_HOME", str(home.root))
    holder = _holder(home, seconds=15)  # longer than the run takes to start, even on a busy machine
    released_by = time.time() + 15
    with dg.instance_for_test() as instance:
        with dg.execute_job(dg.build_reconstructable_job("tests.lib.test_home_lock", "_get_job"),
                            instance=instance) as result:
            assert result.success
            a, b = result.output_for_node("a"), result.output_for_node("b")
        logs = [e.user_message for e in instance.all_logs(result.run_id)]
    holder.wait()
    # Two step processes, both while the run (not they) held the lock, both after the holder let go.
    assert a["pid"] != b["pid"] != os.getpid()
    assert a["locked"] and b["locked"]
    assert a["holder"].startswith("dagster run ") and "_two_parallel_steps" in a["holder"]
    assert min(a["at"], b["at"]) >= released_by - 0.5
    assert any(m.startswith(f"waiting for the writer lock of {home.root}: held by pid {holder.pid}") for m in logs)


def _get_job():
    return _two_parallel_steps


# --- the Dagster instance is created once -----------------------------------------------------------------------
def test_processes_creating_the_instance_at_once_leave_one_migration_head(tmp_path):
    for attempt in range(3):
        home = Home(tmp_path / f"home{attempt}").ensure()
        start_at = time.time() + 3
        procs = [_python("""
            import sys, time
            from orchestration import runner
            from orchestration.config import Home
            time.sleep(max(0, float(sys.argv[2]) - time.time()))
            inst = runner.instance_for(Home(__import__("pathlib").Path(sys.argv[1])))
            print(len(inst.get_runs()))
            inst.dispose()
            """, str(home.root), str(start_at)) for _ in range(3)]
        outs = [p.communicate(timeout=180) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-2000:] for o in outs]
        for db in (home.root / "dagster").rglob("*.db"):
            con = sqlite3.connect(db)
            try:
                tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
                if "alembic_version" in tables:
                    assert len(con.execute("select * from alembic_version").fetchall()) == 1, db
            finally:
                con.close()
        runner.instance_for(home).dispose()  # opens again


# --- recovery after kill -9 ------------------------------------------------------------------------------------
@dg.op
def _sleep_op():
    time.sleep(600)


@dg.job
def _sleeping_job():
    _sleep_op()


def test_a_killed_cli_run_is_marked_failed_and_temp_files_removed_by_the_next_writer(home, tmp_path):
    killed = _python("""
        import sys
        from pathlib import Path
        from orchestration import runner
        from orchestration.config import Home
        from orchestration.lib import home_lock
        from tests.lib.test_home_lock import _sleeping_job
        home = Home(Path(sys.argv[1]))
        with home_lock.writer_lock(home.root, "chartlake run (test)"):
            _sleeping_job.execute_in_process(instance=runner.instance_for(home), tags=runner.cli_tags())
        """, str(home.root))
    deadline = time.time() + 120
    instance = runner.instance_for(home)
    try:
        while not instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
            assert time.time() < deadline and killed.poll() is None, killed.stderr.read() if killed.poll() else ""
            time.sleep(0.3)
        (run,) = instance.get_runs()
        assert run.tags[runner.PID_TAG] == str(killed.pid)
    finally:
        instance.dispose()
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    # What a writer killed mid-write leaves: payload-store and serving temp files (and keeps: stored payloads).
    (home.raw / "ab").mkdir(parents=True)
    stray = [home.raw / "ab" / ".tmp-x1y2z3", home.serving / ".chartlake.duckdb.4242.0123456789ab.tmp",
             home.serving / ".chartlake.duckdb.4242.0123456789ab.tmp.wal"]
    kept = [home.raw / "ab" / ("ab" + "0" * 62 + ".payload"), home.serving / "chartlake.duckdb.wal"]
    for p in stray + kept:
        p.write_bytes(b"x")

    src = tmp_path / "in"
    src.mkdir()
    (src / "us.json").write_bytes(v2_payload("us", "top-free", [("1", "A"), ("2", "B")]))
    proc = _chartlake(home, "import", "--no-land", str(src))
    assert proc.returncode == 0, proc.stderr
    assert "had been left STARTED; marked FAILURE" in proc.stdout and f"pid {killed.pid}" in proc.stdout
    assert "removed 3 temp file(s)" in proc.stdout
    assert [p for p in stray if p.exists()] == [] and all(p.exists() for p in kept)
    instance = runner.instance_for(home)
    try:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.FAILURE
        failure = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert f"(pid {killed.pid}) ended without finishing it" in failure[0].dagster_event.message
    finally:
        instance.dispose()
    # Once recovered, nothing more to do; a live run is never touched (the lock says nobody else is running).
    proc = _chartlake(home, "import", "--no-land", str(src))
    assert proc.returncode == 0 and "recovered" not in proc.stdout, proc.stdout
