"""The raw payload store on an S3-compatible server (moto's, started by conftest): the guarantees of the local store.

Quick (no Postgres, no pipeline): the whole import + run on S3 is in test_lake_on_services.py.
"""

from __future__ import annotations

import threading

import pytest
import zstandard

from orchestration.config import Home
from orchestration.lib.lake import S3Settings
from orchestration.lib.payload_store import PayloadStore, PayloadStoreError, sha256_hex, store_for
from tests.services.conftest import S3_KEY, S3_REGION, S3_SECRET


@pytest.fixture
def s3_env(s3_server) -> dict[str, str]:
    bucket = s3_server.create_bucket("raw")
    return {"CHARTLAKE_RAW_STORE_URL": f"s3://{bucket}/team/raw", "CHARTLAKE_S3_ENDPOINT": s3_server.endpoint,
            "CHARTLAKE_S3_KEY_ID": S3_KEY, "CHARTLAKE_S3_SECRET": S3_SECRET, "CHARTLAKE_S3_REGION": S3_REGION,
            "CHARTLAKE_S3_URL_STYLE": "path", "CHARTLAKE_S3_USE_SSL": "false", "bucket": bucket}


@pytest.fixture
def store(s3_env, tmp_path) -> PayloadStore:
    return store_for(Home(tmp_path / "home"), s3_env)


def test_a_payload_is_one_compressed_object_named_by_its_hash_with_its_sidecar(store, s3_server, s3_env, tmp_path):
    content = b'{"feed": {"results": [' + b'{"id": "1", "name": "A"},' * 200 + b'{"id": "2"}]}}'
    stored = store.put(content, {"source": "us.json", "run_id": "r1"})
    sha = sha256_hex(content)
    assert (stored.sha256, stored.is_new) == (sha, True)
    assert stored.location == f"s3://{s3_env['bucket']}/team/raw/{sha[:2]}/{sha}.payload.zst"
    assert sorted(s3_server.keys(s3_env["bucket"])) == [f"team/raw/{sha[:2]}/{sha}.meta.json",
                                                       f"team/raw/{sha[:2]}/{sha}.payload.zst"]
    body = s3_server.client().get_object(Bucket=s3_env["bucket"], Key=f"team/raw/{sha[:2]}/{sha}.payload.zst")
    packed = body["Body"].read()
    assert len(packed) * 3 < len(content) and zstandard.ZstdDecompressor().decompress(packed) == content
    assert store.get(sha) == content and sha in store
    assert store.meta(sha)["source"] == "us.json" and store.meta(sha)["stored_bytes"] == len(packed)
    assert not list((tmp_path / "home").rglob("*"))  # nothing on local disk


def test_an_existing_object_is_never_overwritten(store, s3_server, s3_env):
    first = store.put(b"payload", {"source": "first"})
    again = store.put(b"payload", {"source": "second"})
    assert (first.is_new, again.is_new) == (True, False)
    assert store.meta(first.sha256)["source"] == "first"
    # Past the existence check too: the conditional PUT itself refuses a key that exists.
    key = store.key_for(first.sha256)
    assert store._objects.write_once(key, b"something else") is False
    assert store._objects.write_once(store.meta_key_for(first.sha256), b"{}") is False
    assert store.get(first.sha256) == b"payload" and store.meta(first.sha256)["source"] == "first"


def test_concurrent_writers_of_one_payload_write_it_once(store, s3_env):
    """Many writers racing on one new payload: exactly one PUT creates it; the others find it there."""
    barrier, results, errors = threading.Barrier(8), [], []

    def writer(n):
        try:
            barrier.wait()
            results.append(store._objects.write_once("ab/race.payload.zst", f"writer {n}".encode()))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and sorted(results) == [False] * 7 + [True]


def test_put_many_on_s3_keeps_the_first_sighting(store):
    old = store.put(b"old", {"source": "first-import"})
    items = [(b"a", {"source": "a1"}), (b"old", {"source": "again"}), (b"a", {"source": "a2"})]
    items += [(f"p{i}".encode(), {"source": f"p{i}"}) for i in range(30)]
    stored = store.put_many(items)
    assert [s.sha256 for s in stored] == [sha256_hex(c) for c, _ in items]
    assert [s.is_new for s in stored[:3]] == [True, False, False] and all(s.is_new for s in stored[3:])
    assert store.meta(sha256_hex(b"a"))["source"] == "a1" and store.meta(old.sha256)["source"] == "first-import"
    assert all(store.get(sha256_hex(c)) == c for c, _ in items)
    assert not any(s.is_new for s in store.put_many(items))


