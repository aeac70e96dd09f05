"""The simulated Play charts: list() arrays the Play parser reads, marked simulated, RedNote/Lemon8 lagging Apple."""

from __future__ import annotations

import datetime as dt

from orchestration import demo
from orchestration.demo import play as demo_play
from orchestration.sources.parsers import parse_payload

D = dt.date


def _parse(path):
    [chart] = parse_payload(path.read_bytes(), source=str(path))
    return chart


def test_files_parse_as_simulated_play_charts(tmp_path):
    files = demo_play.generate(tmp_path, start=D(2025, 1, 13), end=D(2025, 1, 14), countries=("us", "fr"))
    assert len(files) == 2 * 2 * 3
    assert files[0].relative_to(tmp_path).as_posix() == "2025-01-13/us-android-top-free.json"
    for path in files:
        c = _parse(path)
        assert c.key.store == "google_play" and c.key.device == "android"
        assert c.source_format == "google-play-list-simulated"
        assert len(c.entries) == demo_play.DEFAULT_DEPTH and not c.repeats
    again = demo_play.generate(tmp_path / "again", start=D(2025, 1, 13), end=D(2025, 1, 14), countries=("us", "fr"))
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in files]  # deterministic


def test_rednote_and_lemon8_climb_on_play_after_apple():
    def apple_rank(app_id, day):
        ids = [a.app_id for a in demo.rank_chart("us", "iphone", "top-free", day, 50)]
        return ids.index(app_id) + 1 if app_id in ids else None

    def play_rank(package, day):
        ids = [i["appId"] for i in demo_play.build_list("us", "top-free", day)]
        return ids.index(package) + 1 if package in ids else None

    for day in (D(2025, 1, 12), D(2025, 1, 13), D(2025, 1, 14), D(2025, 1, 16)):
        red = apple_rank(demo.REDNOTE_ID, day - dt.timedelta(days=2))
        lemon = apple_rank(demo.LEMON8_ID, day - dt.timedelta(days=1))
        assert play_rank("com.xingin.xhs", day) == red
        # Both aiming at one rank: RedNote takes it, Lemon8 the next.
        assert play_rank("com.bd.nproject", day) == (lemon + 1 if lemon == red else lemon)
    assert apple_rank(demo.REDNOTE_ID, D(2025, 1, 13)) == 1 and play_rank("com.xingin.xhs", D(2025, 1, 13)) > 1
    assert play_rank("com.xingin.xhs", D(2025, 1, 15)) == 1


def test_unmapped_apps_get_packages_no_real_app_uses():
    ids = [i["appId"] for i in demo_play.build_list("fr", "top-grossing", D(2025, 1, 20))]
    assert len(ids) == len(set(ids)) == 50
    assert all(i in demo_play.PLAY_PACKAGES.values() or i.startswith("sim.chartlake.app") for i in ids)
