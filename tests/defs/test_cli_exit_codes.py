"""The CLI's exit codes say whether the pipeline did its job: scripts and `make demo` rely on them."""

from orchestration import runner
from tests.conftest import run_chartlake


def test_demo_exits_non_zero_when_the_pipeline_run_fails(home, monkeypatch, capsys):
    calls = []

    def failing_run_range(home_, start, end, **kwargs):
        calls.append((start, end))
        return False  # what run_range answers when a Dagster run of the range failed

    monkeypatch.setattr(runner, "run_range", failing_run_range)
    code = run_chartlake(home, "demo", "--countries", "us", "--start", "2025-01-14", "--end", "2025-01-14")
    assert code == 1
    assert [(str(s), str(e)) for s, e in calls] == [("2025-01-14", "2025-01-14")]
    err = capsys.readouterr().err
    assert "demo: the pipeline run failed" in err
    assert not home.serving_db.exists()
