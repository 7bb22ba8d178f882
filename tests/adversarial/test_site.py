"""Issue 20, item 1: the leaderboard site v2 and the single-run report, without a browser.

Ranks come from paired tests on the shared examples (WMT's clusters), corrected across every
pair, with the marginal-interval rule as an option; the model-vs-model data are the tests
``evalharness compare`` would run; readable names, metadata, badges and a board history; a
report that marks only significant differences and says what an error is per metric kind.
Browser checks (Chromium) are in ``tests/test_site_v2.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from evalharness.comparison.compare import CompareSettings, compare_runs
from evalharness.errors import UsageError
from evalharness.leaderboard import build_leaderboard
from evalharness.leaderboard.metadata import model_metadata
from evalharness.leaderboard.paired import family_settings
from evalharness.leaderboard.ranking import rank_clusters
from evalharness.records.record import load_record, write_record
from evalharness.report import render_report
from evalharness.report.outcomes import example_outcomes, text_of
from evalharness.report.site import write_site
from tests.inprocess import main  # noqa: F401 - pytest fixture: the CLI in-process
from tests.record_factory import metric, task
from tests.record_factory import write_run as write_record_run
from tests.run_factory import classification, correct_to_predictions
from tests.run_factory import write_run as write_scored_run

N = 200
GOLDS = ["positive" if i % 3 else "negative" for i in range(N)]
TASK_WITH_F1 = """\
version: 1
kind: classification
data: {local: {files: [x.tsv], format: tsv}}
labels: [negative, positive]
metrics: [accuracy, {name: f1, settings: {positive_label: positive}}]
"""


def scored(directory: Path, model: str, correct: list[bool], *, task_name: str = "t", spec: str | None = None) -> Path:
    """A real run (record and samples from the scoring path) right where ``correct`` is."""
    kwargs = {"spec": spec} if spec else {}
    return write_scored_run(directory / model, [classification(task_name, GOLDS, correct_to_predictions(GOLDS, correct), **kwargs)], model=model)


def correct_on(count: int, *, skip: int = 0) -> list[bool]:
    """Right on ``count`` examples, starting after the first ``skip``."""
    return [skip <= i < skip + count for i in range(N)]


def labels(board) -> dict[str, str]:
    return {model: board.rank_label(model) for model in board.model_ids}


def edit_record(run_dir: Path, **changes) -> None:
    """Rewrite a record with changed fields (validated as any record is)."""
    record = load_record(run_dir)
    model = record.model.model_copy(update=changes.pop("model", {}))
    write_record(run_dir, record.model_copy(update={"model": model, **changes}))


# -- rank clusters -----------------------------------------------------------------------------


def test_models_a_paired_test_cannot_separate_share_a_rank(tmp_path):
    scored(tmp_path, "A", correct_on(180))
    scored(tmp_path, "B", correct_on(178))  # A's answers minus two: McNemar cannot tell them apart
    scored(tmp_path, "C", correct_on(120))
    board = build_leaderboard([tmp_path], rank_by="t:accuracy")
    assert labels(board) == {"A": "=1", "B": "=1", "C": "3"}
    tests = board.paired.column("t:accuracy", board.model_ids)
    assert tests.tests[("A", "B")].test == "mcnemar-exact" and tests.tests[("A", "B")].p_adjusted >= 0.05
    assert tests.tests[("B", "C")].p_adjusted < 0.05 and tests.tests[("B", "C")].verdict == "regressed"
    assert any("clusters from paired tests" in note and "holm over the 3 tested pairs" in note for note in board.notes)


def test_marginal_intervals_tie_what_the_paired_test_separates_and_stay_an_option(tmp_path):
    """75% vs 81% on the same 200 examples, B right wherever A is: the Wilson intervals
    overlap, McNemar (12 discordant examples, all for B) does not leave any doubt."""
    scored(tmp_path, "A", correct_on(150))
    scored(tmp_path, "B", correct_on(162))
    paired = build_leaderboard([tmp_path], rank_by="t:accuracy")
    assert labels(paired) == {"B": "1", "A": "2"}
    marginal = build_leaderboard([tmp_path], rank_by="t:accuracy", ranks="marginal")
    assert labels(marginal) == {"B": "=1", "A": "=1"} and marginal.paired is None
    assert any("marginal rule" in note for note in marginal.notes)
    with pytest.raises(UsageError, match="ranks: unknown rule 'pairwise'; did you mean 'paired'"):
        build_leaderboard([tmp_path], ranks="pairwise")


def test_correction_across_pairs_keeps_a_tie_that_a_single_uncorrected_test_would_break(tmp_path):
    """A beats B and C (B and C answer identically) on 6 discordant examples each: p = 0.031
    alone, 0.094 after Holm over the three pairs."""
    scored(tmp_path, "A", correct_on(106))
    scored(tmp_path, "B", correct_on(100))
    scored(tmp_path, "C", correct_on(100))
    assert set(labels(build_leaderboard([tmp_path], rank_by="t:accuracy")).values()) == {"=1"}
    uncorrected = build_leaderboard([tmp_path], rank_by="t:accuracy", compare_settings=CompareSettings(correction="none"))
    assert labels(uncorrected) == {"A": "1", "B": "=2", "C": "=2"}


def test_clusters_cut_only_where_every_model_above_beats_every_model_below():
    import pandas as pd

    values = pd.Series({"A": 10.0, "B": 9.0, "C": 8.0, "D": 7.0})
    beats = {("A", "C"), ("A", "D"), ("B", "D")}  # B cannot be told from C, nor C from D
    ranked = rank_clusters(values, lambda a, b: (a, b) in beats)
    assert list(ranked["rank"]) == [1, 1, 1, 1] and list(ranked["cluster"]) == [1, 1, 1, 1]
    ranked = rank_clusters(values, lambda a, b: (a, b) in beats | {("C", "D")})
    assert list(ranked["rank"]) == [1, 1, 1, 4] and list(ranked["tied"]) == [True, True, True, False]
    lower = rank_clusters(pd.Series({"A": 3.0, "B": 1.0, "C": float("nan")}), lambda a, b: True, direction="lower")
    assert list(lower["rank"].astype(object)) == [2, 1, pd.NA] and list(lower["order"]) == [1, 0, 2]


def test_board_tests_are_exactly_what_evalharness_compare_reports(tmp_path):
    """The shared-resample shortcut gives compare_runs' numbers, for McNemar (accuracy) and
    the paired bootstrap (F1), field by field."""
    rng = np.random.default_rng(3)
    for model in ("A", "B", "C"):
        scored(tmp_path, model, list(rng.random(N) < 0.7), spec=TASK_WITH_F1)
    board = build_leaderboard([tmp_path], rank_by="t:f1")
    for key in ("t:accuracy", "t:f1"):
        column = board.paired.column(key, board.model_ids)
        assert len(column.tests) == 3 and not column.untested
        for (a, b), test in column.tests.items():
            reference = compare_runs(tmp_path / a, tmp_path / b, settings=column.settings).get("t", key.split(":")[1])
            for field in ("value_a", "value_b", "difference", "change", "ci", "p_value", "test", "method", "n", "details"):
                assert getattr(test, field) == getattr(reference, field), (key, a, b, field)


def test_too_few_resamples_for_the_correction_are_raised_so_systems_can_be_separated():
    """With 1000 resamples the smallest bootstrap p-value (1/1001) times 190 pairs is 0.19:
    a 20-system board could never be separated. The family's resamples are raised."""
    settings = family_settings(CompareSettings(), 190)
    assert settings.n_resamples >= 7600 and 190 / (settings.n_resamples + 1) < 0.05
    assert family_settings(CompareSettings(), 1).n_resamples == 1000
    assert family_settings(CompareSettings(correction="none"), 190).n_resamples == 1000


