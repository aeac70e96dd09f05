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


def test_the_store_is_the_homes_raw_folder_unless_configured(tmp_path):
    from orchestration.config import Home
    from orchestration.lib.payload_store import store_for

    home = Home(tmp_path / "home")
    assert store_for(home, {}).root == home.raw
    assert store_for(home, {"CHARTLAKE_RAW_STORE_URL": "  "}).root == home.raw
    assert store_for(home, {"CHARTLAKE_RAW_STORE_URL": str(tmp_path / "shared")}).root == tmp_path / "shared"
    assert store_for(home, {"CHARTLAKE_RAW_STORE_URL": (tmp_path / "a b").as_uri()}).root == tmp_path / "a b"
    on_s3 = store_for(home, {"CHARTLAKE_RAW_STORE_URL": "s3://bucket/team/raw/", "CHARTLAKE_S3_ENDPOINT": "minio:9000",
                             "CHARTLAKE_S3_USE_SSL": "false"})
    assert on_s3.url == "s3://bucket/team/raw/" and on_s3.location_for("ab" + "0" * 62) == \
        f"s3://bucket/team/raw/ab/ab{'0' * 62}.payload.zst"
    assert on_s3._objects.s3.endpoint == "minio:9000" and not on_s3._objects.s3.use_ssl
    with pytest.raises(PayloadStoreError, match="not in a local directory"):
        on_s3.root
    with pytest.raises(PayloadStoreError, match="CHARTLAKE_RAW_STORE_URL='gs://b/raw': expected a directory"):
        store_for(home, {"CHARTLAKE_RAW_STORE_URL": "gs://b/raw"})
    with pytest.raises(PayloadStoreError, match="expected s3://bucket/prefix"):
        store_for(home, {"CHARTLAKE_RAW_STORE_URL": "s3:///raw"})


def test_size_limits_on_store_and_read_name_the_payload(tmp_path, monkeypatch):
    store = PayloadStore(tmp_path)
    big = store.put(b"x" * 5000, {})
    monkeypatch.setenv("CHARTLAKE_MAX_PAYLOAD_BYTES", "4000")
    with pytest.raises(PayloadStoreError, match=f"payload {sha256_hex(b'y' * 4001)}: 4,001 bytes, over the payload "
                                                "size limit of 4,000 \\(CHARTLAKE_MAX_PAYLOAD_BYTES\\); not stored"):
        store.put(b"y" * 4001, {})
    assert not list(tmp_path.rglob(f"{sha256_hex(b'y' * 4001)}*"))
    # Compressed it is small, but it would inflate past the limit: refused without inflating it all.
    with pytest.raises(PayloadStoreError, match=f"payload {big.sha256} \\({big.path}\\): more than 4,000 bytes"):
        store.get(big.sha256)
    legacy = tmp_path / "plain"
    plain = PayloadStore(legacy)
    sha = sha256_hex(b"z" * 4500)
    plain.legacy_path_for(sha).parent.mkdir(parents=True)
    plain.legacy_path_for(sha).write_bytes(b"z" * 4500)
    with pytest.raises(PayloadStoreError, match=f"payload {sha} .*: 4,500 bytes stored, over the payload size limit"):
        plain.get(sha)


def test_concurrent_writers_of_one_file_write_it_once(tmp_path):
    import threading

    store = PayloadStore(tmp_path)
    barrier, results = threading.Barrier(8), []

    def writer(n):
        barrier.wait()
        results.append(store._objects.write_once("ab/race.payload.zst", f"writer {n}".encode()))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [False] * 7 + [True]
    assert (tmp_path / "ab" / "race.payload.zst").read_bytes() in {f"writer {n}".encode() for n in range(8)}
    assert not list(tmp_path.rglob(".tmp-*"))


def test_an_unreadable_store_is_an_error_naming_the_payload(tmp_path):
    store = PayloadStore(tmp_path / "file")
    (tmp_path / "file").write_text("a file where the store's directory should be")
    sha = sha256_hex(b"p")
    with pytest.raises(PayloadStoreError, match=f"payload {sha} cannot be stored \\({tmp_path}/file/.*"
                                                "(FileExistsError|NotADirectoryError)"):
        store.put(b"p", {})
