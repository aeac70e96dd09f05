"""What a quality suite run returns: one object the asset checks, the CLI and the publish step all read.

Grain: one ``SuiteResult`` per suite run (one raw country-day, or one staging/marts date window); one
``ExpectationOutcome`` per expectation in it. ``passed`` is decided by the blocking expectations only; warnings
never stop publication but are kept and shown.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from orchestration.lib.quality.gx_lock import GX_LOCK

# A bad frame can have thousands of unexpected rows; the result keeps enough to diagnose, not a copy.
MAX_LISTED = 20


@dataclass
class ExpectationOutcome:
    """The outcome of one GX expectation on one frame of the suite."""

    name: str  # the suite's own rule name, stable across runs (e.g. "rank_unique_in_chart")
    expectation_type: str  # the GX expectation (e.g. "expect_compound_columns_to_be_unique")
    frame: str  # which frame it ran on: "rows", "charts", "schema", "rankings", ...
    column: str | None
    blocking: bool
    reason: str  # why the rule exists and why it blocks or only warns
    success: bool
    unexpected_count: int | None = None
    unexpected_values: list[Any] = field(default_factory=list)
    # Chart labels (ChartKey.label()) of the rows GX reported as unexpected. None: the failure is not
    # attributable to charts (a schema or table-level rule), so it concerns the whole frame.
    charts: list[str] | None = None
    payloads: list[str] = field(default_factory=list)
    observed_value: Any = None
    error: str | None = None  # an exception raised while evaluating: always a failure

    @property
    def is_warning(self) -> bool:
        return not self.blocking and not self.success


@dataclass
class SuiteResult:
    """One suite run. ``passed`` means every blocking expectation succeeded and the suite itself did not fail."""

    suite: str
    partition: dict[str, Any]
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)  # every chart the suite saw
    error: str | None = None  # the suite could not run to the end: a failure, never a pass
    duration_s: float = 0.0
    gx_version: str = ""
    run_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    # A window validated in parts (see ``combine``): the part labels, in order; empty when run in one piece.
    chunks: list[str] = field(default_factory=list)
    # GX's own validation results, kept for rendering Data Docs; not serialised.
    gx_results: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        if self.error is not None or not self.outcomes:
            return False
        return all(o.success for o in self.outcomes if o.blocking)

    @property
    def blocking_failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.blocking and not o.success]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.is_warning]

    @property
    def failed_charts(self) -> list[str]:
        """Charts to quarantine: those named by a failed blocking rule, or all of them if a failure is frame-wide."""
        if self.error is not None:
            return list(self.charts)
        failed: set[str] = set()
        for o in self.blocking_failures:
            if o.charts is None:
                return list(self.charts)
            failed.update(o.charts)
        return sorted(failed)

    @property
    def failed_payloads(self) -> list[str]:
        found: set[str] = set()
        for o in self.blocking_failures:
            found.update(o.payloads)
        return sorted(found)

    def outcome(self, name: str) -> ExpectationOutcome:
        for o in self.outcomes:
            if o.name == name:
                return o
        raise KeyError(f"suite {self.suite!r} has no expectation named {name!r}")

    def describe(self) -> str:
        """One line for logs and check descriptions."""
        part = ", ".join(f"{k}={v}" for k, v in self.partition.items() if v is not None)
        if self.error:
            return f"{self.suite} [{part}]: ERROR {self.error}"
        status = "passed" if self.passed else "FAILED"
        bits = [f"{self.suite} [{part}]: {status}"]
        if self.blocking_failures:
            bits.append("blocking: " + ", ".join(o.name for o in self.blocking_failures))
        if self.warnings:
            bits.append("warnings: " + ", ".join(o.name for o in self.warnings))
        return "; ".join(bits)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(
            {
                "suite": self.suite,
                "partition": self.partition,
                "passed": self.passed,
                "error": self.error,
                "failed_charts": self.failed_charts,
                "failed_payloads": self.failed_payloads,
                "warnings": [o.name for o in self.warnings],
                "blocking_failures": [o.name for o in self.blocking_failures],
                "charts": self.charts,
                "duration_s": round(self.duration_s, 3),
                "gx_version": self.gx_version,
                "run_at": self.run_at,
                "chunks": self.chunks,
                "outcomes": [asdict(o) for o in self.outcomes],
            }
        )

    def save(self, quality_dir: str | Path, name: str) -> dict[str, Path]:
        """Write ``<name>.json``, ``<name>.html`` and GX's own Data Docs pages under ``<name>.gx/``.

        The summary page is ours (it shows blocking vs warning and the charts to quarantine, which GX does not
        know about); each validated frame also gets GX's rendered validation page when GX can render it.
        """
        out = Path(quality_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / f"{name}.json", "html": out / f"{name}.html"}
        paths["json"].write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False))
        gx_pages: dict[str, str] = {}
        render_error = None
        if self.gx_results:
            gx_dir = out / f"{name}.gx"
            try:
                gx_dir.mkdir(exist_ok=True)
                for frame, res in self.gx_results.items():
                    page = gx_dir / f"{frame}.html"
                    page.write_text(render_gx_page(res))
                    gx_pages[frame] = f"{gx_dir.name}/{page.name}"
                paths["gx_docs"] = gx_dir
            except Exception as exc:  # the JSON and our page still describe the run fully
                render_error = f"{type(exc).__name__}: {exc}"
        paths["html"].write_text(render_html(self, gx_pages, render_error))
        return paths


def combine(suite: str, partition: dict[str, Any], parts: list[tuple[str, SuiteResult]]) -> SuiteResult:
    """One result for a window validated in parts (``(label, result)`` per part, e.g. per week of dates).

    An expectation holds for the window when it held in every part: unexpected counts are summed, listed values,
    charts and payloads are pooled (values capped at ``MAX_LISTED``), and the observed value is the first failing
    part's (else the last part's). Errors are kept with the label of the part that raised them. GX's own
    validation result of a frame is kept for one part only (the first that failed, else the last), because
    Data Docs for every part of a year would be hundreds of pages.
    """
    out = SuiteResult(suite=suite, partition=partition, chunks=[label for label, _ in parts])
    merged: dict[str, list[ExpectationOutcome]] = {}
    charts: set[str] = set()
    errors = []
    kept_failing: set[str] = set()  # frames whose kept GX result is from a part where they failed
    for label, part in parts:
        for o in part.outcomes:
            merged.setdefault(o.name, []).append(o)
        charts.update(part.charts)
        if part.error:
            errors.append(f"[{label}] {part.error}")
        out.duration_s += part.duration_s
        out.gx_version = out.gx_version or part.gx_version
        for frame, res in part.gx_results.items():
            if frame in kept_failing:
                continue
            out.gx_results[frame] = res
            if any(o.frame == frame and not o.success for o in part.outcomes):
                kept_failing.add(frame)
    out.outcomes = [_combine_outcomes(outs) for outs in merged.values()]
    out.charts = sorted(charts)
    out.error = "; ".join(errors) or None
    return out


def _combine_outcomes(outs: list[ExpectationOutcome]) -> ExpectationOutcome:
    first = outs[0]
    failed = [o for o in outs if not o.success]
    counts = [o.unexpected_count for o in outs if o.unexpected_count is not None]
    values: list[Any] = []
    for o in failed:
        values.extend(o.unexpected_values[: MAX_LISTED - len(values)])
    charts: list[str] | None = []
    if any(o.charts is None for o in failed):
        charts = None  # one part failed as a whole frame: the failure is not attributable to charts
    else:
        charts = sorted({c for o in failed for c in o.charts or []})
    errors = list(dict.fromkeys(o.error for o in outs if o.error))
    return ExpectationOutcome(
        name=first.name,
        expectation_type=first.expectation_type,
        frame=first.frame,
        column=first.column,
        blocking=first.blocking,
        reason=first.reason,
        success=not failed,
        unexpected_count=sum(counts) if counts else None,
        unexpected_values=values,
        charts=charts,
        payloads=sorted({p for o in failed for p in o.payloads}),
        observed_value=(failed[0] if failed else outs[-1]).observed_value,
        error="; ".join(errors) or None,
    )


def render_html(result: SuiteResult, gx_pages: dict[str, str] | None = None, note: str | None = None) -> str:
    e = html.escape
    status = "ERROR" if result.error else ("PASSED" if result.passed else "FAILED")
    colour = {"PASSED": "#1a7f37", "FAILED": "#cf222e", "ERROR": "#cf222e"}[status]
    rows = []
    for o in result.outcomes:
        state = "ok" if o.success else ("FAIL" if o.blocking else "warn")
        bg = {"ok": "#f0fff4", "FAIL": "#ffebe9", "warn": "#fff8c5"}[state]
        values = ", ".join(map(str, o.unexpected_values[:MAX_LISTED]))
        charts = "all" if (o.charts is None and not o.success) else ", ".join(o.charts or [])
        rows.append(
            f"<tr style='background:{bg}'><td>{e(state)}</td><td>{e(o.name)}</td><td>{e(o.frame)}</td>"
            f"<td>{e(o.column or '')}</td><td>{'blocking' if o.blocking else 'warning'}</td>"
            f"<td>{e(o.expectation_type)}</td><td>{'' if o.unexpected_count is None else o.unexpected_count}</td>"
            f"<td>{e(values)}</td><td>{e(charts)}</td><td>{e(o.reason)}</td><td>{e(o.error or '')}</td></tr>"
        )
    links = "".join(f"<li><a href='{e(href)}'>{e(frame)}</a></li>" for frame, href in (gx_pages or {}).items())
    part = ", ".join(f"{k}={v}" for k, v in result.partition.items())
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{e(result.suite)} {e(part)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 6px;font-size:13px;vertical-align:top}}</style></head><body>
<h1>{e(result.suite)} <span style="color:{colour}">{status}</span></h1>
<p>partition: {e(part)}<br>run at {e(result.run_at)} in {result.duration_s:.2f}s, Great Expectations {e(result.gx_version)}
{f"<br>validated in {len(result.chunks)} parts: {e(', '.join(result.chunks))}" if result.chunks else ""}</p>
{f"<p style='color:{colour}'>suite error: {e(result.error)}</p>" if result.error else ""}
<p>failed charts (quarantine): {e(", ".join(result.failed_charts) or "none")}<br>
warnings: {e(", ".join(o.name for o in result.warnings) or "none")}</p>
<table><tr><th>state</th><th>rule</th><th>frame</th><th>column</th><th>severity</th><th>GX expectation</th>
<th>unexpected</th><th>unexpected values</th><th>charts</th><th>reason</th><th>error</th></tr>
{"".join(rows)}</table>
{f"<h2>GX Data Docs</h2><ul>{links}</ul>" if links else ""}
{f"<p>GX Data Docs not rendered: {e(note)}</p>" if note else ""}
</body></html>
"""


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    item = getattr(value, "item", None)  # numpy / pandas scalars
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            pass
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def render_gx_page(validation_result) -> str:
    """GX's own Data Docs page for one validation result (the renderer GX's local sites use)."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    with GX_LOCK:
        return DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(validation_result))
