"""One writer per home: an OS file lock (``flock``) on ``<home>/.writer.lock``, held for a whole command or run.

Every process that writes a home takes it: the ``chartlake`` commands that write (``setup``, ``import``, ``run``,
``demo``), the inbox sensor's tick (it stages files) and every Dagster run launched by the daemon or the UI (their
executor takes it in the run worker, for the whole run, so the parallel steps of one run share it). Readers
(``status``, ``query``, ``versions``, BI tools) never take it.

Why a file lock and not Dagster's run queue: the CLI runs its jobs in its own process (``execute_in_process``),
which no run coordinator sees, and it also writes outside any run (staging an import); the kernel releases a
``flock`` when its holder dies, however it dies (``kill -9`` included), so a crashed writer never leaves the home
locked. The lock file also says who holds it (pid, command, since), for the error or wait message of the next
writer. A process can take the lock again while it holds it (``demo`` runs ``import`` then ``run``).

No Dagster imports here: the CLI and the Dagster definitions both use it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

LOCK_NAME = ".writer.lock"
_POLL_SECONDS = 0.2


class HomeBusy(RuntimeError):
    """Another process holds the home's writer lock (and the caller would not, or no longer, wait)."""

    def __init__(self, home_root: Path, holder: "Holder | None", waited: float = 0.0):
        self.home_root = home_root
        self.holder = holder
        self.waited = waited
        who = holder.describe() if holder else "another process (holder not recorded yet)"
        after = f" after waiting {waited:.0f} s" if waited >= 0.5 else ""
        super().__init__(f"home {home_root} is busy{after}: {who} is writing it "
                         f"(one writer per home; wait for it, or retry with --wait)")


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str
    since: str
    host: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} ({self.command}, since {self.since})"


def lock_path(home_root: Path) -> Path:
    return Path(home_root) / LOCK_NAME


def holder(home_root: Path) -> Holder | None:
    """Who holds (or last held) the lock, as its holder wrote it; None if unknown or being rewritten."""
    try:
        doc = json.loads(lock_path(home_root).read_text() or "null")
        return Holder(int(doc["pid"]), str(doc["command"]), str(doc["since"]), str(doc.get("host", "?")))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def describe_holder(home_root: Path) -> str:
    h = holder(home_root)
    return h.describe() if h else "another process"


# Held locks of this process, per home and thread: {(root, thread): [fd, depth]}. flock belongs to the open file,
# so a second open+flock by the same caller would wait for itself; re-entry counts instead. Another thread of the
# process opens the file again and so finds the home busy, as another process would.
_HELD: dict[tuple[Path, int], list[int]] = {}
_HELD_LOCK = threading.Lock()


def is_held_here(home_root: Path) -> bool:
    with _HELD_LOCK:
        return (Path(home_root).resolve(), threading.get_ident()) in _HELD


@contextlib.contextmanager
def writer_lock(home_root: Path, command: str, *, wait: float | None = 0.0,
                on_wait: Callable[[Holder | None], None] | None = None,
                on_still_waiting: Callable[[Holder | None, float], None] | None = None,
                still_waiting_every: float = 60.0) -> Iterator[Holder]:
    """Hold the home's writer lock for the ``with`` block.

    ``wait``: 0 -> raise ``HomeBusy`` at once if another process holds it; N seconds -> wait at most that long;
    None -> wait as long as it takes. ``on_wait`` is called once when waiting starts (with the holder), and
    ``on_still_waiting`` every ``still_waiting_every`` seconds after that.
    """
    root = Path(home_root).resolve()
    key = (root, threading.get_ident())
    with _HELD_LOCK:
        if key in _HELD:
            _HELD[key][1] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield holder(root) or Holder(os.getpid(), command, "", socket.gethostname())
        finally:
            with _HELD_LOCK:
                _HELD[key][1] -= 1
        return

    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(root), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, root, wait, on_wait, on_still_waiting, still_waiting_every)
        me = Holder(os.getpid(), command, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    socket.gethostname())
        doc = (json.dumps(me.__dict__) + "\n").encode()
        os.pwrite(fd, doc, 0)
        os.ftruncate(fd, len(doc))
        with _HELD_LOCK:
            _HELD[key] = [fd, 1]
        try:
            yield me
        finally:
            with _HELD_LOCK:
                del _HELD[key]
            # Cleared before the lock is let go, so a waiter never names a writer that has finished.
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, root: Path, wait: float | None, on_wait, on_still_waiting, every: float) -> None:
    start = time.monotonic()
    announced = False
    next_note = start + every
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        now = time.monotonic()
        waited = now - start
        if wait is not None and waited >= wait:
            raise HomeBusy(root, _recorded_holder(root), waited)
        if not announced:
            announced = True
            if on_wait:
                on_wait(_recorded_holder(root))
        elif on_still_waiting and now >= next_note:
            next_note = now + every
            on_still_waiting(holder(root), waited)
        # Polling, not a blocking flock: a signal (Ctrl-C, a run's termination) is handled at once, and the
        # bound is exact.
        time.sleep(_POLL_SECONDS if wait is None else max(0.01, min(_POLL_SECONDS, wait - waited)))


def _recorded_holder(root: Path, patience: float = 2.0) -> Holder | None:
    # A holder that has just taken the lock writes its name a moment later: give it that moment. Until then the
    # file is empty, or still names a holder killed before it could clear it (a dead pid on this host).
    deadline = time.monotonic() + patience
    while True:
        found = holder(root)
        current = found is not None and (found.host != socket.gethostname() or pid_alive(found.pid))
        if current or time.monotonic() >= deadline:
            return found if current else None
        time.sleep(0.02)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """A short blocking lock on ``path`` (created if missing), for a step that two processes must not interleave
    (creating the home's Dagster instance), whoever holds the writer lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
