"""A readable text snapshot of the whole ``Definitions``: a wiring change shows up in review as a diff of
``tests/defs/definitions_snapshot.txt``.

Regenerate it after a deliberate change:
    CHARTLAKE_UPDATE_SNAPSHOT=1 PYTHONPATH=$PWD .venv/bin/python -m pytest tests/defs/test_definitions_snapshot.py
or  PYTHONPATH=$PWD .venv/bin/python -m tests.defs.definitions_snapshot
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

SNAPSHOT = Path(__file__).with_name("definitions_snapshot.txt")
UPDATE_ENV = "CHARTLAKE_UPDATE_SNAPSHOT"
HEADER = (
    "# The whole Definitions of chartlake (orchestration/definitions.py): assets, checks, jobs, schedules, sensors,\n"
    "# resources. Generated; tests/defs/test_definitions_snapshot.py fails when the wiring differs from it.\n"
    f"# Update after a deliberate change: {UPDATE_ENV}=1 pytest tests/defs/test_definitions_snapshot.py\n"
)


def _keys(keys) -> str:
    return ", ".join(sorted(k.to_user_string() for k in keys)) or "-"


def render(defs: dg.Definitions) -> str:
    graph = defs.resolve_asset_graph()
    out = [HEADER]
    out.append("assets:  # key  [group]  kinds  partitions  pools  <- upstream")
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        parts = [f"  {key.to_user_string()}", f"[{node.group_name}]", ",".join(sorted(node.kinds)) or "-",
                 type(node.partitions_def).__name__ if node.partitions_def else "unpartitioned"]
        if node.pools:
            parts.append("pool=" + ",".join(sorted(node.pools)))
        if not node.is_materializable:
            parts.append("external")
        parts.append("<- " + _keys(node.parent_keys))
        out.append("  ".join(parts))
    out.append("")
    out.append("checks:  # asset: check (blocking)")
    for ck in sorted(graph.asset_check_keys, key=lambda c: (c.asset_key.to_user_string(), c.name)):
        spec = graph.get_check_spec(ck)
        out.append(f"  {ck.asset_key.to_user_string()}: {ck.name}{' (blocking)' if spec.blocking else ''}")
    out.append("")
    out.append("jobs:  # name: the assets (or ops) it runs")
    for name in sorted(j.name for j in defs.jobs):
        job = defs.resolve_job_def(name)
        assets = job.asset_layer.executable_asset_keys if job.asset_layer else set()
        runs = _keys(assets) if assets else "ops " + ", ".join(sorted(job.graph.node_dict))
        out.append(f"  {name}: {runs}")
    out.append("")
    out.append("schedules:  # name: job at cron (timezone), default status")
    for s in sorted(defs.schedules, key=lambda s: s.name):
        s = defs.resolve_schedule_def(s.name)
        out.append(f"  {s.name}: {s.job_name} at {s.cron_schedule!r} ({s.execution_timezone}), "
                   f"{s.default_status.value.lower()}")
    out.append("")
    out.append("sensors:  # name: kind -> job, default status")
    for s in sorted(defs.sensors, key=lambda s: s.name):
        s = defs.resolve_sensor_def(s.name)
        out.append(f"  {s.name}: {type(s).__name__} -> {', '.join(sorted(t.job_name for t in s.targets))}, "
                   f"{s.default_status.value.lower()}")
    out.append("")
    out.append("resources:  # key: class (fields a deployment may set)")
    for key, res in sorted((defs.resources or {}).items()):
        fields = sorted(getattr(type(res), "model_fields", {}) or {})
        out.append(f"  {key}: {type(res).__name__} ({', '.join(fields) or '-'})")
    out.append("")
    return "\n".join(out)


def main() -> None:
    from orchestration.definitions import defs

    SNAPSHOT.write_text(render(defs))
    print(f"wrote {SNAPSHOT}")


if __name__ == "__main__":
    main()
