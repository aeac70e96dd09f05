import pytest

from orchestration.lib.payload_store import PayloadStore, PayloadStoreError, sha256_hex


def test_same_payload_is_stored_once_and_never_rewritten(tmp_path):
    store = PayloadStore(tmp_path)
    first = store.put(b'{"feed": 1}', {"source_url": "https://a", "run_id": "r1"})
    second = store.put(b'{"feed": 1}', {"source_url": "https://b", "run_id": "r2"})
    assert first.is_new and not second.is_new
    assert first.sha256 == second.sha256 == sha256_hex(b'{"feed": 1}')
    assert store.meta(first.sha256)["source_url"] == "https://a"  # the first sighting's sidecar stays
    assert len(list(tmp_path.rglob("*.payload"))) == 1
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
    p.path.write_bytes(b"tampered")
    with pytest.raises(PayloadStoreError, match="does not match its hash"):
        store.get(p.sha256)
    with pytest.raises(PayloadStoreError, match="not in the raw store"):
        store.get("0" * 64)
