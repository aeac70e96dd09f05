"""Publish refuses to go past a failed blocking check, even in a later run that did not run the check
(dagster-io/dagster#25112): it reads the latest check results itself."""

import dagster as dg
import pytest

from tests.conftest import run_chartlake
from orchestration.config import Home
from orchestration.runner import QUIET, instance_for
from orchestration.defs.resources import ChartlakeHome
from orchestration.lib import lake, serving

pytestmark = pytest.mark.slow
DAY = "2025-01-14"


def _job(selection, name):
    from orchestration.definitions import defs

    job = dg.define_asset_job(name, selection=selection)
    return dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def(name)


def test_failed_marts_check_blocks_a_later_publish(tmp_path):
    home = Home(tmp_path / "home")
    assert run_chartlake(home, "demo", "--countries", "us,fr", "--start", "2025-01-12", "--end", DAY) == 0
    assert [r["publish_id"] for r in serving.read_publish_log(home.serving_db)] == [1]

    # Corrupt the mart behind dbt's back: the same chart position twice breaks the grain.
    with lake.session(home) as con:
        con.execute(f"""insert into marts.mart_daily_rankings select * from marts.mart_daily_rankings
                        where country = 'us' and chart_date = date '{DAY}' and rank = 1 limit 1""")

    instance = instance_for(home)
    resources = {"chartlake": ChartlakeHome(path=str(home.root))}
    tags = {"dagster/asset_partition_range_start": DAY, "dagster/asset_partition_range_end": DAY}
    check_key = dg.AssetCheckKey(dg.AssetKey(["marts", "mart_daily_rankings"]), "marts_quality")
    checked = _job(dg.AssetSelection.checks(check_key), "check_only").execute_in_process(
        instance=instance, resources=resources, tags=tags, raise_on_error=False, run_config=QUIET)
    evaluations = checked.get_asset_check_evaluations()
    assert len(evaluations) == 1 and not evaluations[0].passed
    failures = evaluations[0].metadata["blocking_failures"].value
    assert any(f.startswith("mart_daily_rankings.") for f in failures), failures

    published = _job(dg.AssetSelection.assets(dg.AssetKey(["serving", "chartlake"])), "publish_only")
    res = published.execute_in_process(instance=instance, resources=resources, partition_key=DAY,
                                       raise_on_error=False, run_config=QUIET)
    assert not res.success
    message = res.get_step_failure_events()[0].step_failure_data.error.message
    assert "blocking checks failed" in message and "marts_quality" in message
    assert [r["publish_id"] for r in serving.read_publish_log(home.serving_db)] == [1]
