"""The raw store's batch write (what staging uses): the same outcome as one ``put`` after the other."""

from orchestration.lib.payload_store import ParsedCache, PayloadStore, sha256_hex


def test_put_many_keeps_the_first_sighting_and_leaves_stored_payloads_alone(tmp_path):
    store = PayloadStore(tmp_path)
    old = store.put(b"old", {"source": "first-import"})
    items = [(b"a", {"source": "a1"}), (b"old", {"source": "again"}), (b"a", {"source": "a2"})]
    items += [(f"p{i}".encode(), {"source": f"p{i}"}) for i in range(20)]
    stored = store.put_many(items)
    assert [s.sha256 for s in stored] == [sha256_hex(c) for c, _ in items]
    assert [s.is_new for s in stored[:3]] == [True, False, False] and all(s.is_new for s in stored[3:])
    assert store.meta(sha256_hex(b"a"))["source"] == "a1"  # the first in the batch, as sequential puts give
    assert store.meta(old.sha256)["source"] == "first-import"
    assert all(store.get(sha256_hex(c)) == c for c, _ in items)
    assert not list(tmp_path.rglob(".tmp-*"))  # no temp file left behind by the concurrent writes
    assert len(list(tmp_path.rglob("*.payload.zst"))) == 22
    assert all(not s.is_new for s in store.put_many(items))


def test_parse_cache_refuses_what_does_not_fit_and_frees_what_is_taken():
    cache = ParsedCache(max_rows=5)
    assert cache.put("a", ["rows of a"], 3) and not cache.put("b", ["rows of b"], 3)
    assert cache.get("a") == ["rows of a"] and cache.get("b") is None
    cache.discard("a")
    assert cache.rows == 0 and cache.put("b", ["rows of b"], 3) and len(cache) == 1
    cache.clear()
    assert cache.get("b") is None and cache.rows == 0


def test_stores_on_one_root_share_their_parse_cache(tmp_path):
    one, other = PayloadStore(tmp_path / "raw"), PayloadStore(tmp_path / "x" / ".." / "raw")
    assert one.parsed is other.parsed
    assert PayloadStore(tmp_path / "elsewhere").parsed is not one.parsed
