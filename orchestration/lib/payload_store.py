"""The raw payload store: every payload ever fetched or imported, byte for byte, named by its SHA-256.

A payload is written once and never overwritten or deleted by the pipeline, whether it parsed or not: it is the
evidence every published figure traces back to. A sidecar JSON beside it records where it came from the first time
it was seen (source URL or file, HTTP status, ETag, Last-Modified, fetched-at, run id).

Where it lives is configuration, read when a store is opened (``store_for``): ``CHARTLAKE_RAW_STORE_URL`` unset,
``<home>/raw`` (``make demo`` needs nothing but the home); a directory (or ``file://`` URL); or
``s3://bucket/prefix`` on the object store the lake's files may share, reached with boto3 and the same
``CHARTLAKE_S3_*`` settings as the lake (``lake.S3Settings``). Both keep the same guarantees:

- the name is the SHA-256 of the original bytes, and ``get`` checks the bytes it returns against it;
- write-once: a local file is written to a temp file, fsynced and hard-linked into place (``link`` fails if the
  name exists); an S3 object is one PUT (atomic: readers see all of it or nothing) with ``If-None-Match: *``, which
  the store refuses when the key exists, so a concurrent writer of the same payload never replaces it;
- no payload over ``CHARTLAKE_MAX_PAYLOAD_BYTES`` is stored or read back, and every error names the payload.

Payloads are stored zstd-compressed as ``<xx>/<sha256>.payload.zst`` (chart JSON shrinks several times over).
DuckDB detects the compression from the ``.zst`` suffix, so ``read_json('<root>/*/*.payload.zst')`` reads the store
directly. Homes written before compression hold plain ``<sha256>.payload`` files: they are read as they are and
never rewritten.

The store also keeps, in memory and per process, what ingest parsed from the payloads it staged last
(``ParsedCache``), so that landing them in the same process does not parse them a second time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Hashable, Mapping, Sequence
from urllib.parse import unquote, urlparse

import zstandard

from orchestration import config
from orchestration.config import Home
from orchestration.lib.lake import S3Settings

RAW_STORE_ENV = "CHARTLAKE_RAW_STORE_URL"


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@dataclass(frozen=True)
class StoredPayload:
    sha256: str
    location: str  # the file's path, or the object's s3:// URL
    is_new: bool

    @property
    def path(self) -> Path:
        """The stored file, for a store on local files."""
        if "://" in self.location:
            raise PayloadStoreError(f"payload {self.sha256} is an object ({self.location}), not a local file")
        return Path(self.location)


class PayloadStoreError(RuntimeError):
    pass


# fsync dominates writing a batch of payloads one after the other (~3 ms each, two per payload); issued from a few
# threads the file system commits them together (600 files: 2.6 s -> 0.2 s measured here).
_WRITE_THREADS = 4
# On S3 each request is a round trip that costs no CPU here: more in flight at once.
_S3_THREADS = 16
# zstd level 3 (its default): chart JSON compresses several times over at a few hundred MB/s; higher levels cost
# 6x the CPU for 15% smaller (demo payloads: 12.4x at level 3, 14.4x at 9; real archives 5.7x and 6.2x).
_ZSTD_LEVEL = 3
COMPRESSION = "zstd"


class _TooLarge(Exception):
    def __init__(self, size: int):
        self.size = size


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


_CACHES: dict[str, ParsedCache] = {}
_CACHES_LOCK = threading.Lock()


class _LocalObjects:
    """Objects as files under a directory."""

    threads = _WRITE_THREADS

    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def identity(self) -> str:
        return str(self.root.resolve())

    def location(self, key: str) -> str:
        return str(self.root / key)

    def exists(self, key: str) -> bool:
        return (self.root / key).exists()

    def read(self, key: str, limit: int) -> bytes | None:
        try:
            f = open(self.root / key, "rb")
        except FileNotFoundError:
            return None
        with f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise _TooLarge(size)
            return f.read(limit + 1)

    def write_once(self, key: str, content: bytes) -> bool:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
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
            except FileExistsError:
                return False
        finally:
            os.unlink(tmp)
        # The new name survives a power loss only once its directory is on disk too.
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return True


class _S3Objects:
    """Objects in an S3 bucket under a prefix, through boto3 (imported only when a store is on S3)."""

    threads = _S3_THREADS

    def __init__(self, url: str, s3: S3Settings):
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise PayloadStoreError(f"{RAW_STORE_ENV}={url!r}: expected s3://bucket/prefix")
        self.bucket = parsed.netloc
        prefix = parsed.path.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.s3 = s3
        self._client = None
        self._lock = threading.Lock()

    @property
    def identity(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def client(self):
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                s3 = self.s3
                # The lake's settings are DuckDB's (host:port, USE_SSL, URL_STYLE): the same meaning for boto3.
                endpoint = None if s3.endpoint == S3Settings.endpoint else \
                    f"{'https' if s3.use_ssl else 'http'}://{s3.endpoint}"
                self._client = boto3.client(
                    "s3", endpoint_url=endpoint, region_name=s3.region or None,
                    aws_access_key_id=s3.key_id or None, aws_secret_access_key=s3.secret or None,
                    config=Config(s3={"addressing_style": "path" if s3.url_style == "path" else "virtual"},
                                  retries={"mode": "standard", "max_attempts": 5},
                                  max_pool_connections=_S3_THREADS))
            return self._client

    @staticmethod
    def _code(exc) -> str:
        return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client().head_object(Bucket=self.bucket, Key=self.prefix + key)
            return True
        except ClientError as exc:
            if self._code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def read(self, key: str, limit: int) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            obj = self.client().get_object(Bucket=self.bucket, Key=self.prefix + key)
        except ClientError as exc:
            if self._code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        body = obj["Body"]
        try:
            if obj.get("ContentLength", 0) > limit:
                raise _TooLarge(obj["ContentLength"])
            return body.read(limit + 1)
        finally:
            body.close()

    def write_once(self, key: str, content: bytes) -> bool:
        from botocore.exceptions import ClientError

        for _ in range(5):
            try:
                # One PUT is atomic; If-None-Match: * makes it write-once (S3 refuses it with 412 when the key
                # exists). boto3 sends a CRC checksum of the body, which the server verifies.
                self.client().put_object(Bucket=self.bucket, Key=self.prefix + key, Body=content, IfNoneMatch="*")
                return True
            except ClientError as exc:
                code = self._code(exc)
                if code in ("PreconditionFailed", "412"):
                    return False
                # 409: another conditional write of this key is in flight; its outcome decides.
                if code not in ("ConditionalRequestConflict", "409"):
                    raise
            if self.exists(key):
                return False
        raise PayloadStoreError(f"{self.location(key)}: concurrent writes kept conflicting; try again")


def store_for(home: Home, env: Mapping[str, str] | None = None) -> "PayloadStore":
    """The raw store of ``home``, where ``CHARTLAKE_RAW_STORE_URL`` puts it (default: ``<home>/raw``)."""
    env = os.environ if env is None else env
    url = (env.get(RAW_STORE_ENV) or "").strip()
    if not url:
        return PayloadStore(home.raw)
    if url.startswith("s3://"):
        return PayloadStore(url, s3=S3Settings.from_env(env))
    if url.startswith("file://"):
        return PayloadStore(Path(unquote(urlparse(url).path)))
    if "://" in url:
        raise PayloadStoreError(f"{RAW_STORE_ENV}={url!r}: expected a directory, a file:// URL or s3://bucket/prefix")
    return PayloadStore(Path(url).expanduser().resolve())


class PayloadStore:
    """Content-addressed payloads on local files (``root``: a directory) or S3 (``root``: ``s3://bucket/prefix``,
    with ``s3`` settings; ``store_for`` builds both from the environment)."""

    def __init__(self, root: Path | str, s3: S3Settings | None = None):
        if str(root).startswith("s3://"):
            self._objects: _LocalObjects | _S3Objects = _S3Objects(str(root), s3 or S3Settings())
        else:
            self._objects = _LocalObjects(Path(root))

    @property
    def url(self) -> str:
        """Where the store is: its directory, or its ``s3://bucket/prefix/``."""
        return self._objects.identity

    @property
    def root(self) -> Path:
        """The store's directory (a store on local files only)."""
        if not isinstance(self._objects, _LocalObjects):
            raise PayloadStoreError(f"the raw store is on {self.url}, not in a local directory")
        return self._objects.root

    @property
    def parsed(self) -> ParsedCache:
        """The parse cache of this store's location, shared by every ``PayloadStore`` on it in this process
        (the CLI stages with one instance and Dagster's raw asset lands with another)."""
        key = self._objects.identity
        with _CACHES_LOCK:
            cache = _CACHES.get(key)
            if cache is None:
                cache = _CACHES[key] = ParsedCache(_cache_max_rows())
            return cache

    @staticmethod
    def key_for(sha256: str) -> str:
        return f"{sha256[:2]}/{sha256}.payload.zst"

    @staticmethod
    def legacy_key_for(sha256: str) -> str:
        return f"{sha256[:2]}/{sha256}.payload"

    @staticmethod
    def meta_key_for(sha256: str) -> str:
        return f"{sha256[:2]}/{sha256}.meta.json"

    def path_for(self, sha256: str) -> Path:
        """Where a payload is stored (compressed), in a store on local files."""
        return self.root / self.key_for(sha256)

    def legacy_path_for(self, sha256: str) -> Path:
        return self.root / self.legacy_key_for(sha256)

    def meta_path_for(self, sha256: str) -> Path:
        return self.root / self.meta_key_for(sha256)

    def location_for(self, sha256: str) -> str:
        """Where a payload is or would be stored (compressed): a path or an s3:// URL, for messages."""
        return self._objects.location(self.key_for(sha256))

    def _stored_key(self, sha256: str) -> str | None:
        try:
            for key in (self.key_for(sha256), self.legacy_key_for(sha256)):
                if self._objects.exists(key):
                    return key
        except Exception as exc:
            raise self._error(sha256, "cannot be looked up", exc) from exc
        return None

    def stored_location(self, sha256: str) -> str | None:
        """The object holding this payload (compressed, or plain from an older home), or None if not stored."""
        key = self._stored_key(sha256)
        return self._objects.location(key) if key else None

    def stored_path(self, sha256: str) -> Path | None:
        location = self.stored_location(sha256)
        return Path(location) if location and isinstance(self._objects, _LocalObjects) else None

    def put(self, content: bytes, meta: dict) -> StoredPayload:
        """Store ``content`` once. A payload already present is left exactly as it is (and so is its sidecar)."""
        sha = sha256_hex(content)
        return self._put(content, meta, sha, self._stored_key(sha))

    def _put(self, content: bytes, meta: dict, sha: str, existing: str | None) -> StoredPayload:
        if existing is not None:
            return StoredPayload(sha, self._objects.location(existing), is_new=False)
        limit = config.max_payload_bytes()
        if len(content) > limit:
            raise PayloadStoreError(f"payload {sha}: {len(content):,} bytes, over the payload size limit of "
                                    f"{limit:,} ({config.MAX_PAYLOAD_BYTES_ENV}); not stored")
        key = self.key_for(sha)
        packed = zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(content)  # one context per call: thread-safe
        sidecar = {"payload_sha256": sha, "bytes": len(content), "compression": COMPRESSION,
                   "stored_bytes": len(packed), **meta}
        try:
            # The sidecar first: a stored payload always has its first sighting recorded beside it.
            self._objects.write_once(self.meta_key_for(sha),
                                     json.dumps(sidecar, sort_keys=True, default=str, indent=1).encode())
            is_new = self._objects.write_once(key, packed)
        except PayloadStoreError:
            raise
        except Exception as exc:
            raise self._error(sha, "cannot be stored", exc) from exc
        return StoredPayload(sha, self._objects.location(key), is_new=is_new)

    def put_many(self, items: Sequence[tuple[bytes, dict]]) -> list[StoredPayload]:
        """``put`` for a batch, in order: the first of several equal payloads in the batch writes it (and its
        sidecar), exactly as one ``put`` after the other would; look-ups and writes run concurrently."""
        first: dict[str, int] = {}
        hashes = []
        for i, (content, _meta) in enumerate(items):
            sha = sha256_hex(content)
            hashes.append(sha)
            first.setdefault(sha, i)
        unique = list(first.values())
        with ThreadPoolExecutor(max(1, min(self._objects.threads, len(unique)))) as pool:
            existing = dict(zip(unique, pool.map(lambda i: self._stored_key(hashes[i]), unique)))
            # Repeats within the batch and payloads already stored are left alone, as ``put`` leaves them.
            out = [StoredPayload(sha, self._objects.location(existing[first[sha]] or self.key_for(sha)),
                                 is_new=False) for sha in hashes]
            todo = [i for i in unique if existing[i] is None]
            written = list(pool.map(lambda i: self._put(items[i][0], items[i][1], hashes[i], None), todo))
        for i, stored in zip(todo, written):
            out[i] = stored
        return out

    def get(self, sha256: str) -> bytes:
        limit = config.max_payload_bytes()
        key = self._stored_key(sha256)
        content = None
        if key is not None:
            try:
                content = self._objects.read(key, limit)
            except _TooLarge as big:
                raise PayloadStoreError(self._too_large(sha256, key, big.size, limit, "stored")) from None
            except Exception as exc:
                raise self._error(sha256, "cannot be read", exc) from exc
        if content is None:
            raise PayloadStoreError(f"payload {sha256} is not in the raw store ({self.location_for(sha256)})")
        location = self._objects.location(key)
        if key.endswith(".zst"):
            try:
                # A stream: also reads a frame that does not record its size (written by another zstd tool), and
                # stops at the limit instead of inflating a runaway payload into memory.
                with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(content), read_across_frames=True) as r:
                    content = r.read(limit + 1)
            except zstandard.ZstdError as exc:
                raise PayloadStoreError(f"payload file {location} is not valid zstd ({exc}): the raw store is "
                                        f"damaged") from None
        if len(content) > limit:
            raise PayloadStoreError(self._too_large(sha256, key, len(content), limit, "over"))
        if sha256_hex(content) != sha256:
            raise PayloadStoreError(f"payload file {location} does not match its hash {sha256}: the raw store is "
                                    f"damaged")
        return content

    def meta(self, sha256: str) -> dict:
        key = self.meta_key_for(sha256)
        try:
            text = self._objects.read(key, config.max_payload_bytes())
        except Exception as exc:
            raise self._error(sha256, "has a sidecar that cannot be read", exc) from exc
        return json.loads(text) if text is not None else {}

    def __contains__(self, sha256: str) -> bool:
        return self._stored_key(sha256) is not None

    def _error(self, sha256: str, what: str, exc: BaseException) -> PayloadStoreError:
        return PayloadStoreError(f"payload {sha256} {what} ({self.location_for(sha256)}): "
                                 f"{type(exc).__name__}: {exc}")

    def _too_large(self, sha256: str, key: str, size: int, limit: int, how: str) -> str:
        what = f"{size:,} bytes stored" if how == "stored" else f"more than {limit:,} bytes"
        return (f"payload {sha256} ({self._objects.location(key)}): {what}, over the payload size limit of "
                f"{limit:,} ({config.MAX_PAYLOAD_BYTES_ENV}); not read")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def remove_temp_files(root: Path) -> list[Path]:
    """Remove the temp files (``<xx>/.tmp-*``) a writer killed mid-way left in the store at ``root``.

    Only safe while no other process writes the store: the CLI calls it holding the home's writer lock, on the
    home's own ``raw/`` only (a configured store may be shared beyond this home's lock; an S3 store has no temp
    objects: a PUT that did not complete leaves nothing). A temp file is never the stored payload (that is the
    linked name), so nothing stored is lost.
    """
    removed = []
    for tmp in Path(root).glob("*/.tmp-*"):
        try:
            tmp.unlink()
            removed.append(tmp)
        except FileNotFoundError:
            pass
    return removed
