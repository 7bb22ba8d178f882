"""Issue 14, class 10: output people can read.

Tables stay readable at 80 columns and when piped: no ellipsis-truncated names that make two
rows look identical (a table too wide for the width becomes one block per row), names from
records are printed literally, no flood of library warnings on stderr (pandas'
PerformanceWarning on a leaderboard of many runs), and ``evalharness --version`` works.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pytest

from evalharness.terminal import Column, print_table
from evalharness.version import __version__
from tests.inprocess import main  # noqa: F401 - pytest fixture: the CLI in-process (fast)
from tests.record_factory import metric, task, write_run

# Two names that differ only at their very end: a cut name would make the rows identical.
LONG_A = "suite/a_rather_long_task_name_for_the_quarterly_release_candidate_alpha"
LONG_B = "suite/a_rather_long_task_name_for_the_quarterly_release_candidate_omega"
NARROW = {"COLUMNS": "80"}


def _lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def _assert_whole_and_distinct(output: str, *names: str) -> None:
    assert "…" not in output and "..." not in output
    for name in names:
        lines = _lines_with(output, name)
        assert lines, f"{name} not shown whole:\n{output}"
        assert all(len(line) <= 80 for line in lines), lines


@pytest.fixture
def env_80(monkeypatch):
    """80 columns for the in-process CLI too (rich reads $COLUMNS)."""
    monkeypatch.setenv("COLUMNS", "80")


def test_version_flag_prints_the_version_and_exits_0(cli):
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"evalharness {__version__}"


def test_run_summary_keeps_task_names_that_differ_only_at_the_end_distinct_at_80_columns(cli, tmp_path, tiny_classifier):
    spec = """\
