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
import tempfile
import time
import uuid
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Recorded:
    """What the publish that swapped a file in recorded about it (``.chartlake.duckdb.sha256``)."""

    digest: str
    size: int
    mtime_ns: int
    inode: int


def attach_read_only(con: duckdb.DuckDBPyConnection, path: str | os.PathLike, alias: str) -> None:
    """ATTACH the serving file read-only as ``alias``, exactly as its publish wrote it; ServingFileError if it cannot.

    Any WAL beside it is ignored (opened through a private hard link). A file whose size or mtime is not what its
    publish recorded is hashed, and refused if a client wrote into it. While a client holds it read-write (its lock
    forbids a read-only open), a private byte copy is read instead, if its digest is the recorded one. Every
    ATTACH path is escaped (a home whose path holds an apostrophe works).
    """
    path = Path(path)
    for attempt in range(_RETRIES):
        swapped = _attach_once(con, path, alias)
        if not swapped:
            return
        time.sleep(0.05 * (attempt + 1))  # a publish is renaming a new file in: read that one
    _attach_once(con, path, alias, last=True)


# A reader that caught a publish between its rename and its digest record retries this often.
_RETRIES = 5


def _attach_once(con, path: Path, alias: str, last: bool = False) -> bool:
    """Attach ``path``; True when a swap got in the way (nothing attached, try again)."""
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
    opened = link or path
    try:
        st = os.stat(opened)
        try:
            con.execute(f"ATTACH '{_q(opened)}' AS {alias} (READ_ONLY)")
        except duckdb.Error as exc:
            held = _HOLDER.search(str(exc))
            if not held:
                raise ServingFileError(f"cannot open {path} read-only: {_one_line(exc)}") from None
            return _attach_copy(con, path, alias, f"{held.group(1)}, PID {held.group(2)}", last)
        verdict = _check(opened, st, _recorded(path))
        if verdict is True or verdict is None:
            return False
        if verdict == "other":
            if last:
                # The record never caught up with this file (a publish died between its rename and its record):
                # nothing says it was changed, so it is read as it is.
                return False
            con.execute(f"DETACH {alias}")
            return True
        con.execute(f"DETACH {alias}")
        raise ServingFileError(
            f"{path} was changed by another client since its publish (its bytes are not those recorded in "
            f"{digest_path(path).name}): not read; the next publish rebuilds it from the lake, and --as-of reads "
            "past publishes from the lake meanwhile")
    finally:
        if link is not None:
            with contextlib.suppress(FileNotFoundError):
                link.unlink()


def _attach_copy(con, path: Path, alias: str, holder: str, last: bool) -> bool:
    held = ServingFileError(
        f"{path} is held read-write by another process ({holder}) and no verified copy of it could be read: BI "
        "tools must open it read-only; close that client (the next publish swaps in a file it does not hold)")
    rec = _recorded(path)
    fd, name = tempfile.mkstemp(prefix="chartlake-serving-", suffix=".duckdb")
    copy = Path(name)
    try:
        with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
            st = os.fstat(src.fileno())
            h = hashlib.sha256()
            for block in iter(lambda: src.read(1 << 20), b""):
                h.update(block)
                dst.write(block)
        if rec is None or rec.inode != st.st_ino:
            if rec is not None and not last:
                return True  # the record is about another file: a swap is under way
            raise held
        if h.hexdigest() != rec.digest:
            raise held
        con.execute(f"ATTACH '{_q(copy)}' AS {alias} (READ_ONLY)")
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            copy.unlink()


def _recorded(path: Path) -> _Recorded | None:
    try:
        digest, size, mtime_ns, inode = digest_path(path).read_text().split()[:4]
        return _Recorded(digest, int(size), int(mtime_ns), int(inode))
    except (FileNotFoundError, ValueError):
        return None


def _check(opened: Path, st: os.stat_result, rec: _Recorded | None) -> bool | str | None:
    """True: the bytes its publish wrote; None: nothing recorded; "other": the record is about another file;
    False: a client changed it."""
    if rec is None:
        return None
    if rec.inode != st.st_ino:
        return "other"
    if (st.st_size, st.st_mtime_ns) == (rec.size, rec.mtime_ns):
        return True
    return file_digest(opened) == rec.digest


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def private_copy(path: Path, dest: Path) -> bool | None:
    """Copy the bytes of ``path`` (never its WAL) to ``dest``; whether they are the bytes its publish wrote.

    True: the digest recorded at its swap matches; False: it does not (a client wrote into the file, or the copy
    caught it mid-write); None: nothing recorded about this file (from before digests were kept, or a publish died
    between its rename and its record).
    """
    with open(path, "rb") as src:
        ino = os.fstat(src.fileno()).st_ino
        with open(dest, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    rec = _recorded(path)
    if rec is None or rec.inode != ino:
        return None
    return file_digest(dest) == rec.digest


def swap(tmp: Path, target: Path) -> None:
    """Rename the finished ``tmp`` over ``target`` and record its digest; a foreign WAL beside it is moved aside
    first, and again after (a client still holding the old file may write one in between), so no reader replays it
    onto the new file."""
    digest = file_digest(tmp)
    _move_wal_aside(target)
    os.replace(tmp, target)
    _move_wal_aside(target)
    st = os.stat(target)
    side = digest_path(target)
    side_tmp = side.with_name(f"{side.name}.{uuid.uuid4().hex[:12]}.tmp")
    side_tmp.write_text(f"{digest} {st.st_size} {st.st_mtime_ns} {st.st_ino} {target.name}\n")
    os.replace(side_tmp, side)
    fsync_path(target.parent)


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


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (a rename is durable once its folder is synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _one_line(exc: BaseException) -> str:
    return " ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip())


def _q(value: object) -> str:
    return str(value).replace("'", "''")
