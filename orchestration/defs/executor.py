"""The executor of every Dagster run on a home: Dagster's default one, inside the home's writer lock.

Runs the daemon launches (the inbox sensor's, the schedules') and materializations started from the UI execute in
a run worker process; this executor takes the home's writer lock (``lib/home_lock.py``) there before the first step
and keeps it until the last one ends, so such a run never writes the home while ``chartlake run`` (or another
run) does. The lock is per run, not per step: the steps of one run (in-process or in parallel subprocesses) run as
Dagster's own ``multi_or_in_process_executor`` runs them, with its config (``execution: config: multiprocess: ...``).

A run that finds the lock taken waits for it, saying who holds it in the run's log (a daemon run has nobody to
report "busy" to, and the next tick would only ask again); terminate it from the UI to give up. The CLI's own
runs execute in-process (``execute_in_process`` always uses the in-process executor) inside the lock that the
command already holds.
"""

from __future__ import annotations

import dagster as dg

from orchestration.config import Home
from orchestration.lib import home_lock

_INNER = dg.multi_or_in_process_executor
STILL_WAITING_EVERY_SECONDS = 60.0


class _WriterLockExecutor(dg.Executor):
    def __init__(self, inner: dg.Executor):
        self._inner = inner

    @property
    def retries(self):
        return self._inner.retries

    @property
    def step_dependency_config(self):
        return self._inner.step_dependency_config

    def execute(self, plan_context, execution_plan):
        home = _run_home(plan_context)
        log = plan_context.log
        command = f"dagster run {plan_context.run_id} ({plan_context.job_name})"

        def waiting(holder):
            who = holder.describe() if holder else "another process"
            log.info(f"waiting for the writer lock of {home.root}: held by {who}")

        def still_waiting(holder, waited):
            who = holder.describe() if holder else "another process"
            log.info(f"still waiting ({waited:.0f} s) for the writer lock of {home.root}: held by {who}")

        with home_lock.writer_lock(home.root, command, wait=None, on_wait=waiting, on_still_waiting=still_waiting,
                                   still_waiting_every=STILL_WAITING_EVERY_SECONDS):
            yield from self._inner.execute(plan_context, execution_plan)


def _run_home(plan_context) -> Home:
    """The home the run's ``chartlake`` resource points at (its ``path`` config, else CHARTLAKE_HOME)."""
    chartlake = ((plan_context.run_config or {}).get("resources") or {}).get("chartlake") or {}
    config = chartlake.get("config") if isinstance(chartlake, dict) else None
    path = config.get("path") if isinstance(config, dict) else None
    return Home.resolve(path or None)


@dg.executor(
    name="chartlake_writer_executor",
    config_schema=_INNER.config_schema.as_field(),
    requirements=_INNER.get_requirements,
)
def writer_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """Dagster's default executor (same config), holding the home's writer lock for the whole run."""
    return _WriterLockExecutor(_INNER.executor_creation_fn(init_context))
