"""A ranged run on the CLI's instance logs one planned event per asset, not one per asset and day (issue 13)."""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at definition time.
import dagster as dg

from orchestration import runner
from orchestration.config import Home

DAILY = dg.DailyPartitionsDefinition(start_date="2025-01-01", end_date="2025-02-01")


@dg.asset(partitions_def=DAILY)
def toy(context: dg.AssetExecutionContext) -> None:
    context.log.info(str(context.partition_key_range))


def _planned(instance, run_id: str) -> int:
    return len(instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED}, limit=10_000).records)


def _ranged_run(instance, days: int) -> str:
    job = dg.Definitions(assets=[toy], jobs=[dg.define_asset_job("toy_job", selection=[toy])]).resolve_job_def(
        "toy_job")
    res = job.execute_in_process(instance=instance, tags={
        "dagster/asset_partition_range_start": "2025-01-01",
        "dagster/asset_partition_range_end": f"2025-01-{days:02d}"})
    assert res.success
    return res.run_id


def test_a_ranged_run_on_the_cli_instance_plans_once_per_asset(tmp_path, monkeypatch):
    monkeypatch.delenv(runner.PLANNED_EVENTS_ENV, raising=False)
    instance = runner.instance_for(Home(tmp_path / "home").ensure())
    try:
        assert _planned(instance, _ranged_run(instance, 20)) == 1
    finally:
        instance.dispose()


def test_a_users_own_setting_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(runner.PLANNED_EVENTS_ENV, "false")
    instance = runner.instance_for(Home(tmp_path / "home").ensure())
    try:
        assert _planned(instance, _ranged_run(instance, 20)) == 20
    finally:
        instance.dispose()
