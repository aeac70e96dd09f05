"""The raw payload store: every payload ever fetched or imported, byte for byte, named by its SHA-256.

A payload is written once (to a temp file, then linked into place) and never overwritten or deleted by the
pipeline, whether it parsed or not: it is the evidence every published figure traces back to. A sidecar JSON
beside it records where it came from the first time it was seen (source URL or file, HTTP status, ETag,
Last-Modified, fetched-at, run id).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@dataclass(frozen=True)
class StoredPayload:
    sha256: str
    path: Path
    is_new: bool


class PayloadStoreError(RuntimeError):
    pass


class PayloadStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.payload"

    def meta_path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.meta.json"

    def put(self, content: bytes, meta: dict) -> StoredPayload:
        """Store ``content`` once. A payload already present is left exactly as it is (and so is its sidecar)."""
        sha = sha256_hex(content)
        path = self.path_for(sha)
        if path.exists():
            return StoredPayload(sha, path, is_new=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        sidecar = {"payload_sha256": sha, "bytes": len(content), **meta}
        self._write_once(self.meta_path_for(sha), json.dumps(sidecar, sort_keys=True, default=str, indent=1).encode())
        is_new = self._write_once(path, content)
        return StoredPayload(sha, path, is_new=is_new)

    def get(self, sha256: str) -> bytes:
        path = self.path_for(sha256)
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            raise PayloadStoreError(f"payload {sha256} is not in the raw store ({path})") from None
        if sha256_hex(content) != sha256:
            raise PayloadStoreError(f"payload file {path} does not match its hash {sha256}: the raw store is damaged")
        return content

    def meta(self, sha256: str) -> dict:
        path = self.meta_path_for(sha256)
        return json.loads(path.read_text()) if path.exists() else {}

    def __contains__(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()

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
