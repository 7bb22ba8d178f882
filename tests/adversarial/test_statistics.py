"""Issue 14, class 7: statistics that cannot be right.

Intervals never leave the metric's possible range (proportions: the Wilson score interval,
checked against ``statsmodels``; bounded means: the percentile bootstrap), and the method is
in the signature and the record. ``n`` is the number of examples that entered the metric
(SQuAD v2 HasAns/NoAns, swappable counterfactual examples, a BBQ condition, WinoBias sets)
in records, groups, ``compare`` and the report. Differences are labelled better/worse only
when the paired test says so.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from run_factory import TaskRun, classification, correct_to_predictions, write_run
from statsmodels.stats.proportion import proportion_confint

from evalharness.comparison.compare import CompareSettings, compare_runs
from evalharness.metrics import METRICS, build_metric
from evalharness.records.record import load_record
from evalharness.report import render_report
from evalharness.stats import Scorer, paired_bootstrap
from evalharness.types import Example

TESTS = Path(__file__).resolve().parents[1]


def _cases() -> dict[str, dict]:
    cases: dict[str, dict] = {}
    for path in sorted(TESTS.glob("metric_cases_*.py")):
        spec = importlib.util.spec_from_file_location(f"_stat_cases_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cases.update(module.CASES)
    return cases


CASES = _cases()


def _inside(result, bounds) -> bool:
    low, high = bounds
    finite = [v for v in result.ci if v is not None]
    return all(low - 1e-9 <= v <= high + 1e-9 for v in finite) and (len(finite) < 2 or result.ci[0] <= result.ci[1])


# -- intervals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("correct, n", [(0, 5), (5, 5), (3, 10), (1, 1), (97, 100), (500, 872)])
def test_accuracy_interval_is_the_wilson_interval_of_statsmodels(correct, n):
    predictions = ["a"] * correct + ["b"] * (n - correct)
    result = build_metric("accuracy").compute(predictions, ["a"] * n, rng=np.random.default_rng(0))
    low, high = proportion_confint(correct, n, alpha=0.05, method="wilson")
    assert result.ci == pytest.approx((100 * low, 100 * high), abs=1e-9)
    assert result.ci_method == "wilson-0.95"


def test_perfect_accuracy_on_few_examples_gets_a_real_interval_not_zero_width():
    result = build_metric("accuracy").compute(["a"] * 5, ["a"] * 5, rng=np.random.default_rng(0))
    assert result.ci[1] == 100.0 and result.ci[0] == pytest.approx(100 * proportion_confint(5, 5, method="wilson")[0])
    assert result.ci[0] < 60


@pytest.mark.parametrize("name, settings, rows", [
    ("squad_exact", {}, [[1.0, 1.0]] * 6 + [[0.0, 1.0]]),
    ("choice_accuracy", {}, [[1.0, 1.0]] * 3 + [[0.0, 1.0]]),
    ("stereotype_score", {}, [[1.0, 1.0]] * 9 + [[0.0, 1.0]]),
    ("bbq_accuracy", {"context_condition": "ambig"}, [[1.0, 1.0]] * 4 + [[1.0, 0.0], [0.0, 0.0]]),
])
def test_every_proportion_gets_the_wilson_interval(name, settings, rows):
    metric = build_metric(name, settings)
    result = metric.result(np.array(rows), rng=np.random.default_rng(0))
    outcomes = metric.outcomes(np.array(rows)[metric.entered(np.array(rows))])
    low, high = proportion_confint(int(outcomes.sum()), outcomes.size, method="wilson")
    assert result.ci_method == "wilson-0.95" and "|ci:wilson|" in result.signature
    assert result.ci == pytest.approx((100 * low, 100 * high))


@pytest.mark.parametrize("name", sorted(METRICS))
def test_no_metric_interval_leaves_its_bounds(name):
    case = CASES[name]
    metric = build_metric(name, case["settings"])
    inputs = [
        (case["perfect"], case["references"]),
        (case["imperfect"], case["references"]),
        (case["perfect"][:3], case["references"][:3]),
        (case["imperfect"][:2], case["references"][:2]),
    ]
    for predictions, references in inputs:
        groups = metric.example_groups(predictions, references)
        result = metric.compute(predictions, references, rng=np.random.default_rng(1), n_resamples=200, groups=groups)
        assert _inside(result, metric.bounds), (name, result.ci, result.ci_method)
        for group, sub in result.groups.items():
            assert _inside(sub, metric.bounds), (name, group, sub)
        assert result.signature.interval == metric.interval_method and result.signature.format().count("|ci:") == 1


@pytest.mark.parametrize("name, scores", [
    ("rouge1", [100.0, 100.0, 100.0, 20.0]),  # a t-interval: 80 +- 3.18 * 20 = [16, 144]
    ("squad_f1", [100.0, 100.0, 100.0, 20.0]),
    ("likelihood_diff", [0.1, 0.0, 0.0, 9.0]),  # absolute differences: never below 0
])
def test_bounded_mean_interval_stays_inside_the_range_where_a_t_interval_would_not(name, scores):
    metric = build_metric(name)
    columns = {"rouge1": lambda s: [s, s, s, 1.0], "squad_f1": lambda s: [s / 100, 1.0], "likelihood_diff": lambda s: [s, 1.0]}[name]
    stats = np.array([columns(s) for s in scores])
    result = metric.result(stats, rng=np.random.default_rng(0))
    assert result.ci_method.startswith("bootstrap-percentile")
    assert metric.bounds[0] <= result.ci[0] <= result.value <= result.ci[1] <= metric.bounds[1]


def test_signed_likelihood_diff_declares_an_unbounded_range():
    assert build_metric("likelihood_diff", {"absolute": False}).bounds == (-math.inf, math.inf)
    assert build_metric("likelihood_diff").bounds == (0.0, math.inf)


def test_single_example_bootstrap_interval_is_undefined_not_zero_width():
    result = build_metric("rouge1").result(np.array([[50.0, 50.0, 50.0, 1.0]]), rng=np.random.default_rng(0))
    assert result.value == 50.0 and result.ci == (None, None)


def test_paired_bootstrap_on_one_example_is_never_significant():
    metric = build_metric("rouge1")
    scorer = Scorer(metric.aggregate, metric.aggregate_sums)
    result = paired_bootstrap(np.array([[0.0, 0.0, 0.0, 1.0]]), np.array([[90.0, 90.0, 90.0, 1.0]]), scorer, rng=np.random.default_rng(0))
    assert math.isnan(result.p_value) and math.isnan(result.ci_low)


def test_ci_method_is_recorded_and_part_of_the_signature(tmp_path):
    golds = ["negative", "positive"] * 10
    run = write_run(tmp_path / "run", [classification("t/sst", golds, golds)])
    entry = load_record(run).tasks["t/sst"].metrics["accuracy"]
    assert entry.ci_method == "wilson-0.95" and "|ci:wilson|" in entry.signature
    assert entry.ci == pytest.approx((100 * proportion_confint(20, 20, method="wilson")[0], 100.0))


# -- n: the examples that entered the metric --------------------------------------------------

SQUAD_TASK = """\
version: 1
kind: extractive_qa
data: {local: {files: [x.json], format: squad_json}}
metrics:
  - {name: squad_exact, key: exact}
  - {name: squad_exact, key: HasAns_exact, settings: {subset: has_ans}}
  - {name: squad_f1, key: HasAns_f1, settings: {subset: has_ans}}
  - {name: squad_exact, key: NoAns_exact, settings: {subset: no_ans}}
  - {name: squad_f1, key: NoAns_f1, settings: {subset: no_ans}}
