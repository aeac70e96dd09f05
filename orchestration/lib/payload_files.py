"""Payload files on disk, as `chartlake import` and the inbox sensor meet them: which paths an import reads, and
reading one of them safely. Only regular files are read, bounded by the payload size limit, never through a link;
every refusal is a one-line reason naming the path. No Dagster, no lake: ``ingest.stage_files`` stages what this
reads.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable

from orchestration import config


def read_regular(path: Path, max_bytes: int) -> tuple[bytes | None, str | None]:
    """(content, None), or (None, the reason ``path`` is refused)."""
    try:
        # O_NOFOLLOW: a file swapped for a link after the walk is refused too; fstat then judges what was opened.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        return None, _refusal(path, exc)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None, f"refused {path}: not a regular file; import regular files only"
        if info.st_size > max_bytes:
            return None, too_large(str(path), info.st_size, max_bytes)
        # read(n) allocates n bytes up front: ask for the size fstat gave, and stay bounded if it grew since.
        content = f.read(info.st_size + 1)
        if len(content) > info.st_size:
            content += f.read(max_bytes + 1 - len(content))
        if len(content) > max_bytes:
            return None, too_large(str(path), len(content), max_bytes)
        return content, None


def _refusal(path: Path, exc: OSError) -> str:
    if path.is_symlink():
        return (f"refused {path}: a symbolic link (to {os.readlink(path)!r}), not a regular file; import the file "
                f"itself")
    return f"refused {path}: cannot be read ({exc.strerror or exc})"


def too_large(source: str, size: int, max_bytes: int) -> str:
    return (f"refused {source}: {size:,} bytes, over the payload size limit of {max_bytes:,} "
            f"({config.MAX_PAYLOAD_BYTES_ENV}); not read into the raw store")


def expand(paths: Iterable[Path], walk_named_links: bool = True) -> list[Path]:
    """The files to import, in order. A link met while walking a folder is listed (to be refused by name), never
    followed; a folder named on the command line is walked even if its own name is a link (the user chose it)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir() and (walk_named_links or not p.is_symlink()):
            found = []
            for folder, dirs, names in os.walk(p, followlinks=False):
                base = Path(folder)
                found += [base / d for d in dirs if (base / d).is_symlink() and not d.startswith(".")]
                found += [base / n for n in names if not n.startswith(".")]
            out.extend(sorted(found))
        elif p.exists() or p.is_symlink():
            out.append(p)
        else:
            raise FileNotFoundError(f"no such file or directory: {p}")
    return out
