"""The analysts' dashboards: build the Evidence project in ``reports/`` from a home's serving file.

Evidence (``@evidence-dev/evidence``, Node) runs in two steps: ``evidence sources`` runs the source queries
(``reports/sources/chartlake/*.sql``) against the DuckDB file and stores their results as Parquet, then
``evidence build`` renders every page to static HTML, running the pages' queries on that Parquet; a query that fails
fails the build.

Readers never block the pipeline, and a site shows one publish: the serving file is copied (from one open file
descriptor, so from one inode even if a publish renames a new file into place meanwhile) to a private snapshot, and
Evidence opens only that snapshot, read-only. The site is built into a new folder under
``<home>/reports/builds/`` and ``<home>/reports/site`` (a symlink) is switched to it atomically, so a server of the
previous site never sees a half-written one. One build at a time per project folder (Evidence writes into
``reports/.evidence``): builds take a lock.

Node packages come from ``reports/package-lock.json`` through ``npm ci``, run by the project's set-up (``make
report``), never here: a build without ``reports/node_modules`` fails and says how to install it.

Plain Python (no Dagster): the Dagster asset and the command line both call :func:`build_site`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import duckdb

from orchestration.config import PROJECT_ROOT, Home

REPORTS_DIR = PROJECT_ROOT / "reports"
SOURCE_NAME = "chartlake"  # reports/sources/chartlake/
# How many finished builds to keep beside the current one (a server may still be sending the previous site).
KEEP_BUILDS = 2
BUILD_TIMEOUT_SECONDS = 1800
INSTALL_HINT = ("run `make report` (it installs the pinned Node packages with `npm ci` from reports/package-lock.json) "
                "or `cd reports && npm ci`")


class ReportsError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class BuildResult:
    site: Path  # the new build folder (also what <home>/reports/site points to)
    link: Path  # <home>/reports/site
    pages: list[str]  # page routes, "/" first
    publish_id: int
    published_at: dt.datetime
    seconds: float
    built_at: dt.datetime

    @property
    def index(self) -> Path:
        return self.site / "index.html"


def site_link(home: Home) -> Path:
    return home.root / "reports" / "site"


def evidence_cli(project: Path | None = None) -> Path:
    """The project's own Evidence CLI; a missing install is an error naming the fix, not an install."""
    project = project or REPORTS_DIR
    exe = project / "node_modules" / ".bin" / "evidence"
    if not exe.exists():
        raise ReportsError(f"Evidence is not installed in {project} ({exe} missing): {INSTALL_HINT}")
    return exe


