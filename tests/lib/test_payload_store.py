import json

import duckdb
import pytest
import zstandard

from orchestration.lib.payload_store import PayloadStore, PayloadStoreError, sha256_hex
from tests.conftest import v2_payload


def test_same_payload_is_stored_once_and_never_rewritten(tmp_path):
    store = PayloadStore(tmp_path)
    first = store.put(b'{"feed": 1}', {"source_url": "https://a", "run_id": "r1"})
    second = store.put(b'{"feed": 1}', {"source_url": "https://b", "run_id": "r2"})
    assert first.is_new and not second.is_new
    assert first.sha256 == second.sha256 == sha256_hex(b'{"feed": 1}')
    assert store.meta(first.sha256)["source_url"] == "https://a"  # the first sighting's sidecar stays
    assert len(list(tmp_path.rglob("*.payload.zst"))) == 1
    assert store.get(first.sha256) == b'{"feed": 1}'


def test_a_different_payload_is_a_new_file(tmp_path):
    store = PayloadStore(tmp_path)
    a = store.put(b"one", {})
    b = store.put(b"two", {})
    assert a.sha256 != b.sha256 and a.path.exists() and b.path.exists()


def test_damaged_payload_is_detected(tmp_path):
    store = PayloadStore(tmp_path)
    p = store.put(b"original", {})
    p.path.chmod(0o644)
    p.path.write_bytes(zstandard.ZstdCompressor().compress(b"tampered"))
    with pytest.raises(PayloadStoreError, match="does not match its hash"):
        store.get(p.sha256)
    p.path.write_bytes(b"not zstd at all")
    with pytest.raises(PayloadStoreError, match="not valid zstd"):
        store.get(p.sha256)
    with pytest.raises(PayloadStoreError, match="not in the raw store"):
        store.get("0" * 64)


def test_payloads_are_stored_compressed_and_read_back_byte_for_byte(tmp_path):
    store = PayloadStore(tmp_path)
    content = v2_payload("us", "top-free", [(str(100000 + i), f"App {i} 小红书") for i in range(100)])
    stored = store.put(content, {"source": "x.json"})
    assert stored.sha256 == sha256_hex(content)  # the name is the hash of the original bytes, not of the file
    assert stored.path.name == f"{stored.sha256}.payload.zst"
    on_disk = stored.path.read_bytes()
    assert on_disk != content and len(on_disk) * 3 < len(content)
    assert zstandard.ZstdDecompressor().decompress(on_disk) == content
    assert store.get(stored.sha256) == content
    meta = store.meta(stored.sha256)
    assert (meta["bytes"], meta["compression"], meta["stored_bytes"]) == (len(content), "zstd", len(on_disk))


def test_duckdb_reads_the_stored_payload_directly(tmp_path):
    """A DuckDB-based landing can read the store as it is: the ``.zst`` suffix tells DuckDB the compression."""
    store = PayloadStore(tmp_path)
    stored = store.put(v2_payload("fr", "top-free", [("1", "A"), ("2", "B")]), {})
    names = duckdb.sql(f"select unnest(feed.results).name as n from read_json('{stored.path}')").fetchall()
    assert names == [("A",), ("B",)]


def test_a_home_with_uncompressed_payloads_still_reads_and_is_never_rewritten(tmp_path):
    store = PayloadStore(tmp_path)
    content = b'{"feed": {"results": []}}'
    sha = sha256_hex(content)
    old = store.legacy_path_for(sha)  # as stores before compression wrote it
    old.parent.mkdir(parents=True)
    old.write_bytes(content)
    old.chmod(0o444)
    store.meta_path_for(sha).write_text(json.dumps({"payload_sha256": sha, "bytes": len(content)}))
    assert sha in store and store.get(sha) == content
    again = store.put(content, {"source": "again"})
    assert (again.is_new, again.path) == (False, old)
    [stored_again] = store.put_many([(content, {"source": "batch"})])
    assert (stored_again.is_new, stored_again.path) == (False, old)
    assert not store.path_for(sha).exists()  # no second, compressed copy beside the old file
    assert old.read_bytes() == content and "source" not in store.meta(sha)


def test_stored_files_stay_write_once(tmp_path):
    store = PayloadStore(tmp_path)
    stored = store.put(b"payload", {})
    before = stored.path.read_bytes()
    assert not store.put(b"payload", {"source": "later"}).is_new
    assert stored.path.read_bytes() == before
    assert not list(tmp_path.rglob(".tmp-*"))
