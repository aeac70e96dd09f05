"""Issue 17, "two writers at once": two and three ``chartlake run`` started together on a fresh home, several
times. Without ``--wait`` exactly one runs and the others exit 2 naming it; with ``--wait`` they run one after the
other. Either way every chart lands once, Dagster's instance has one migration head, and the home (its path has
an apostrophe: every path the CLI puts into SQL is escaped) reads back with ``status``."""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
from pathlib import Path

import pytest

from orchestration import runner
from orchestration.config import Home
from orchestration import demo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from writer_helpers import kill_group, mart_hashes, raw_counts, run, start  # noqa: E402

pytestmark = pytest.mark.slow

DAYS = (dt.date(2025, 1, 14), dt.date(2025, 1, 15))
ROWS = 2 * 6 * 10  # days x charts (2 devices x 3) x depth 10


@pytest.fixture(scope="module")
def payloads(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("payloads")
    demo.generate(out, start=DAYS[0], end=DAYS[-1], countries=("us",), depth=10)
    return out


def _staged_home(root: Path, payloads: Path) -> Home:
    home = Home(root)
    proc = run(home, "import", "--no-land", str(payloads))
    assert proc.returncode == 0, proc.stderr
    assert not (home.root / "dagster").exists()  # fresh: the racing runs create the Dagster instance
    return home


def _one_head(home: Home) -> None:
    for db in (home.root / "dagster").rglob("*.db"):
        con = sqlite3.connect(db)
        try:
            if con.execute("select count(*) from sqlite_master where name = 'alembic_version'").fetchone()[0]:
                assert len(con.execute("select * from alembic_version").fetchall()) == 1, db
        finally:
            con.close()
    runner.instance_for(home).dispose()


@pytest.mark.parametrize("writers", [2, 3])
def test_writers_started_together_without_wait(tmp_path, payloads, writers):
    home = _staged_home(tmp_path / "o'neil's home", payloads)
    procs = [start(home, "run") for _ in range(writers)]
    try:
        results = [(p.wait(timeout=900), *p.communicate()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                kill_group(p)
    codes = sorted(code for code, _, _ in results)
    assert codes == [0] + [2] * (writers - 1), [(c, e[-1500:]) for c, _, e in results]
    winner = next(p for p, (code, _, _) in zip(procs, results) if code == 0)
    for code, _, err in results:
        if code == 2:
            (line,) = err.strip().splitlines()
            assert line.startswith("chartlake run: error: home ") and " is busy: " in line, line
            assert f"pid {winner.pid} on " in line and "(chartlake run" in line, line
    assert raw_counts(home) == (ROWS, 0)
    _one_head(home)
    status = run(home, "status")
    assert status.returncode == 0, status.stderr
    assert "last publish #1 " in status.stdout and "failed landings (latest raw_job run of the chart date failed): 0" \
        in status.stdout


def test_writers_started_together_with_wait_run_one_after_the_other(tmp_path, payloads):
    home = _staged_home(tmp_path / "it's waiting", payloads)
    procs = [start(home, "run", "--wait") for _ in range(2)]
    try:
        results = [(p.wait(timeout=1800), *p.communicate()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                kill_group(p)
    assert [code for code, _, _ in results] == [0, 0], [e[-1500:] for _, _, e in results]
    waited = [err for _, _, err in results if "chartlake run: waiting for pid " in err]
    assert len(waited) == 1, [e for _, _, e in results]
    assert raw_counts(home) == (ROWS, 0)
    _one_head(home)
    status = run(home, "status")
    assert status.returncode == 0 and "last publish #2 " in status.stdout, status.stdout + status.stderr
    # The second run found everything landed and published the same marts again.
    from orchestration.lib.versions import published_hashes

    first, second = published_hashes(home, 1), published_hashes(home, 2)
    assert first == second and first["fct_chart_entries"][0] == ROWS
    assert mart_hashes(home)["fct_chart_entries"][0] == ROWS


def test_imports_started_together_land_each_chart_once(tmp_path, payloads):
    """Three `chartlake import` (staging and landing, no dbt) of the same folder at once on a fresh home, twice:
    one imports, the others exit 2; a second wave then finds everything stored and landed."""
    home = Home(tmp_path / "imports")
    for wave in range(2):
        procs = [start(home, "import", str(payloads)) for _ in range(3)]
        try:
            results = [(p.wait(timeout=900), *p.communicate()) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    kill_group(p)
        assert sorted(code for code, _, _ in results) == [0, 2, 2], [(c, e[-1500:]) for c, _, e in results]
        out = next(o for code, o, _ in results if code == 0)
        assert (f"{len(list(payloads.rglob('*.json')))} payloads: "
                + ("12 new, 0 already stored" if wave == 0 else "0 new, 12 already stored")) in out, out
        assert raw_counts(home) == (ROWS, 0)
    _one_head(home)
