"""The raw payload store: every payload ever fetched or imported, byte for byte, named by its SHA-256.

A payload is written once (to a temp file, then linked into place) and never overwritten or deleted by the
pipeline, whether it parsed or not: it is the evidence every published figure traces back to. A sidecar JSON
beside it records where it came from the first time it was seen (source URL or file, HTTP status, ETag,
Last-Modified, fetched-at, run id).

Payloads are stored zstd-compressed as ``<sha256>.payload.zst`` (chart JSON shrinks several times over); the name
stays the SHA-256 of the original bytes and ``get`` returns those bytes. DuckDB detects the compression from the
``.zst`` suffix, so ``read_json('<root>/*/*.payload.zst')`` reads the store directly. Homes written before
compression hold plain ``<sha256>.payload`` files: they are read as they are and never rewritten.

The store also keeps, in memory and per process, what ingest parsed from the payloads it staged last
(``ParsedCache``), so that landing them in the same process does not parse them a second time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Hashable, Sequence

import zstandard


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@dataclass(frozen=True)
class StoredPayload:
    sha256: str
    path: Path
    is_new: bool


class PayloadStoreError(RuntimeError):
    pass


# fsync dominates writing a batch of payloads one after the other (~3 ms each, two per payload); issued from a few
# threads the file system commits them together (600 files: 2.6 s -> 0.2 s measured here).
_WRITE_THREADS = 4
# zstd level 3 (its default): chart JSON compresses several times over at a few hundred MB/s; higher levels cost
# 6x the CPU for 15% smaller (demo payloads: 12.4x at level 3, 14.4x at 9; real archives 5.7x and 6.2x).
_ZSTD_LEVEL = 3
COMPRESSION = "zstd"


class ParsedCache:
    """Parsed payloads kept between staging and landing in one process, keyed by hash and parse context.

    Holds at most ``max_rows`` chart rows; what does not fit is simply parsed again when it lands. Only the last
    staged batch is kept (``ingest.stage`` clears it), so a long-lived process that stages without landing (the
    inbox sensor) holds one batch at most.
    """

    def __init__(self, max_rows: int):
        self.max_rows = max_rows
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()

    def put(self, key: Hashable, value: Any, rows: int) -> bool:
        with self._lock:
            if key in self._items:
                return True
            if self._rows + rows > self.max_rows:
                return False
            self._items[key] = (value, rows)
            self._rows += rows
            return True

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            return item[0] if item is not None else None

    def discard(self, key: Hashable) -> None:
        with self._lock:
            item = self._items.pop(key, None)
            if item is not None:
                self._rows -= item[1]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._rows = 0

    @property
    def rows(self) -> int:
        return self._rows

    def __len__(self) -> int:
        return len(self._items)


def _cache_max_rows() -> int:
    # ~630 B per cached row (measured on demo charts): the default bounds the cache near 250 MB.
    value = os.environ.get("CHARTLAKE_PARSE_CACHE_ROWS", "400000")
    try:
        rows = int(value)
    except ValueError:
        raise PayloadStoreError(f"CHARTLAKE_PARSE_CACHE_ROWS must be a whole number of rows, got {value!r}") from None
    if rows < 0:
        raise PayloadStoreError(f"CHARTLAKE_PARSE_CACHE_ROWS must be 0 (off) or more, got {value!r}")
    return rows


_CACHES: dict[Path, ParsedCache] = {}
_CACHES_LOCK = threading.Lock()


class PayloadStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def parsed(self) -> ParsedCache:
        """The parse cache of this store's root, shared by every ``PayloadStore`` on that root in this process
        (the CLI stages with one instance and Dagster's raw asset lands with another)."""
        root = self.root.resolve()
        with _CACHES_LOCK:
            cache = _CACHES.get(root)
            if cache is None:
                cache = _CACHES[root] = ParsedCache(_cache_max_rows())
            return cache

    def path_for(self, sha256: str) -> Path:
        """Where a payload is stored (compressed). ``stored_path`` also finds one written before compression."""
        return self.root / sha256[:2] / f"{sha256}.payload.zst"

    def legacy_path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.payload"

    def stored_path(self, sha256: str) -> Path | None:
        """The file holding this payload (compressed, or plain from an older home), or None if not stored."""
        for path in (self.path_for(sha256), self.legacy_path_for(sha256)):
            if path.exists():
                return path
        return None

    def meta_path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.meta.json"

    def put(self, content: bytes, meta: dict) -> StoredPayload:
        """Store ``content`` once. A payload already present is left exactly as it is (and so is its sidecar)."""
        return self._put(content, meta, sha256_hex(content))

    def _put(self, content: bytes, meta: dict, sha: str) -> StoredPayload:
        existing = self.stored_path(sha)
        if existing is not None:
            return StoredPayload(sha, existing, is_new=False)
        path = self.path_for(sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        packed = zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(content)  # one context per call: thread-safe
        sidecar = {"payload_sha256": sha, "bytes": len(content), "compression": COMPRESSION,
                   "stored_bytes": len(packed), **meta}
        self._write_once(self.meta_path_for(sha), json.dumps(sidecar, sort_keys=True, default=str, indent=1).encode())
        is_new = self._write_once(path, packed)
        return StoredPayload(sha, path, is_new=is_new)

    def put_many(self, items: Sequence[tuple[bytes, dict]]) -> list[StoredPayload]:
        """``put`` for a batch, in order: the first of several equal payloads in the batch writes it (and its
        sidecar), exactly as one ``put`` after the other would; the writes themselves run concurrently."""
        first: dict[str, int] = {}
        hashes = []
        for i, (content, _meta) in enumerate(items):
            sha = sha256_hex(content)
            hashes.append(sha)
            first.setdefault(sha, i)
        # Repeats within the batch and payloads already stored are left alone, as ``put`` leaves them.
        out = [StoredPayload(sha, self.stored_path(sha) or self.path_for(sha), is_new=False) for sha in hashes]
        todo = [i for i in first.values() if not out[i].path.exists()]
        if len(todo) > 1:
            with ThreadPoolExecutor(min(_WRITE_THREADS, len(todo))) as pool:
                written = list(pool.map(lambda i: self._put(items[i][0], items[i][1], hashes[i]), todo))
        else:
            written = [self._put(items[i][0], items[i][1], hashes[i]) for i in todo]
        for i, stored in zip(todo, written):
            out[i] = stored
        return out

    def get(self, sha256: str) -> bytes:
        path = self.stored_path(sha256)
        if path is None:
            raise PayloadStoreError(f"payload {sha256} is not in the raw store ({self.path_for(sha256)})")
        content = path.read_bytes()
        if path.suffix == ".zst":
            try:
                # decompressobj: also reads a frame that does not record its size (written by another zstd tool).
                content = zstandard.ZstdDecompressor().decompressobj().decompress(content)
            except zstandard.ZstdError as exc:
                raise PayloadStoreError(f"payload file {path} is not valid zstd ({exc}): the raw store is damaged") \
                    from None
        if sha256_hex(content) != sha256:
            raise PayloadStoreError(f"payload file {path} does not match its hash {sha256}: the raw store is damaged")
        return content

    def meta(self, sha256: str) -> dict:
        path = self.meta_path_for(sha256)
        return json.loads(path.read_text()) if path.exists() else {}

    def __contains__(self, sha256: str) -> bool:
        return self.stored_path(sha256) is not None

    @staticmethod
    def _write_once(path: Path, content: bytes) -> bool:
        # Write to a temp file and hard-link it into place: link() fails if the name exists, so a concurrent
        # writer of the same payload can never truncate or replace a stored file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
                return True
            except FileExistsError:
                return False
        finally:
            os.unlink(tmp)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def remove_temp_files(root: Path) -> list[Path]:
    """Remove the temp files (``<xx>/.tmp-*``) a writer killed mid-way left in the store at ``root``.

    Only safe while no other process writes the store: the CLI calls it holding the home's writer lock. A temp
    file is never the stored payload (that is the linked name), so nothing stored is lost.
    """
    removed = []
    for tmp in Path(root).glob("*/.tmp-*"):
        try:
            tmp.unlink()
            removed.append(tmp)
        except FileNotFoundError:
            pass
    return removed
