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

A tick reads a file only to stage it, once, and never follows a link: the inbox is listed with ``lstat`` (name,
size, modification time), so a symbolic link (to ``/etc/passwd``, or to a folder) is refused by name and moved to
``rejected/`` as the link itself, a FIFO or device likewise, and a file over ``CHARTLAKE_MAX_PAYLOAD_BYTES`` is
refused from its size, unread (all by ``ingest.stage_files``). The cursor remembers files by name, size and
modification time (a file left behind by a failed move is filed, not read again) and payloads by the hash staging
computed (the same content dropped again under another name requests no second run).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import stat
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
# Cursor entries kept, newest last. Bounded: a handled file has left the inbox, so an entry only has to outlive a
# failed move or the same content dropped again soon after.
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

        def file_away(path: Path, fid: str, outcome: str, sha: str | None, reason: str | None) -> Path | None:
            state.finish(fid, outcome, sha)
            try:
                target = _move_unique(path, home.inbox / outcome)
                if reason is not None:
                    _write_reason(target, path.name, sha, reason)
            except OSError as exc:  # the cursor knows the file now: the next tick files it without reading it
                context.log.warning(f"inbox: cannot move {path} to {outcome}/: {exc}")
                return None
            return target

        with locked, lake.session(home) as con:
            store = chartlake.store()
            for path, fid in files:
                known = state.files.get(fid)
                if known:
                    # This very file (name, size, mtime) was handled by an earlier tick whose move failed.
                    file_away(path, fid, known, None,
                              "rejected by an earlier tick (see raw.payloads for its error)" if known == REJECTED
                              else None)
                    handled.append(f"{path.name}: handled earlier -> {known}/")
                    continue
                try:
                    (result,) = ingest.stage_files(con, store, [path], run_id=run_id, walk_named_links=False)
                except Exception as exc:  # noqa: BLE001 - decided per file below, never lost
                    attempts = state.attempt(fid)
                    context.log.error(
                        f"inbox: staging {path} raised {type(exc).__name__}: {exc} "
                        f"(attempt {attempts} of {MAX_ATTEMPTS})")
                    if attempts >= MAX_ATTEMPTS:
                        file_away(path, fid, REJECTED, None,
                                  f"staging raised {type(exc).__name__} {MAX_ATTEMPTS} times: {exc}")
                        handled.append(f"{path.name}: rejected after {attempts} attempts")
                    continue
                sha = result.sha256 or None
                if result.status == "failed":
                    target = file_away(path, fid, REJECTED, sha, result.error or "unknown error")
                    context.log.warning(f"inbox: rejected {path.name} -> {target}: {result.error}")
                    handled.append(f"{path.name}: rejected")
                    continue
                # The same content filed as processed by an earlier tick: its dates were requested then.
                duplicate = state.payloads.get(sha) == PROCESSED
                target = file_away(path, fid, PROCESSED, sha, None)
                if duplicate:
                    handled.append(f"{path.name}: same content as a file processed earlier -> {PROCESSED}/")
                    continue
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
    """``{"files": {file id: outcome}, "done": {payload sha: outcome}, "attempts": {file id: n}}``, newest last.

    A file id is its name, size and modification time (``_file_id``): what ``lstat`` tells without reading it.
    """

    def __init__(self, files: dict[str, str], payloads: dict[str, str], attempts: dict[str, int]):
        self.files = files
        self.payloads = payloads
        self.attempts = attempts

    @classmethod
    def load(cls, raw: str | None) -> "_Cursor":
        data = json.loads(raw) if raw else {}
        # Cursors written before files were told apart by lstat held only "done" (and attempts by content hash,
        # which no longer match anything: those files are simply tried again).
        return cls(dict(data.get("files", {})), dict(data.get("done", {})),
                   {k: v for k, v in data.get("attempts", {}).items() if "/" in k})

    def attempt(self, fid: str) -> int:
        self.attempts[fid] = self.attempts.get(fid, 0) + 1
        return self.attempts[fid]

    def finish(self, fid: str, outcome: str, sha: str | None) -> None:
        self.attempts.pop(fid, None)
        self.files.pop(fid, None)
        self.files[fid] = outcome
        if sha:
            self.payloads.pop(sha, None)
            self.payloads[sha] = outcome

    def dump(self) -> str:
        return json.dumps({"files": dict(list(self.files.items())[-CURSOR_LIMIT:]),
                           "done": dict(list(self.payloads.items())[-CURSOR_LIMIT:]),
                           "attempts": self.attempts})


def _file_id(name: str, info: os.stat_result) -> str:
    return f"{name}/{info.st_size}/{info.st_mtime_ns}"  # no file name holds a "/"


def _ready_files(inbox: Path, settle_seconds: float) -> list[tuple[Path, str]]:
    """(path, file id) of the top-level entries of the inbox that have settled, oldest first, from ``lstat``.

    Links and other non-regular files are listed too (staging refuses them by name); folders are not (the inbox's
    own ``processed/`` and ``rejected/``, or a folder someone dropped: only files are picked up).
    """
    if not inbox.is_dir():
        return []
    cutoff = time.time() - settle_seconds
    found = []
    with os.scandir(inbox) as entries:
        for entry in entries:
            if entry.name.startswith(".") or entry.name.lower().endswith(IGNORED_SUFFIXES):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:  # vanished since the listing
                continue
            if stat.S_ISDIR(info.st_mode) or info.st_mtime > cutoff:
                continue
            found.append((info.st_mtime, entry.name, (Path(entry.path), _file_id(entry.name, info))))
    return [item for _, _, item in sorted(found)]


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
                os.link(src, target, follow_symlinks=False)  # a link is filed as the link
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


def _write_reason(target: Path, original_name: str, sha: str | None, reason: str) -> Path:
    path = _reason_path(target)
    text = (
        f"file: {original_name}\n"
        f"moved_to: {target}\n"
        f"payload_sha256: {sha or '-'}\n"
        f"bytes: {target.lstat().st_size}\n"
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
