"""Great Expectations suites for chartlake's raw, staging and marts layers, as plain Python.

``run_raw_suite`` takes pandas frames (read through short-lived read-only lake connections by the caller)
and returns a ``SuiteResult``: ``passed`` (every blocking expectation held), ``warnings``, per-expectation
outcomes, and ``failed_charts`` so one bad chart or country can be quarantined. ``check_lake_window`` runs the
staging and marts suites straight from a lake connection, in DuckDB (see ``marts``). No Dagster here: the
asset checks in ``orchestration/defs/quality/`` wrap these functions.
"""

from orchestration.lib.quality.marts import MartsCheck, check_lake_window
from orchestration.lib.quality.raw import run_raw_suite
from orchestration.lib.quality.result import ExpectationOutcome, SuiteResult, combine

__all__ = [
    "ExpectationOutcome", "MartsCheck", "SuiteResult", "check_lake_window", "combine", "run_raw_suite",
]
