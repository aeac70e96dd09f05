"""How the dashboards hang in the Dagster graph, and what happens where Node's packages are missing (fast)."""

from __future__ import annotations

import dagster as dg
import pytest

from orchestration.definitions import defs
from orchestration.defs.publish.assets import SERVING_KEY
from orchestration.defs.reports.assets import REPORTS_KEY, reports_site
from orchestration.defs.resources import ChartlakeHome
from orchestration.lib import reports


def _selected(job_name: str) -> set[dg.AssetKey]:
    return set(defs.resolve_job_def(job_name).asset_layer.selected_asset_keys)


def test_reports_is_downstream_of_publish_and_in_its_own_job_only():
    graph = defs.resolve_asset_graph()
    assert graph.get(REPORTS_KEY).parent_keys == {SERVING_KEY}
    assert _selected("reports_job") == {REPORTS_KEY}
    # A machine without Node must still run the pipeline: the dashboards are not part of its jobs.
    for job in ("warehouse_job", "daily_job"):
        assert SERVING_KEY in _selected(job) and REPORTS_KEY not in _selected(job), job
    sensor = defs.resolve_sensor_def("reports_after_publish")
    assert sensor.job_name == "reports_job"


def test_missing_node_packages_fail_the_asset_with_the_fix(tmp_path, monkeypatch, home):
    monkeypatch.setattr(reports, "REPORTS_DIR", tmp_path / "reports-without-node-modules")
    with pytest.raises(dg.Failure, match=r"make report.*npm ci"):
        dg.materialize([reports_site], resources={"chartlake": ChartlakeHome(path=str(home.root))})
    # Nothing was installed on the way.
    assert not (tmp_path / "reports-without-node-modules" / "node_modules").exists()