def test_damaged_missing_and_oversized_objects_are_errors_naming_the_payload(store, s3_server, s3_env, monkeypatch):
    p = store.put(b"original", {})
    client, bucket, key = s3_server.client(), s3_env["bucket"], "team/raw/" + store.key_for(p.sha256)
    client.put_object(Bucket=bucket, Key=key, Body=zstandard.ZstdCompressor().compress(b"tampered"))
    with pytest.raises(PayloadStoreError, match=f"s3://{bucket}/{key} does not match its hash {p.sha256}"):
        store.get(p.sha256)
    client.put_object(Bucket=bucket, Key=key, Body=b"not zstd at all")
    with pytest.raises(PayloadStoreError, match="not valid zstd"):
        store.get(p.sha256)
    with pytest.raises(PayloadStoreError, match=f"payload {'0' * 64} is not in the raw store \\(s3://{bucket}/"):
        store.get("0" * 64)
    big = store.put(b"x" * 5000, {})
    monkeypatch.setenv("CHARTLAKE_MAX_PAYLOAD_BYTES", "4000")
    with pytest.raises(PayloadStoreError, match=f"payload {big.sha256} .*more than 4,000 bytes.*"
                                                "CHARTLAKE_MAX_PAYLOAD_BYTES"):
        store.get(big.sha256)
    with pytest.raises(PayloadStoreError, match="over the payload size limit of 4,000"):
        store.put(b"y" * 4001, {})


def test_an_unreachable_store_is_an_error_naming_the_payload_and_the_url(s3_env, tmp_path):
    from tests.services.conftest import free_port

    env = {**s3_env, "CHARTLAKE_S3_ENDPOINT": f"127.0.0.1:{free_port()}"}  # nothing listens there
    store = store_for(Home(tmp_path), env)
    import boto3
    from botocore.config import Config

    # One attempt: the store's own client retries a refused connection with backoff, for seconds.
    store._objects._client = boto3.client("s3", endpoint_url=f"http://{env['CHARTLAKE_S3_ENDPOINT']}",
                                          aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET,
                                          region_name=S3_REGION, config=Config(retries={"max_attempts": 1}))
    sha = sha256_hex(b"p")
    with pytest.raises(PayloadStoreError, match=f"payload {sha} cannot be looked up \\(s3://{s3_env['bucket']}/"
                                                "team/raw/.*EndpointConnectionError"):
        store.put(b"p", {})


def test_a_missing_bucket_is_an_error_not_an_empty_store(s3_server, s3_env):
    store = PayloadStore(s3_env["CHARTLAKE_RAW_STORE_URL"],
                         s3=S3Settings(key_id=S3_KEY, secret=S3_SECRET, region=S3_REGION,
                                       endpoint=s3_server.endpoint, url_style="path", use_ssl=False))
    assert store.put(b"ok", {}).is_new
    nobucket = PayloadStore(f"s3://no-such-bucket-{s3_env['bucket']}/raw", s3=store._objects.s3)
    with pytest.raises(PayloadStoreError, match="cannot be (looked up|stored).*NoSuchBucket|404"):
        nobucket.put(b"ok", {})


def test_duckdb_reads_the_store_on_s3_directly(store, s3_env, tmp_path):
    """As on local files: the ``.zst`` suffix tells DuckDB the compression, the lake's S3 secret reaches the bucket."""
    import duckdb

    from orchestration.lib.lake import install_extensions
    from tests.conftest import v2_payload

    store.put(v2_payload("fr", "top-free", [("1", "A"), ("2", "B")]), {})
    store.put(v2_payload("us", "top-free", [("3", "C")]), {})
    con = duckdb.connect()
    install_extensions(Home(tmp_path / "home"), con)
    con.execute("LOAD httpfs")
    con.execute(S3Settings.from_env(s3_env).secret_sql())
    names = con.execute(f"select unnest(feed.results).name as n from read_json('{store.url}*/*.payload.zst') "
                        "order by n").fetchall()
    assert names == [("A",), ("B",), ("C",)]
