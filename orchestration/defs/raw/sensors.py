"""The inbox: drop a saved chart payload into ``<CHARTLAKE_HOME>/inbox/`` and it lands without a command.

Each tick, every settled file at the top of the inbox is staged once (raw store + ``raw.payloads``, one lake
commit per file) and then moved out of the way, so the inbox only ever shows what has not been handled yet:

- staged (or already known) -> ``inbox/processed/<name>``, and one ``raw_job`` run is requested per chart date
  the file held;
- every payload failed (not JSON, unknown layout, no chart in it) -> ``inbox/rejected/<name>`` with
  ``<name>.reason.txt`` beside it saying why (the error names the file and its payload hash).

Nothing is deleted or overwritten: the payload itself is also kept in the raw store either way, and a name that
already exists in ``processed/`` or ``rejected/`` gets a numbered suffix. A file the staging code crashes on (a
bug, or the lake being unavailable) is left in the inbox and retried; after ``MAX_ATTEMPTS`` ticks it is
rejected with the error, so one poisoned file cannot be retried for ever.

Files are picked up only once they have not been modified for ``settle_seconds``, and names starting with ``.``
or ending in ``.tmp``/``.part`` are ignored, so a file still being copied in is not read half-written (writers
that can should copy to a dot-name and rename).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import time
from pathlib import Path

import dagster as dg

from orchestration.defs.jobs import raw_job
from orchestration.defs.raw.partitions import daily_partitions
from orchestration.defs.resources import ChartlakeHome
from orchestration.lib import home_lock, ingest, lake

PROCESSED = "processed"
REJECTED = "rejected"
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")
# Cursor: content hashes already handled (-> outcome), newest last. Bounded: a handled file has left the inbox,
# so the cursor only has to outlive a failed move or the same content dropped again soon after.
CURSOR_LIMIT = 2000
MAX_ATTEMPTS = 3


def build_inbox_sensor(
    name: str = "inbox_sensor",
    *,
    minimum_interval_seconds: int = 30,
    settle_seconds: float = 10.0,
    max_files_per_tick: int = 50,
) -> dg.SensorDefinition:
    """The inbox sensor. ``settle_seconds``: how long a file must be unmodified before it is read."""

    @dg.sensor(
        name=name,
        job=raw_job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,  # a local folder that exists to be watched
        description="Stage chart payload files dropped into CHARTLAKE_HOME/inbox/ and land their chart dates "
        "(raw_job). Good files move to inbox/processed/, bad ones to inbox/rejected/ with a .reason.txt.",
    )
    def _inbox(context: dg.SensorEvaluationContext, chartlake: ChartlakeHome):
        home = chartlake.home()
        state = _Cursor.load(context.cursor)
        files = _ready_files(home.inbox, settle_seconds)[:max_files_per_tick]
        if not files:
            return dg.SkipReason(f"no settled files in {home.inbox}")

        dates: dict[dt.date, set[str]] = {}
        handled: list[str] = []
        run_id = f"sensor:{name}:{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%S.%fZ')}"
        # Staging writes the home: only while no other writer (a `chartlake` command, a run) does. A busy home is
        # a skipped tick: the files stay in the inbox and the next tick tries again.
        locked = contextlib.ExitStack()
        try:
            locked.enter_context(home_lock.writer_lock(home.root, f"dagster sensor {name}", wait=0))
        except home_lock.HomeBusy as busy:
            return dg.SkipReason(f"{len(files)} settled file(s) wait in {home.inbox}: {busy}")
        with locked, lake.session(home) as con:
            store = chartlake.store()
            for path in files:
                try:
                    content_sha = hashlib.sha256(path.read_bytes()).hexdigest()
                except OSError as exc:  # vanished or unreadable: nothing to move; try again next tick
                    context.log.warning(f"inbox: cannot read {path}: {exc}")
                    continue
                known = state.done.get(content_sha)
                if known:
                    # Same content handled before (dropped again, or last tick's move failed): staging it again
                    # would change nothing, and its dates were already requested.
                    target = _move_unique(path, home.inbox / known)
                    if known == REJECTED:
                        _write_reason(target, path.name, content_sha,
                                      "same content as a file rejected earlier (see its .reason.txt)")
                    handled.append(f"{path.name}: duplicate -> {known}/{target.name}")
                    continue
                try:
                    (result,) = ingest.stage_files(con, store, [path], run_id=run_id)
                except Exception as exc:  # noqa: BLE001 - decided per file below, never lost
                    attempts = state.attempt(content_sha)
                    context.log.error(
                        f"inbox: staging {path} (payload_sha256={content_sha}) raised {type(exc).__name__}: {exc} "
                        f"(attempt {attempts} of {MAX_ATTEMPTS})")
                    if attempts >= MAX_ATTEMPTS:
                        target = _move_unique(path, home.inbox / REJECTED)
                        _write_reason(target, path.name, content_sha,
                                      f"staging raised {type(exc).__name__} {MAX_ATTEMPTS} times: {exc}")
                        state.finish(content_sha, REJECTED)
                        handled.append(f"{path.name}: rejected after {attempts} attempts")
                    continue
                if result.status == "failed":
                    target = _move_unique(path, home.inbox / REJECTED)
                    _write_reason(target, path.name, result.sha256 or content_sha, result.error or "unknown error")
                    state.finish(content_sha, REJECTED)
                    context.log.warning(f"inbox: rejected {path.name} -> {target}: {result.error}")
                    handled.append(f"{path.name}: rejected")
                    continue
                target = _move_unique(path, home.inbox / PROCESSED)
                state.finish(content_sha, PROCESSED)
                file_dates = sorted({k.chart_date for k in result.charts})
                for d in file_dates:
                    dates.setdefault(d, set()).add(result.sha256)
                handled.append(f"{path.name}: {result.status}, {len(result.charts)} charts, "
                               f"dates {', '.join(d.isoformat() for d in file_dates)}")
                context.log.info(f"inbox: {result.status} {path.name} ({result.sha256}) -> {target}")

        run_requests = []
        for day, shas in sorted(dates.items()):
            key = day.isoformat()
            if not _has_partition(key):
                context.log.warning(
                    f"inbox: chart date {key} is outside the daily partitions (from "
                    f"{daily_partitions.start.date().isoformat()}); staged, but no run requested")
                continue
            # One run per date per tick (several files of a day land in one commit); the key names the payloads,
            # so a retried tick never requests the same file+date twice.
            digest = hashlib.sha256("\n".join(sorted(shas)).encode()).hexdigest()[:16]
            run_requests.append(dg.RunRequest(
                run_key=f"inbox:{key}:{digest}",
                partition_key=key,
                tags={"chartlake/trigger": name, "chartlake/payloads": str(len(shas))},
            ))
        context.log.info("inbox: " + "; ".join(handled) if handled else "inbox: nothing handled")
        return dg.SensorResult(run_requests=run_requests, cursor=state.dump())

    return _inbox


inbox_sensor = build_inbox_sensor()


class _Cursor:
    """``{"done": {sha: "processed"|"rejected"}, "attempts": {sha: n}}``, insertion ordered, newest last."""

    def __init__(self, done: dict[str, str], attempts: dict[str, int]):
        self.done = done
        self.attempts = attempts

    @classmethod
    def load(cls, raw: str | None) -> "_Cursor":
        data = json.loads(raw) if raw else {}
        return cls(dict(data.get("done", {})), dict(data.get("attempts", {})))

    def attempt(self, sha: str) -> int:
        self.attempts[sha] = self.attempts.get(sha, 0) + 1
        return self.attempts[sha]

    def finish(self, sha: str, outcome: str) -> None:
        self.attempts.pop(sha, None)
        self.done.pop(sha, None)
        self.done[sha] = outcome

    def dump(self) -> str:
        done = dict(list(self.done.items())[-CURSOR_LIMIT:])
        return json.dumps({"done": done, "attempts": self.attempts}, sort_keys=False)


def _ready_files(inbox: Path, settle_seconds: float) -> list[Path]:
    """Top-level regular files of the inbox that have settled, oldest first."""
    if not inbox.is_dir():
        return []
    cutoff = time.time() - settle_seconds
    found = []
    for p in inbox.iterdir():
        if p.name.startswith(".") or p.name.lower().endswith(IGNORED_SUFFIXES) or not p.is_file():
            continue
        mtime = p.stat().st_mtime
        if mtime <= cutoff:
            found.append((mtime, p.name, p))
    return [p for _, _, p in sorted(found)]


def _move_unique(src: Path, folder: Path) -> Path:
    """Move ``src`` into ``folder`` under its name, or ``<stem>.<n><suffix>`` if that (or its reason file) exists.

    ``os.link`` refuses an existing name, so even a concurrent mover cannot make this overwrite a file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    stem, suffix = _split_name(src.name)
    n = 0
    while True:
        name = src.name if n == 0 else f"{stem}.{n}{suffix}"
        target = folder / name
        if not _reason_path(target).exists():
            try:
                os.link(src, target)
            except FileExistsError:
                n += 1
                continue
            src.unlink()
            return target
        n += 1


def _split_name(name: str) -> tuple[str, str]:
    # Keep the whole extension (".json", ".json.gz") after the number, so the file type still shows.
    stem, dot, rest = name.partition(".")
    return (stem, dot + rest) if stem else (name, "")


def _reason_path(target: Path) -> Path:
    return target.with_name(target.name + ".reason.txt")


def _write_reason(target: Path, original_name: str, sha: str, reason: str) -> Path:
    path = _reason_path(target)
    text = (
        f"file: {original_name}\n"
        f"moved_to: {target}\n"
        f"payload_sha256: {sha}\n"
        f"bytes: {target.stat().st_size}\n"
        f"rejected_at: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}\n"
        f"reason: {reason}\n"
    )
    with open(path, "x", encoding="utf-8") as f:
        f.write(text)
    return path


def _has_partition(key: str) -> bool:
    try:
        return daily_partitions.has_partition_key(key)
    except Exception:  # noqa: BLE001 - a malformed key is simply not a partition
        return False