def test_samples_that_do_not_reproduce_the_recorded_value_are_not_paired_tested(tmp_path):
    """Hand-typed values (85, 90, 89.5) over samples that score 50: testing the samples would
    test other numbers than the board shows. The pairs fall back to the marginal rule, said."""
    for name, value in (("A", 85.0), ("B", 90.0), ("C", 89.5)):
        write_record_run(tmp_path / name, model=name, tasks={"t": task({"accuracy": metric(value)})})
    board = build_leaderboard([tmp_path])
    assert labels(board) == {"B": "=1", "C": "=1", "A": "3"}
    assert any("give accuracy = 50, not the recorded 90" in note for note in board.notes)
    assert any("separated only when their 95% intervals do not overlap" in note for note in board.notes)


def test_damaged_samples_leave_the_board_and_site_built_with_the_reason(main, tmp_path):
    runs = tmp_path / "runs"
    for model, count in (("A", 180), ("B", 120)):
        scored(runs, model, correct_on(count))
    (runs / "B" / load_record(runs / "B").tasks["t"].samples).unlink()
    result = main("leaderboard", str(runs), "--site", str(tmp_path / "site"), "--no-reports")
    assert result.returncode == 0, result.stderr
    assert "B: no paired test" in result.stdout and "samples file missing" in result.stdout
    compare = (tmp_path / "site" / "compare.html").read_text(encoding="utf-8")
    assert "examples unavailable" in compare and "samples file missing" in compare


