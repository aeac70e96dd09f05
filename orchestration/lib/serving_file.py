"""The serving file on disk: opening it read-only, copying it, swapping a new one in, whatever lies beside it.

The pipeline never writes ``chartlake.duckdb`` in place (``serving.publish`` builds a new file and renames it over
the old one), so anything else found at that path is somebody else's doing, and must neither reach a reader nor
stop a publish:

- ``chartlake.duckdb.wal``: a client opened the file read-write and wrote to it (then died, or still runs). DuckDB
  replays a WAL it finds beside a file on every open, read-only included, and does not check that the WAL belongs
  to that file (measured with 1.5.5: a stale WAL is replayed onto a file renamed into place after it). Readers here
  open the file through a hard link of their own (``attach_read_only``): same inode, another name, so DuckDB finds
  no WAL and sees exactly the bytes the publish wrote. ``swap`` moves such a WAL aside (``.stale-<time>``, kept,
  never replayed) when it renames a new file in.
- a client holding the file read-write: its lock makes any read-only open fail; readers say so in one line
  (``ServingFileError``). A publish never opens the file through DuckDB: ``private_copy`` copies its bytes (no lock
  needed) and checks them against the digest the publish that wrote them recorded (``.chartlake.duckdb.sha256``),
  so a client that checkpointed its own writes into the file is detected, and the publish builds from the lake.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import shutil
import time
import uuid
from pathlib import Path

import duckdb

_HOLDER = re.compile(r"Conflicting lock is held in (.+?) \(PID (\d+)\)")
# A reader's hard link lives only between its link() and its ATTACH; one older than this was left by a killed reader.
_STALE_LINK_S = 60.0


class ServingFileError(RuntimeError):
    """The serving file cannot be read as published: the message names the file, the cause and what to do."""


def wal_of(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def digest_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.sha256")


def attach_read_only(con: duckdb.DuckDBPyConnection, path: str | os.PathLike, alias: str) -> None:
    """ATTACH the serving file read-only as ``alias``, ignoring any WAL beside it; ServingFileError if it cannot be.

    Every ATTACH path is escaped (a home whose path holds an apostrophe works).
    """
    path = Path(path)
    if not path.exists():
        raise ServingFileError(f"nothing published yet: {path} does not exist")
    link = path.with_name(f".{path.name}.read-{os.getpid()}-{uuid.uuid4().hex[:12]}")
    try:
        os.link(path, link)
    except FileNotFoundError:
        raise ServingFileError(f"nothing published yet: {path} does not exist") from None
    except OSError as exc:
        link = None  # a read-only home, a file system without hard links: open the path itself
        if wal_of(path).exists():
            raise ServingFileError(
                f"{path} has a write-ahead log {wal_of(path).name} beside it (a client opened it read-write and "
                f"wrote to it) and this reader cannot open the file without it ({exc.strerror}); the next publish "
                "moves it aside") from None
    try:
        con.execute(f"ATTACH '{_q(link or path)}' AS {alias} (READ_ONLY)")
    except duckdb.Error as exc:
        held = _HOLDER.search(str(exc))
        if held:
            raise ServingFileError(
                f"{path} is held read-write by another process ({held.group(1)}, PID {held.group(2)}): BI tools must "
                "open it read-only; close that client (the next publish swaps in a file it does not hold)") from None
        raise ServingFileError(f"cannot open {path} read-only: {_one_line(exc)}") from None
    finally:
        if link is not None:
            with contextlib.suppress(FileNotFoundError):
                link.unlink()


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def private_copy(path: Path, dest: Path) -> bool | None:
    """Copy the bytes of ``path`` (never its WAL) to ``dest``; whether they are the bytes its publish wrote.

    True: the digest recorded at its swap matches; False: it does not (a client wrote into the file, or the copy
    caught it mid-write); None: no digest recorded (a file from before digests were kept).
    """
    shutil.copyfile(path, dest)
    try:
        recorded = digest_path(path).read_text().split()[0]
    except (FileNotFoundError, IndexError):
        return None
    return file_digest(dest) == recorded


def swap(tmp: Path, target: Path) -> None:
    """Rename the finished ``tmp`` over ``target``; a foreign WAL beside it is moved aside first, and again after
    (a client still holding the old file may write one in between), so no reader replays it onto the new file."""
    digest = file_digest(tmp)
    _move_wal_aside(target)
    os.replace(tmp, target)
    _move_wal_aside(target)
    side = digest_path(target)
    side_tmp = side.with_name(f"{side.name}.{uuid.uuid4().hex[:12]}.tmp")
    side_tmp.write_text(f"{digest}  {target.name}\n")
    os.replace(side_tmp, side)
    _fsync_dir(target.parent)


def remove_stale_links(target: Path) -> None:
    """Hard links left by readers killed between their link and their ATTACH (they pin old files' space)."""
    now = time.time()
    for link in target.parent.glob(f".{target.name}.read-*"):
        with contextlib.suppress(FileNotFoundError):
            # ctime, not mtime: a link shares the file's mtime, but creating one changes the inode's ctime.
            if now - link.lstat().st_ctime > _STALE_LINK_S:
                link.unlink()


def _move_wal_aside(target: Path) -> None:
    wal = wal_of(target)
    if wal.exists():
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        with contextlib.suppress(FileNotFoundError):
            os.replace(wal, wal.with_name(f"{wal.name}.stale-{stamp}"))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _one_line(exc: BaseException) -> str:
    return " ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip())


def _q(value: object) -> str:
    return str(value).replace("'", "''")
