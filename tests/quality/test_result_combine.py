"""Combining the results of a window validated in parts: a rule holds for the window only if it held in every part."""

from __future__ import annotations

from orchestration.lib.quality.result import MAX_LISTED, ExpectationOutcome, SuiteResult, combine


def outcome(name, success, count=0, values=(), charts=(), blocking=True):
    return ExpectationOutcome(name=name, expectation_type="expect_x", frame="rows", column="c", blocking=blocking,
                              reason="why", success=success, unexpected_count=count, unexpected_values=list(values),
                              charts=None if charts is None else list(charts))


def part(*outcomes, charts=(), error=None):
    return SuiteResult(suite="marts", partition={}, outcomes=list(outcomes), charts=list(charts), error=error)


def test_counts_summed_samples_capped_charts_pooled():
    a = part(outcome("grain", False, 15, range(15), ["c1"]), outcome("stale", False, 1, [1], ["c1"], blocking=False),
             charts=["c1", "c2"])
    b = part(outcome("grain", True), outcome("stale", True), charts=["c3"])
    c = part(outcome("grain", False, 10, range(100, 110), ["c5", "c4"]), outcome("stale", True), charts=["c4", "c5"])
    result = combine("marts", {"window": "w"}, [("p1", a), ("p2", b), ("p3", c)])
    grain = result.outcome("grain")
    assert not grain.success and grain.unexpected_count == 25
    assert grain.unexpected_values == [*range(15), *range(100, 100 + MAX_LISTED - 15)]
    assert grain.charts == ["c1", "c4", "c5"] and result.failed_charts == ["c1", "c4", "c5"]
    assert [o.name for o in result.warnings] == ["stale"]
    assert result.charts == ["c1", "c2", "c3", "c4", "c5"] and result.chunks == ["p1", "p2", "p3"]
    assert not result.passed and result.error is None


def test_a_failure_of_a_whole_part_or_an_error_fails_the_window():
    frame_wide = part(outcome("has_rows", False, None, charts=None), charts=["c2"])
    result = combine("marts", {}, [("p1", part(outcome("has_rows", True), charts=["c1"])), ("p2", frame_wide)])
    assert result.outcome("has_rows").charts is None and result.failed_charts == ["c1", "c2"]

    ok = part(outcome("grain", True))
    result = combine("marts", {}, [("p1", ok), ("p2", part(error="KeyError: boom"))])
    assert not result.passed and result.error == "[p2] KeyError: boom"
    assert combine("marts", {}, [("p1", ok), ("p2", part(outcome("grain", True)))]).passed