def test_the_suite_mean_is_ranked_by_a_paired_bootstrap_over_its_tasks(tmp_path):
    """B is right on A's examples minus ten, on both tasks: the means' marginal intervals
    overlap (75 vs 70, stderr ~2.2 each), the paired bootstrap of the mean leaves no doubt."""
    for model, count in (("A", 150), ("B", 140)):
        tasks = [classification(name, GOLDS, correct_to_predictions(GOLDS, correct_on(count))) for name in ("t", "u")]
        write_scored_run(tmp_path / model, tasks, model=model)
    board = build_leaderboard([tmp_path])
    assert board.rank_by == "mean" and labels(board) == {"A": "1", "B": "2"}
    test = board.paired.aggregate("mean", {}, board.values["mean"], board.model_ids).tests[("A", "B")]
    assert test.test == "paired-bootstrap (aggregate)" and test.p_adjusted < 0.05 and test.change == pytest.approx(-5.0)
    assert labels(build_leaderboard([tmp_path], ranks="marginal")) == {"A": "=1", "B": "=1"}
    by_win_rate = build_leaderboard([tmp_path], rank_by="mean_win_rate")
    assert any("no paired test is defined for this aggregate" in note for note in by_win_rate.notes)


# -- names, metadata, badges -------------------------------------------------------------------


def test_two_rows_with_one_display_name_are_refused_naming_both(main, tmp_path):
    for model, count in (("A", 180), ("B", 120)):
        scored(tmp_path, model, correct_on(count))
    result = main("leaderboard", str(tmp_path), "--name", "A=Same", "--name", "B=Same")
    assert result.returncode == 2 and "'Same' is the name of both 'A' and 'B'" in result.stderr


def test_a_display_name_for_a_model_not_on_the_board_is_refused(main, tmp_path):
    scored(tmp_path, "bert-base", correct_on(180))
    result = main("leaderboard", str(tmp_path), "--name", "bert-bsae=BERT")
    assert result.returncode == 2 and "no model 'bert-bsae' on the leaderboard; did you mean 'bert-base'" in result.stderr
    bad = main("leaderboard", str(tmp_path), "--name", "no-equals-sign")
    assert bad.returncode == 2 and "is not MODEL_ID=NAME" in bad.stderr


def test_the_record_display_name_or_the_given_one_is_shown_everywhere(main, tmp_path):
    runs = tmp_path / "runs"
    scored(runs, "m-7b-it", correct_on(180))
    scored(runs, "m-2b", correct_on(120))
    edit_record(runs / "m-7b-it", model={"notes": {"display_name": "Model 7B (instruct)"}})
    result = main("leaderboard", str(runs), "--name", "m-2b=Model 2B", "--format", "markdown", "--site", str(tmp_path / "site"), "--no-reports")
    assert result.returncode == 0, result.stderr
    assert "| 1 | Model 7B (instruct) |" in result.stdout and "| 2 | Model 2B |" in result.stdout
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert ">Model 7B (instruct)</a>" in index and 'data-model="m-7b-it"' in index
    data = json.loads((tmp_path / "site" / "data" / "leaderboard.json").read_text())
    assert [(row["model_id"], row["name"]) for row in data["rows"]] == [("m-7b-it", "Model 7B (instruct)"), ("m-2b", "Model 2B")]