version: 1
kind: classification
data: {local: {files: [reviews.tsv], format: tsv, columns: {text: sentence}}}
labels: [negative, positive]
metrics: [accuracy, {name: f1, settings: {positive_label: positive}}]
"""
    for name in (LONG_A, LONG_B):
        path = tmp_path / "tasks" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(spec, encoding="utf-8")
    (tmp_path / "data").mkdir()
    rows = "".join(f"the movie was great . {i}\t{['negative', 'positive'][i % 2]}\n" for i in range(6))
    (tmp_path / "data" / "reviews.tsv").write_text("sentence\tlabel\n" + rows, encoding="utf-8")
    result = cli("run", "--model", str(tiny_classifier), "--tasks", f"{LONG_A},{LONG_B}", "--tasks-dir", str(tmp_path / "tasks"),
                 "--data-dir", str(tmp_path / "data"), "--output", str(tmp_path / "run"), env=NARROW)
    assert result.returncode == 0, result.stderr
    _assert_whole_and_distinct(result.stdout, LONG_A, LONG_B)
    assert len(_lines_with(result.stdout, LONG_A)) >= 2  # one block per metric (accuracy, f1), notes
    assert "\x1b[" not in result.stdout  # piped: no colour codes


def test_leaderboard_keeps_model_names_that_differ_only_at_the_end_distinct_at_80_columns(main, env_80, tmp_path):
    names = ["org/model-7b-instruct-finetuned-on-the-internal-dataset-v1", "org/model-7b-instruct-finetuned-on-the-internal-dataset-v2"]
    for index, name in enumerate(names):
        tasks = {f"glue/{t}": task({"accuracy": metric(70.0 + index + k)}) for k, t in enumerate(["sst2", "qnli", "rte", "mrpc"])}
        write_run(tmp_path / f"run{index}", model=name, tasks=tasks)
    result = main("leaderboard", str(tmp_path / "run0"), str(tmp_path / "run1"))
    assert result.returncode == 0, result.stderr
    _assert_whole_and_distinct(result.stdout, *names)


def test_compare_keeps_task_names_that_differ_only_at_the_end_distinct_at_80_columns(main, env_80, tmp_path):
    from tests.run_factory import classification, correct_to_predictions
    from tests.run_factory import write_run as write_scored_run

    golds = ["negative", "positive"] * 20
    for label, correct in (("a", [True] * 30 + [False] * 10), ("b", [True] * 25 + [False] * 15)):
        predictions = correct_to_predictions(golds, correct)
        write_scored_run(tmp_path / label, [classification(name, golds, predictions) for name in (LONG_A, LONG_B)], model=label)
    result = main("compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert result.returncode == 0, result.stderr
    _assert_whole_and_distinct(result.stdout, LONG_A, LONG_B)


def test_table_too_wide_for_the_terminal_becomes_one_block_per_row_without_cutting():
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=80, soft_wrap=True)
    columns = [Column("task", key=True), Column("metric", key=True), Column("value", "right"), Column("95% CI", "right")]
    rows = [[LONG_A, "accuracy", "70.00", "[65.00, 75.00]"], [LONG_B, "accuracy", "71.00", "[66.00, 76.00]"]]
    print_table(console, columns, rows, title="run")
    output = buffer.getvalue()
    assert "┃" not in output  # not a grid
    assert f"\n{LONG_A}\n  metric  accuracy\n  value   70.00\n" in output  # the name alone when both do not fit
    assert f"\n{LONG_B}\n" in output and "95% CI  [66.00, 76.00]" in output
    assert all(len(line) <= 80 for line in output.splitlines())
    narrow = io.StringIO()
    print_table(Console(file=narrow, width=80), columns, [["glue/sst2", "accuracy", "70.00", "[65.00, 75.00]"]])
    assert "┃" in narrow.getvalue()  # what fits stays a grid


def test_names_from_records_are_printed_literally_not_as_markup(main, env_80, tmp_path):
    name = "[bold red]model[/bold red]-x"
    write_run(tmp_path / "run", model=name, tasks={"t/a": task({"accuracy": metric(70.0)})})
    result = main("leaderboard", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert name in result.stdout


def test_leaderboard_of_many_runs_prints_no_library_warnings(main, env_80, tmp_path):
    for index in range(12):
        tasks = {f"suite/task_{t:02d}": task({"accuracy": metric(50.0 + index + t % 5), "f1": metric(40.0 + index, name="f1")}) for t in range(45)}
        write_run(tmp_path / "runs" / f"m{index}", model=f"model-{index}", tasks=tasks, created=f"2026-01-01T00:00:{index:02d}+00:00")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # every warning, each time (pandas' PerformanceWarning came ~270 times)
        result = main("leaderboard", str(tmp_path / "runs"), "--output", str(tmp_path / "board"))
    assert result.returncode == 0, result.stderr
    assert [str(w.message)[:100] for w in caught] == [] and "Warning" not in result.stderr
    assert (tmp_path / "board" / "leaderboard.csv").is_file()
    header = (tmp_path / "board" / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["model_id", "rank", "tied"]
    assert len(header) == 3 + 4 + 3 * (2 * 45 + 2) + 1  # model_id, rank, tied, provenance, 3 per column, runs


def test_tasks_list_fits_80_columns(main, env_80):
    result = main("tasks", "list")
    assert result.returncode == 0, result.stderr
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    assert "glue/sst2" in result.stdout.splitlines() and "glue (" in result.stdout


def test_run_summary_says_why_a_value_is_missing(main, env_80, tmp_path):
    from tests.run_factory import CLASSIFICATION_TASK, classification
    from tests.run_factory import write_run as write_scored_run

    spec = CLASSIFICATION_TASK.replace("metrics: [accuracy]", "metrics: [accuracy, {name: f1, settings: {positive_label: positive, zero_division: nan}}]")
    run = write_scored_run(tmp_path / "run", [classification("t/all_negative", ["negative"] * 6, ["negative"] * 6, spec=spec)])
    (tmp_path / "data").mkdir()
    rows = "".join(f"example {i}\tnegative\n" for i in range(6))  # the examples the run was scored on
    (tmp_path / "data" / "x.tsv").write_text("text\tlabel\n" + rows, encoding="utf-8")
    result = main("rescore", str(run), "--tasks-dir", str(Path(run) / "specs"), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 0, result.stderr
    assert "no value t/all_negative f1: no gold label and no prediction among the 6 examples is the positive label" in result.stdout