"""
ANSWERS = [["Paris"], [], ["Denver Broncos"], [], [], ["1066"], ["gold"]]


def _squad(name: str, predictions: list[str]) -> TaskRun:
    examples = [
        Example(id=f"q{i}", fields={"question": f"question {i}", "context": "some context", "answers": answers, "title": "t"})
        for i, answers in enumerate(ANSWERS)
    ]
    return TaskRun(name, SQUAD_TASK, examples, predictions)


def test_squad_v2_has_ans_and_no_ans_n_count_only_their_questions(tmp_path):
    run = write_run(tmp_path / "run", [_squad("qa/v2", ["Paris", "", "Broncos", "x", "", "1066", ""])])
    metrics = load_record(run).tasks["qa/v2"].metrics
    assert {key: entry.n for key, entry in metrics.items()} == {
        "exact": 7, "HasAns_exact": 4, "HasAns_f1": 4, "NoAns_exact": 3, "NoAns_f1": 3,
    }
    assert metrics["NoAns_exact"].value == pytest.approx(100 * 2 / 3)
    low, high = proportion_confint(2, 3, method="wilson")  # over the 3 unanswerable questions, not all 7
    assert metrics["NoAns_exact"].ci == pytest.approx((100 * low, 100 * high))


def test_compare_n_is_the_examples_that_entered_the_metric(tmp_path):
    a = write_run(tmp_path / "a", [_squad("qa/v2", ["Paris", "", "Broncos", "x", "", "1066", ""])], model="a")
    b = write_run(tmp_path / "b", [_squad("qa/v2", ["Paris", "", "Denver Broncos", "", "", "1066", "gold"])], model="b")
    comparison = compare_runs(a, b, settings=CompareSettings(n_resamples=100, n_permutations=100))
    assert comparison.get("qa/v2", "NoAns_exact").n == 3 and comparison.get("qa/v2", "HasAns_f1").n == 4
    assert comparison.get("qa/v2", "exact").n == 7


def test_report_shows_the_subset_n(tmp_path):
    run = write_run(tmp_path / "run", [_squad("qa/v2", ["Paris", "", "Broncos", "x", "", "1066", ""])])
    html = render_report(run)
    row = html[html.index("<td>NoAns_exact</td>"):]
    row = row[: row.index("</tr>")]
    assert '<td class="num">3</td>' in row


def _flip_predictions(groups_per_example: list[dict[str, bool]]) -> list[dict]:
    return [
        {"original": "positive", "perturbed": {g: ("negative" if f else "positive") for g, f in groups.items()},
         "flipped": dict(groups), "gold": {}}
        for groups in groups_per_example
    ]


def test_counterfactual_flip_rate_n_counts_only_swappable_examples():
    # 6 examples, 2 without any swappable term: n is 4 and the rate is over them.
    predictions = _flip_predictions([{"gender": True}, {"gender": False}, {}, {"names": True}, {}, {"names": False}])
    result = build_metric("flip_rate").compute(predictions, ["positive"] * 6, rng=np.random.default_rng(0))
    assert result.n == 4 and result.value == 50.0
    low, high = proportion_confint(2, 4, method="wilson")
    assert result.ci == pytest.approx((100 * low, 100 * high)) and result.ci_method == "wilson-0.95"
    assert {name: group.n for name, group in result.groups.items()} == {"gender": 2, "names": 2}
    change = build_metric("counterfactual_score_change").compute(predictions, ["positive"] * 6, rng=np.random.default_rng(0))
    assert change.n == 4


def test_flip_rate_with_several_swaps_per_example_resamples_examples_not_pairs():
    predictions = _flip_predictions([{"gender": True, "names": True}, {"gender": False}, {"names": False}, {"gender": True}])
    result = build_metric("flip_rate").compute(predictions, ["positive"] * 4, rng=np.random.default_rng(0))
    assert result.n == 4 and result.value == 60.0  # 3 flips of 5 (example, group) pairs
    assert result.ci_method.startswith("bootstrap-percentile") and 0 <= result.ci[0] <= result.ci[1] <= 100


def _bbq(condition: str, category: str) -> dict:
    return {"label": 0, "unknown": 2, "biased": [1], "context_condition": condition, "category": category}


def test_bbq_n_counts_only_the_examples_of_its_context_condition():
    references = [_bbq("ambig", "Age"), _bbq("ambig", "Age"), _bbq("disambig", "Age"), _bbq("disambig", "Religion"), _bbq("disambig", "Age")]
    predictions = [0, 1, 0, 0, 1]
    for metric_name in ("bbq_accuracy", "bbq_bias_score"):
        metric = build_metric(metric_name, {"context_condition": "ambig"})
        result = metric.compute(predictions, references, rng=np.random.default_rng(0), groups=metric.example_groups(predictions, references))
        assert result.n == 2, metric_name
        assert {name: group.n for name, group in result.groups.items()} == {"Age": 2}, metric_name  # no ambiguous Religion example
    accuracy = build_metric("bbq_accuracy", {"context_condition": "disambig"}).compute(predictions, references, rng=np.random.default_rng(0))
    assert accuracy.n == 3 and accuracy.value == pytest.approx(200 / 3)


def test_winobias_accuracy_gap_n_counts_only_pro_and_anti_examples():
    references = [{"label": 0, "stereotype": side} for side in ("pro", "anti", "pro", "neutral", "anti")]
    result = build_metric("accuracy_gap").compute([0, 1, 0, 0, 0], references, rng=np.random.default_rng(0))
    assert result.n == 4 and result.value == 50.0


# -- labels: better/worse only when the paired test says so ------------------------------------


def _runs(tmp_path: Path, lost: int, n: int = 200) -> tuple[Path, Path]:
    golds = list(np.random.default_rng(0).choice(["negative", "positive"], n))
    base = np.arange(n) % 5 != 0  # 80% correct
    worse = base.copy()
    worse[np.flatnonzero(base)[:lost]] = False
    a = write_run(tmp_path / f"a{lost}", [classification("t/sst", golds, correct_to_predictions(golds, base))], model="base")
    b = write_run(tmp_path / f"b{lost}", [classification("t/sst", golds, correct_to_predictions(golds, worse))], model="cand")
    return a, b


def test_compare_terminal_says_no_significant_change_for_a_small_difference(tmp_path, cli):
    a, b = _runs(tmp_path, lost=2)
    result = cli("compare", str(a), str(b), env={"COLUMNS": "200"})  # wide enough for the grid layout
    assert result.returncode == 0, result.stderr
    assert "0 improved, 0 regressed, 1 no significant change" in result.stdout
    row = next(line for line in result.stdout.splitlines() if "t/sst" in line)
    assert "no significant change" in row and "regressed" not in row


def test_report_does_not_call_an_insignificant_difference_worse(tmp_path):
    a, b = _runs(tmp_path, lost=2)
    html = render_report(b, a)
    row = html[html.index('<td>accuracy</td>'):]
    row = row[: row.index("</tr>")]
    assert '<td class="num delta ">-1.00</td>' in row and "no significant change, p adj." in row and "worse" not in row


def test_report_calls_a_significant_regression_worse(tmp_path):
    a, b = _runs(tmp_path, lost=30)
    html = render_report(b, a)
    row = html[html.index('<td>accuracy</td>'):]
    row = row[: row.index("</tr>")]
    assert '<td class="num delta worse">▼ -15.00</td>' in row and '<td class="verdict worse">worse, p adj.' in row


def test_report_does_not_label_a_difference_measured_on_different_data(tmp_path):
    golds = ["negative", "positive"] * 20
    a = write_run(tmp_path / "a", [classification("t/sst", golds, golds)], model="a")
    b = write_run(tmp_path / "b", [classification("t/sst", golds[:30], golds[:30][::-1])], model="b")
    html = render_report(b, a)
    row = html[html.index('<td>accuracy</td>'):]
    row = row[: row.index("</tr>")]
    assert "not tested: no task was evaluated on the same data as the baseline" in row
    assert "delta better" not in row and "delta worse" not in row and "verdict better" not in row and "verdict worse" not in row


def test_compare_change_interval_stays_within_the_possible_change(tmp_path):
    # Two examples that swap: per-example differences -100 and +100; a paired t-interval is +-1270.
    golds = ["negative", "positive"]
    a = write_run(tmp_path / "a", [classification("t/sst", golds, correct_to_predictions(golds, [True, False]))], model="a")
    b = write_run(tmp_path / "b", [classification("t/sst", golds, correct_to_predictions(golds, [False, True]))], model="b")
    item = compare_runs(a, b).get("t/sst", "accuracy")
    assert -100 <= item.ci[0] <= item.ci[1] <= 100 and item.verdict == "no significant change"


# -- n and intervals where they are shown -------------------------------------------------------


def test_compare_terminal_shows_the_n_of_each_metric(tmp_path, capsys, monkeypatch):
    from evalharness.cli import main

    monkeypatch.setenv("COLUMNS", "200")  # wide enough for the grid layout (xdist workers set 80)
    a = write_run(tmp_path / "a", [_squad("qa/v2", ["Paris", "", "Broncos", "x", "", "1066", ""])], model="a")
    b = write_run(tmp_path / "b", [_squad("qa/v2", ["Paris", "", "Denver Broncos", "", "", "1066", "gold"])], model="b")
    assert main(["compare", str(a), str(b), "--n-resamples", "100", "--n-permutations", "100"]) == 0
    rows = {line.split("│")[2].strip(): line.split("│")[3].strip() for line in capsys.readouterr().out.splitlines() if "qa/v2" in line}
    assert rows["NoAns_exact"] == "3" and rows["HasAns_f1"] == "4" and rows["exact"] == "7"


def test_gate_output_shows_the_n_that_entered_the_metric(tmp_path):
    from evalharness.comparison.gate import evaluate_gate
    from evalharness.comparison.gate_report import to_markdown

    run = write_run(tmp_path / "run", [_squad("qa/v2", ["Paris", "", "Broncos", "x", "", "1066", ""])])
    policy = tmp_path / "gates.yaml"
    policy.write_text("rules:\n  - {task: qa/v2, metric: NoAns_exact, min: 50}\n")
    report = evaluate_gate(policy, run)
    assert report.rules[0].checks[0].n == 3
    assert "| ✅ pass | qa/v2 NoAns_exact | value ≥ 50 | 66.67 |  |  |  | 3 |" in to_markdown(report)


def test_undefined_interval_is_printed_not_swallowed_as_markup(tmp_path):
    from record_factory import metric, task
    from record_factory import write_run as write_record_run
    from rich.console import Console

    from evalharness.commands.display import print_run

    run = write_record_run(tmp_path / "r", model="m", tasks={"t/x": task({"accuracy": metric(None)})})
    console = Console(width=200, record=True)
    print_run(load_record(run), console=console)
    assert "[n/a, n/a]" in console.export_text()


def test_proportion_rescored_from_damaged_statistics_is_refused_not_crashed():
    from evalharness.errors import MetricInputError

    with pytest.raises(MetricInputError, match="not 0/1 outcomes"):
        build_metric("accuracy").result(np.array([[0.5, 1.0], [1.0, 1.0]]), rng=np.random.default_rng(0))