def test_partial_skipped_and_mixed_settings_rows_get_badges(tmp_path):
    for model, count in (("full", 180), ("cut", 170), ("skips", 160), ("bf16", 150)):
        scored(tmp_path, model, correct_on(count))
    record = load_record(tmp_path / "cut")
    entry = record.tasks["t"]
    subset = {"limit": 200, "partial": True, "n_examples": 200, "n_available": 872}
    edit_record(tmp_path / "cut", tasks={"t": entry.model_copy(update={"settings": {**entry.settings, "subset": subset},
                                                                        "data": entry.data.model_copy(update={"n_available": 872})})})
    edit_record(tmp_path / "skips", skipped={"glue/stsb": "a classifier cannot score a regression task"})
    edit_record(tmp_path / "bf16", model={"dtype": "bfloat16"}, settings={"dtype": "bfloat16", "seed": 1234})
    board = build_leaderboard([tmp_path], rank_by="t:accuracy")
    infos, notes = model_metadata(board)
    kinds = {model: [badge.kind for badge in info.badges] for model, info in infos.items()}
    assert kinds == {"full": [], "cut": ["partial"], "skips": ["skipped"], "bf16": ["mixed"]}
    assert "t: 200 of 872 examples (--limit 200)" in infos["cut"].badges[0].detail
    assert "glue/stsb (a classifier cannot score a regression task)" in infos["skips"].badges[0].detail
    assert "dtype bfloat16" in infos["bf16"].badges[0].detail
    assert any(note.startswith("mixed settings: dtype differs between rows") for note in notes)
    write_site(board, tmp_path / "site", reports=False)
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert index.count('class="badge partial"') == 1 and index.count('class="badge skipped"') == 1 and index.count('class="badge mixed"') == 1
    assert 'data-flags="partial"' in index


def test_reproduce_command_pins_the_task_versions(tmp_path):
    run = scored(tmp_path, "A", correct_on(180))
    record = load_record(run)
    edit_record(run, model={"source": "checkpoint"}, settings={"seed": 7, "dtype": "float16", "limit": 200})
    infos, _ = model_metadata(build_leaderboard([tmp_path]))
    lines = infos["A"].reproduce
    assert lines[0] == "evalharness run --model /models/A --tasks t --limit 200 --dtype float16 --seed 7"
    assert lines[1] == f"# expects task versions: t v1 (spec {record.tasks['t'].spec_hash})"
    facts = dict(infos["A"].facts)
    assert facts["dtype"] == "float16" and facts["prompt format"] == "—" and facts["source"] == "checkpoint"


# -- history -----------------------------------------------------------------------------------


def test_rebuilding_a_site_keeps_the_previous_board_and_names_the_rows_it_dropped(tmp_path):
    runs = tmp_path / "runs"
    scored(runs, "A", correct_on(180))
    scored(runs, "B", correct_on(120))
    site = tmp_path / "site"
    write_site(build_leaderboard([runs]), site, reports=False)
    write_site(build_leaderboard([runs / "A"]), site, reports=False)
    archived = sorted((site / "history").glob("*.json"))
    versions = [p for p in archived if p.name != "index.json"]
    assert len(versions) == 1 and [row["model_id"] for row in json.loads(versions[0].read_text())["rows"]] == ["A", "B"]
    index = (site / "index.html").read_text(encoding="utf-8")
    assert re.search(r'id="removed-rows">Since the previous version of this board \([^)]*\): no longer on the board: B\.', index)
    history = (site / "history.html").read_text(encoding="utf-8")
    assert f'href="history/{versions[0].name}"' in history and "<td>B</td>" in history


