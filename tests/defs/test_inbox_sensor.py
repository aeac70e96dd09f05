"""Issue 17, the inbox sensor: a tick never follows a link, never reads a file over the size limit, and never reads
a file it has handled before (its cursor knows files by name, size and modification time)."""

from __future__ import annotations

import json
import os
import time
import tracemalloc

import dagster as dg

from orchestration.defs.raw import sensors
from orchestration.defs.resources import ChartlakeHome
from orchestration.lib import lake
from orchestration.lib.payload_store import PayloadStore, sha256_hex
from tests.conftest import v2_payload

APPS = [("741292507", "REDnote"), ("835599320", "TikTok"), ("389801252", "Instagram")]


def _settle(path) -> None:
    past = time.time() - 60
    os.utime(path, (past, past), follow_symlinks=False)


def _tick(home, cursor=None):
    with dg.build_sensor_context(cursor=cursor, resources={"chartlake": ChartlakeHome(path=str(home.root))}) as ctx:
        return sensors.inbox_sensor(ctx)


def _registry(home) -> dict[str, tuple]:
    with lake.session(home, read_only=True) as con:
        return {os.path.basename(url): (status, sha, error) for url, status, sha, error in con.execute(
            "select source_url, status, payload_sha256, error from raw.payloads").fetchall()}


def test_links_and_other_non_regular_files_are_refused_by_name_and_never_followed(home, tmp_path):
    outside = tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    good = v2_payload("us", "top-free", APPS)
    (outside / "good.json").write_bytes(good)
    (outside / "folder" / "us-2025-01-14.json").write_bytes(v2_payload("fr", "top-free", APPS))
    links = {"x.json": "/etc/passwd", "good-link.json": str(outside / "good.json"),
             "folder-link": str(outside / "folder")}
    for name, target in links.items():
        (home.inbox / name).symlink_to(target)
        _settle(home.inbox / name)
    os.mkfifo(home.inbox / "pipe.json")  # opening it for a blocking read would hang the tick
    _settle(home.inbox / "pipe.json")

    result = _tick(home)

    assert isinstance(result, dg.SensorResult) and result.run_requests == []
    rejected = home.inbox / "rejected"
    assert sorted(p.name for p in rejected.iterdir()) == sorted(
        [*links, "pipe.json", *(f"{n}.reason.txt" for n in [*links, "pipe.json"])])
    for name, target in links.items():
        assert os.readlink(rejected / name) == target  # filed as the link itself, not a copy of what it names
        reason = (rejected / f"{name}.reason.txt").read_text()
        assert "payload_sha256: -" in reason and "a symbolic link" in reason, reason
    assert "not a regular file" in (rejected / "pipe.json.reason.txt").read_text()
    assert [p.name for p in home.inbox.iterdir()] == ["rejected"]
    registry = _registry(home)
    assert sorted(registry) == sorted([*links, "pipe.json"])
    assert all(status == "failed" and sha is None for status, sha, _ in registry.values()), registry
    assert "a symbolic link (to '/etc/passwd')" in registry["x.json"][2]
    # Nothing a link names was read into the raw store.
    store = PayloadStore(home.raw)
    assert sha256_hex(good) not in store and list(home.raw.rglob("*.payload*")) == []
    assert (outside / "good.json").read_bytes() == good


def test_a_file_over_the_size_limit_is_refused_from_its_size_unread(home):
    huge = home.inbox / "huge.json"
    with open(huge, "wb") as f:
        f.truncate(200 * 1024 * 1024)  # sparse: 200 MB to read, nothing on disk
    _settle(huge)

    tracemalloc.start()
    try:
        result = _tick(home)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.run_requests == []
    assert peak < 40 * 1024 * 1024, f"the tick held {peak:,} bytes: it read the file"
    reason = (home.inbox / "rejected" / "huge.json.reason.txt").read_text()
    assert "209,715,200 bytes, over the payload size limit of 67,108,864" in reason, reason
    assert _registry(home)["huge.json"][:2] == ("failed", None)


def test_a_file_whose_move_failed_is_filed_by_the_next_tick_without_being_read_again(home, monkeypatch):
    payload = v2_payload("us", "top-free", APPS)
    dropped = home.inbox / "us-2025-01-14.json"
    dropped.write_bytes(payload)
    _settle(dropped)
    real_move = sensors._move_unique

    def full_disk(src, folder):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sensors, "_move_unique", full_disk)
    first = _tick(home)
    assert [r.partition_key for r in first.run_requests] == ["2025-01-14"]
    assert dropped.exists()
    files = json.loads(first.cursor)["files"]
    info = dropped.stat()
    assert files == {f"us-2025-01-14.json/{info.st_size}/{info.st_mtime_ns}": "processed"}

    def read_again(*args, **kwargs):
        raise AssertionError("the file was staged (read) a second time")

    monkeypatch.setattr(sensors, "_move_unique", real_move)
    monkeypatch.setattr(sensors.ingest, "stage_files", read_again)
    second = _tick(home, first.cursor)
    assert second.run_requests == []
    assert not dropped.exists() and (home.inbox / "processed" / dropped.name).read_bytes() == payload

    # The same name with other content (another size or time) is another file: staged again.
    monkeypatch.undo()
    dropped.write_bytes(v2_payload("us", "top-free", list(reversed(APPS))))
    _settle(dropped)
    third = _tick(home, second.cursor)
    assert [r.partition_key for r in third.run_requests] == ["2025-01-14"]
    assert (home.inbox / "processed" / "us-2025-01-14.1.json").exists()
