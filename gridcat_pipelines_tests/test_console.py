"""The CLI's console: progress (a bar on a terminal, plain lines otherwise), failed Dagster
steps as one line each, and Dagster's API warnings hidden unless ``-v``."""

from __future__ import annotations

import io
import warnings

import dagster as dg

from gridcat_pipelines.cli.facet_commands import ProgressBar
from gridcat_pipelines.cli.local_runs import console_config, report_of, step_failures
from gridcat_pipelines.cli.output import quiet_dagster_warnings
from gridcat_pipelines.cli.progress import Progress


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_plain_lines_when_the_stream_is_not_a_terminal():
    stream = io.StringIO()
    with Progress(3, "pulled", stream=stream) as progress:
        assert progress.plain
        for n in range(1, 4):
            progress.advance(line=f"  [{n}/3] pulled x: ok", postfix="x")
            if n == 2:
                progress.write("    failed: a/b 1|2026-01-01: boom (full trace: dagster run r1)")
    assert stream.getvalue().splitlines() == [
        "  [1/3] pulled x: ok",
        "  [2/3] pulled x: ok",
        "    failed: a/b 1|2026-01-01: boom (full trace: dagster run r1)",
        "  [3/3] pulled x: ok",
    ]


def test_plain_lines_are_throttled_but_the_last_step_is_always_printed():
    stream = io.StringIO()
    with Progress(100, "backfill", stream=stream, min_interval=3600) as progress:
        for n in range(1, 101):
            progress.update_to(n, line=f"{n}/100")
    assert stream.getvalue().splitlines() == ["1/100", "100/100"]
    stream = io.StringIO()
    with Progress(None, "retention", stream=stream, min_interval=3600) as progress:
        for n in (500, 1000, 1200):
            progress.update_to(n, line=f"retention: {n} run(s) examined")
    assert stream.getvalue().splitlines() == ["retention: 500 run(s) examined", "retention: 1200 run(s) examined"]


def test_a_bar_on_a_terminal_with_messages_above_it(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    stream = Terminal()
    with Progress(2, "pulled", unit="run", stream=stream) as progress:
        assert not progress.plain
        progress.advance(line="  [1/2] pulled x: ok", postfix="1234567890 2026-01-01")
        progress.write("    failed: a/b 1|2026-01-01: boom (full trace: dagster run r1)")
        progress.advance(line="  [2/2] pulled y: ok")
    out = stream.getvalue()
    assert "[1/2] pulled" not in out, "a terminal gets the bar, not the plain lines"
    assert "2/2" in out and "pulled" in out and "\r" in out
    assert "    failed: a/b 1|2026-01-01: boom (full trace: dagster run r1)\n" in out
    assert Progress(0, "nothing", stream=Terminal()).plain, "no bar for no work"
    assert Progress(2, "forced", stream=Terminal(), plain=True).plain


def test_the_backfill_progress_keeps_rows_status_and_eta():
    stream = io.StringIO()
    bar = ProgressBar(stream, min_interval=0)
    bar({"status": "RUNNING", "rows_total": 10, "rows_processed": 4, "eta_seconds": 1.5})
    bar({"status": "SUCCEEDED", "rows_total": 10, "rows_processed": 9})
    assert stream.getvalue().splitlines() == [
        "backfill: 4/10 rows RUNNING eta 1.5s",
        "backfill: 10/10 rows SUCCEEDED",
    ]


def _job_failing_with(exc: BaseException) -> dg.JobDefinition:
    @dg.op
    def boom():
        raise exc

    @dg.job
    def failing():
        boom()

    return failing


def test_a_failed_step_is_one_line_with_the_first_line_of_the_user_error(capfd):
    result = _job_failing_with(ValueError("bad input\nmore detail")).execute_in_process(
        raise_on_error=False, run_config=console_config(0)
    )
    (failure,) = step_failures(result)
    assert (failure.step, failure.partition, failure.reason) == ("boom", None, "ValueError: bad input")
    assert failure.line() == f"failed: boom: ValueError: bad input (full trace: dagster run {result.run_id})"
    out, err = capfd.readouterr()
    assert "Stack Trace" not in out + err and "bad input" not in out + err, "Dagster's error logging is hidden"


def test_a_dagster_failure_gives_its_description_and_the_root_cause():
    try:
        raise KeyError("k")
    except KeyError as cause:
        failure = dg.Failure(description="pull of x failed: quota exhausted\nsecond line")
        failure.__cause__ = cause
    report = report_of(
        _job_failing_with(failure).execute_in_process(raise_on_error=False, run_config=console_config(0))
    )
    assert not report.success
    (line,) = [f.line() for f in report.failures]
    assert (
        line
        == f"failed: boom: pull of x failed: quota exhausted [KeyError] (full trace: dagster run {report.dagster_run_id})"
    )


def test_verbose_brings_dagster_error_logging_back(capfd):
    _job_failing_with(ValueError("loud")).execute_in_process(raise_on_error=False, run_config=console_config(1))
    out, err = capfd.readouterr()
    assert "Stack Trace" in out + err and "loud" in out + err
    assert console_config(0)["loggers"]["console"]["config"]["log_level"] == "CRITICAL"
    assert console_config(5)["loggers"]["console"]["config"]["log_level"] == "INFO"


def test_dagster_api_warnings_are_hidden():
    from dagster_shared.utils.warnings import BetaWarning, PreviewWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_dagster_warnings()
        warnings.warn("x is currently in beta", BetaWarning)
        warnings.warn("y is currently in preview", PreviewWarning)
        warnings.warn("something else", UserWarning)
    assert [str(w.message) for w in caught] == ["something else"]