def test_rebuilding_an_unchanged_board_adds_no_version(tmp_path):
    scored(tmp_path / "runs", "A", correct_on(180))
    board = build_leaderboard([tmp_path / "runs"])
    for _ in range(2):
        write_site(board, tmp_path / "site", reports=False)
    assert not (tmp_path / "site" / "history").exists()


def test_a_damaged_history_index_never_hides_an_archived_version(tmp_path):
    runs = tmp_path / "runs"
    scored(runs, "A", correct_on(180))
    scored(runs, "B", correct_on(120))
    site = tmp_path / "site"
    write_site(build_leaderboard([runs]), site, reports=False)
    write_site(build_leaderboard([runs / "A"]), site, reports=False)
    (site / "history" / "index.json").write_text("{not json", encoding="utf-8")
    write_site(build_leaderboard([runs]), site, reports=False)
    files = sorted(p.name for p in (site / "history").glob("*-*.json"))
    assert len(files) == 2 and all(name in (site / "history.html").read_text() for name in files)
    # Hand-edited entries: missing fields, wrong types, a path out of the folder.
    (site / "history" / "index.json").write_text(json.dumps([{"file": files[0], "title": {"x": 1}, "models": "B"}, {"file": "../../../etc/passwd"}]))
    write_site(build_leaderboard([runs / "A"]), site, reports=False)
    history = (site / "history.html").read_text()
    assert all(name in history for name in files) and "passwd" not in history


# -- the single-run report ---------------------------------------------------------------------


def test_report_marks_a_difference_only_when_the_paired_test_finds_it(tmp_path):
    base = write_scored_run(tmp_path / "base", [classification("big", GOLDS, correct_to_predictions(GOLDS, correct_on(120))),
                                                classification("small", GOLDS, correct_to_predictions(GOLDS, correct_on(150)))], model="base")
    cand = write_scored_run(tmp_path / "cand", [classification("big", GOLDS, correct_to_predictions(GOLDS, correct_on(180))),
                                                classification("small", GOLDS, correct_to_predictions(GOLDS, correct_on(152)))], model="cand")
    html = render_report(cand, base)
    cells = re.findall(r'<td class="num delta ([a-z]*)">([^<]*)</td>', html)
    assert cells == [("better", "▲ +30.00"), ("", "+1.00")]
    assert html.index('id="scores"') < html.index('id="run"')  # scores and verdicts first, metadata below


@pytest.mark.parametrize(
    ("kind", "spec_metric", "prediction", "gold", "stats", "score", "expected"),
    [
        ("binary", "accuracy", "negative", "positive", [0.0, 1.0], 0.0, True),
        ("label", "f1", "negative", "positive", [0.0, 0.0, 1.0], None, True),
        ("graded", "squad_f1", {"text": "the cat"}, ["a cat"], [50.0, 1.0], 50.0, True),
        ("score", "bleu", "ein Satz", ["ein Satz ."], [3.0, 4.0, 2.0, 1.0, 0.0, 3.0, 2.0, 1.0, 4.0, 4.0], 38.9, None),
    ],
)
def test_errors_are_defined_by_what_the_metric_measures(kind, spec_metric, prediction, gold, stats, score, expected):
    settings = {"positive_label": "positive"} if spec_metric == "f1" else {}
    entry = metric(50.0, name=spec_metric)
    entry = entry.model_copy(update={"settings": settings})
    task_entry = task({"m": entry}, kind="classification" if spec_metric in ("accuracy", "f1") else "generation")
    rows = [{"id": "0", "prediction": prediction, "gold": gold, "scores": {"m": score}, "stats": {"m": stats}}]
    outcomes = example_outcomes(task_entry, rows)
    assert outcomes.kind == kind and outcomes.errors == [expected]
    assert outcomes.rule  # said on the page, per task


def test_several_references_read_one_per_line():
    assert text_of(["Ein Haus .", "Ein Gebäude ."]) == "[1] Ein Haus .\n[2] Ein Gebäude ."
    assert text_of(["only one"]) == "only one" and text_of({"text": "x"}) == '{"text": "x"}'