def evidence_env(project: Path, snapshot: Path, build_dir: Path) -> dict[str, str]:
    """The environment of an Evidence run: its source points at ``snapshot``, output to ``build_dir``, no network
    calls (telemetry off; npm's update notifier off)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_")}
    env.update({
        # Evidence reads a source's options from EVIDENCE_SOURCE__<source>__<option>, over connection.yaml. The
        # DuckDB driver (2.0.1) joins the filename to the source's folder even when it is absolute: give it relative.
        f"EVIDENCE_SOURCE__{SOURCE_NAME}__filename": os.path.relpath(snapshot, project / "sources" / SOURCE_NAME),
        "EVIDENCE_BUILD_DIR": str(build_dir),
        # Telemetry is off in reports/evidence.settings.json (send_anonymous_usage_stats: no), the one place
        # @evidence-dev/telemetry 2.1 reads it from (it reads SEND_ANONYMOUS_USAGE_STATS only without settings).
        "SEND_ANONYMOUS_USAGE_STATS": "no",
        "NO_UPDATE_NOTIFIER": "1",
        "npm_config_update_notifier": "false",
        "NODE_OPTIONS": (env.get("NODE_OPTIONS", "") + " --max-old-space-size=3072").strip(),
    })
    return env


@contextlib.contextmanager
def _project_lock(project: Path) -> Iterator[None]:
    with open(project / ".build.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def snapshot_serving_file(serving_db: Path, dest: Path) -> Path:
    """Copy the serving file as it is now (one inode: a publish renaming a new file in meanwhile does not mix the
    two), without ever opening it for writing."""
    if not serving_db.exists():
        raise ReportsError(f"no serving file at {serving_db}: publish first (`chartlake run` or `make demo`)")
    with open(serving_db, "rb") as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out, 16 * 1024 * 1024)
    return dest


PREFLIGHT = "scripts/check-offline-parquet.mjs"
PREFLIGHT_TIMEOUT_SECONDS = 60


def check_offline_parquet(project: Path, node: str) -> None:
    """Evidence writes and reads its Parquet with DuckDB-WASM; a DuckDB-WASM without a built-in parquet extension
    fetches it from extensions.duckdb.org, and with no network `evidence sources` then hangs instead of failing.
    Measured here: @duckdb/duckdb-wasm 1.28.0 (DuckDB 0.9) has parquet built in; 1.29.0 to 1.32.0 (what
    @evidence-dev/universal-sql 3.0.1, in Evidence 40.1.8, asks for: ^1.30) do not. Fail in seconds, saying so."""
    try:
        proc = subprocess.run([node, PREFLIGHT], cwd=project, capture_output=True, text=True,
                              timeout=PREFLIGHT_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ReportsError(f"{project / PREFLIGHT} did not finish within {PREFLIGHT_TIMEOUT_SECONDS} s: DuckDB-WASM "
                           "is probably trying to download its parquet extension (no network here)") from None
    if proc.returncode != 0:
        raise ReportsError("Evidence cannot build offline here: " + _tail((proc.stdout + proc.stderr).strip(), 1500)
                           + ". Its DuckDB-WASM needs the parquet extension from extensions.duckdb.org, which this "
                           "machine cannot reach (see README, Dashboards).")


def latest_publish(db: Path) -> tuple[int, dt.datetime]:
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{db}' AS s (READ_ONLY)")
        row = con.execute("select publish_id, published_at from s.analytics.publish_log "
                          "order by publish_id desc limit 1").fetchone()
    finally:
        con.close()
    if row is None:
        raise ReportsError(f"{db}: analytics.publish_log is empty; nothing has been published")
    return int(row[0]), row[1]


def _run(cmd: list[str], project: Path, env: dict[str, str], log) -> str:
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True,
                              timeout=BUILD_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise ReportsError(f"`{' '.join(cmd[-2:])}` did not finish within {BUILD_TIMEOUT_SECONDS} s") from exc
    out = (proc.stdout or "") + (proc.stderr or "")
    log(f"{Path(cmd[0]).name} {' '.join(cmd[1:])}: exit {proc.returncode} in {time.monotonic() - started:.0f} s")
    if proc.returncode != 0:
        raise ReportsError(f"`evidence {' '.join(cmd[1:])}` failed (exit {proc.returncode}) in {project}:\n"
                           f"{_tail(out)}")
    return out


def _tail(text: str, chars: int = 4000) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return text[-chars:]


def built_pages(site: Path) -> list[str]:
    """Routes of the pages in a finished build (one ``index.html`` per route), "/" first."""
    routes = []
    for index in site.rglob("index.html"):
        rel = index.parent.relative_to(site)
        if rel.parts and rel.parts[0] in ("_app", "api", "settings", "explore", "data"):
            continue  # Evidence's own routes and assets, not pages of this project
        routes.append("/" + "/".join(rel.parts) if rel.parts else "/")
    return sorted(routes, key=lambda r: (r != "/", r))


def _switch_link(link: Path, target: Path) -> None:
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _prune(builds: Path, keep: set[Path]) -> None:
    done = sorted((p for p in builds.iterdir() if p.is_dir() and p.name.startswith("site-")),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    for old in done[KEEP_BUILDS + 1:]:
        if old.resolve() not in keep:
            shutil.rmtree(old, ignore_errors=True)


def build_site(home: Home, project: Path | None = None, log=lambda s: None) -> BuildResult:
    """Build the dashboards from the home's current serving file; returns where the site is and what it shows."""
    project = project or REPORTS_DIR
    exe = evidence_cli(project)
    node = shutil.which("node")
    if node is None:
        raise ReportsError(f"`node` is not on PATH: Evidence needs Node.js >= 18 ({INSTALL_HINT})")
    check_offline_parquet(project, node)
    started = time.monotonic()
    reports_home = home.root / "reports"
    builds = reports_home / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="snapshot-", dir=reports_home) as tmp:
        snapshot = snapshot_serving_file(home.serving_db, Path(tmp) / "chartlake.duckdb")
        publish_id, published_at = latest_publish(snapshot)
        site = builds / f"site-{publish_id}-{stamp:%Y%m%dT%H%M%S%f}"
        env = evidence_env(project, snapshot, site)
        with _project_lock(project):
            try:
                _run([node, str(exe), "sources"], project, env, log)
                out = _run([node, str(exe), "build"], project, env, log)
            except ReportsError:
                shutil.rmtree(site, ignore_errors=True)
                raise
    if not (site / "index.html").exists():
        raise ReportsError(f"`evidence build` exited 0 but wrote no {site / 'index.html'}:\n{_tail(out)}")
    link = site_link(home)
    _switch_link(link, site)
    _prune(builds, keep={site.resolve()})
    return BuildResult(site=site, link=link, pages=built_pages(site), publish_id=publish_id,
                       published_at=published_at, seconds=round(time.monotonic() - started, 1), built_at=stamp)


def dev_server(home: Home, project: Path | None = None, port: int = 3001) -> int:
    """Serve the dashboards live on 127.0.0.1 (``evidence dev``) over a snapshot of the serving file, refreshed
    each time this starts (Evidence's dev server reloads pages, not sources)."""
    project = project or REPORTS_DIR
    exe = evidence_cli(project)
    reports_home = home.root / "reports"
    reports_home.mkdir(parents=True, exist_ok=True)
    snapshot = snapshot_serving_file(home.serving_db, reports_home / "dev-snapshot.duckdb")
    env = evidence_env(project, snapshot, reports_home / "dev-build")
    node = shutil.which("node") or "node"
    check_offline_parquet(project, node)
    subprocess.run([node, str(exe), "sources"], cwd=project, env=env, check=True)
    return subprocess.call([node, str(exe), "dev", "--host", "127.0.0.1", "--port", str(port)], cwd=project, env=env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.lib.reports",
                                     description="Build (or serve live) the Evidence dashboards of a chartlake home.")
    parser.add_argument("command", choices=["build", "dev"])
    parser.add_argument("--home", help="chartlake home (default: CHARTLAKE_HOME or data/)")
    parser.add_argument("--port", type=int, default=3001)
    args = parser.parse_args(argv)
    home = Home.resolve(args.home)
    try:
        if args.command == "dev":
            return dev_server(home, port=args.port)
        result = build_site(home, log=lambda s: print(s, flush=True))
    except ReportsError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 1
    print(f"built {len(result.pages)} pages of publish {result.publish_id} ({result.published_at:%Y-%m-%d %H:%M} "
          f"UTC) in {result.seconds:.0f} s: {result.link} -> {result.site}")
    print(f"serve it with: python3 -m http.server -b 127.0.0.1 -d {result.link} 8000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
