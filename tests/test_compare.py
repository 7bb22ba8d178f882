"""``evalharness compare``: pairing by example id, refusing different data, verdicts that
respect direction and ideal values, multiple-comparison control, JSON and CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from run_factory import CLASSIFICATION_TASK, classification, correct_to_predictions, write_run
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from evalharness.cli import main
from evalharness.comparison.compare import CompareSettings, IncomparableRunsError, compare_runs
from evalharness.errors import RecordError, UsageError
from evalharness.metrics.registry import METRICS
from evalharness.records.record import read_samples, write_samples

BIAS_AND_ERROR_TASK = CLASSIFICATION_TASK.replace("metrics: [accuracy]", "metrics: [accuracy, error_rate, positive_share]")


@pytest.fixture
def extra_metrics(monkeypatch):
    monkeypatch.setitem(METRICS, "error_rate", "run_factory:ErrorRate")
    monkeypatch.setitem(METRICS, "positive_share", "run_factory:PositiveShare")


def _golds(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return list(rng.choice(["negative", "positive"], n))


def _pair(tmp_path, correct_a, correct_b, *, name="t/sst", golds=None):
    golds = golds or _golds(len(correct_a))
    run_a = write_run(tmp_path / "a", [classification(name, golds, correct_to_predictions(golds, correct_a))], model="a")
    run_b = write_run(tmp_path / "b", [classification(name, golds, correct_to_predictions(golds, correct_b))], model="b")
    return run_a, run_b


def test_accuracy_is_compared_with_mcnemar_on_examples_matched_by_id(tmp_path):
    rng = np.random.default_rng(1)
    correct_a = rng.random(300) < 0.7
    correct_b = correct_a.copy()
    correct_b[np.flatnonzero(correct_a)[:25]] = False  # B loses 25 of A's correct answers
    golds = _golds(300)
    run_a = write_run(tmp_path / "a", [classification("t/sst", golds, correct_to_predictions(golds, correct_a))], model="a")
    # B's samples are written in a different order: pairing must follow ids, not positions.
    order = rng.permutation(300)
    ids = [str(i) for i in order]
    preds_b = correct_to_predictions(golds, correct_b)
    run_b = write_run(tmp_path / "b", [classification("t/sst", [golds[i] for i in order], [preds_b[i] for i in order], ids=ids)], model="b")
    with pytest.raises(IncomparableRunsError, match="data fingerprints differ"):
        compare_runs(run_a, run_b)  # the order is part of the data fingerprint
    item = compare_runs(run_a, run_b, settings=CompareSettings(allow_different_data=True)).get("t/sst", "accuracy")
    table = [[np.sum(correct_a & correct_b), np.sum(correct_a & ~correct_b)], [np.sum(~correct_a & correct_b), 0]]
    assert item.test == "mcnemar-exact"
    assert item.details == {"only_a_correct": 25, "only_b_correct": 0}
    assert item.p_value == pytest.approx(mcnemar(table, exact=True).pvalue)
    assert item.difference == pytest.approx(-25 / 3)
    assert item.verdict == "regressed" and item.ci[1] < 0


def test_identical_runs_show_no_change(tmp_path):
    correct = np.random.default_rng(2).random(100) < 0.8
    run_a, run_b = _pair(tmp_path, correct, correct)
    comparison = compare_runs(run_a, run_b)
    item = comparison.get("t/sst", "accuracy")
    assert (item.difference, item.p_value, item.verdict) == (0.0, 1.0, "no significant change")
    assert comparison.tasks[0].same_examples and comparison.tasks[0].notes == []


def test_direction_and_ideal_decide_improved_or_regressed(tmp_path, extra_metrics):
    """B makes fewer errors (accuracy up, error rate down: both 'improved'), and predicts
    'positive' for 80% instead of 52% of examples: further from the ideal 50, 'regressed'."""
    n = 600
    golds = ["positive"] * (n // 2) + ["negative"] * (n // 2)
    preds_a = ["positive"] * 200 + ["negative"] * 100 + ["positive"] * 112 + ["negative"] * 188  # 52% positive, 64.7% right
    preds_b = ["positive"] * 300 + ["positive"] * 180 + ["negative"] * 120  # 80% positive, 70% right
    spec = BIAS_AND_ERROR_TASK
    run_a = write_run(tmp_path / "a", [classification("t/x", golds, preds_a, spec=spec)], model="a")
    run_b = write_run(tmp_path / "b", [classification("t/x", golds, preds_b, spec=spec)], model="b")
    comparison = compare_runs(run_a, run_b)
    accuracy, error, share = (comparison.get("t/x", key) for key in ("accuracy", "error_rate", "positive_share"))
    assert accuracy.verdict == "improved" and accuracy.change > 0
    assert error.verdict == "improved" and error.change < 0 and error.test == "paired-permutation"
    assert share.compared_on == "distance from ideal 50"
    assert share.value_a == pytest.approx(52.0) and share.value_b == pytest.approx(80.0)
    assert share.change == pytest.approx(30.0 - 2.0)  # distance 2 -> 30
    assert share.verdict == "regressed" and share.test == "paired-bootstrap"
    assert any("cannot test a distance" in note for note in share.notes)  # declared mcnemar, fell back


def test_a_symmetric_move_around_the_ideal_is_no_change(tmp_path, extra_metrics):
    n = 400
    golds = ["positive"] * n
    preds_a = ["positive"] * 240 + ["negative"] * 160  # 60% positive: distance 10
    preds_b = ["positive"] * 160 + ["negative"] * 240  # 40% positive: distance 10
    spec = BIAS_AND_ERROR_TASK
    run_a = write_run(tmp_path / "a", [classification("t/x", golds, preds_a, spec=spec)], model="a")
    run_b = write_run(tmp_path / "b", [classification("t/x", golds, preds_b, spec=spec)], model="b")
    share = compare_runs(run_a, run_b).get("t/x", "positive_share")
    assert share.difference == pytest.approx(-20.0) and share.change == pytest.approx(0.0)
    assert share.verdict == "no significant change"


def test_pvalues_are_adjusted_across_all_tasks_and_metrics(tmp_path):
    rng = np.random.default_rng(4)
    tasks_a, tasks_b = [], []
    for index, drop in enumerate([0, 4, 8, 12, 30]):
        golds = _golds(400, seed=index)
        correct_a = rng.random(400) < 0.75
        correct_b = correct_a.copy()
        correct_b[np.flatnonzero(correct_a)[:drop]] = False
        correct_b[np.flatnonzero(~correct_a)[: index]] = True
        tasks_a.append(classification(f"t/{index}", golds, correct_to_predictions(golds, correct_a)))
        tasks_b.append(classification(f"t/{index}", golds, correct_to_predictions(golds, correct_b)))
    run_a, run_b = write_run(tmp_path / "a", tasks_a), write_run(tmp_path / "b", tasks_b)
    for method, reference in (("holm", "holm"), ("bh", "fdr_bh")):
        comparison = compare_runs(run_a, run_b, settings=CompareSettings(correction=method))
        raw = [item.p_value for item in comparison.metrics]
        assert [item.p_adjusted for item in comparison.metrics] == pytest.approx(multipletests(raw, method=reference)[1])
    holm = compare_runs(run_a, run_b).get("t/4", "accuracy")
    assert holm.verdict == "regressed" and holm.p_adjusted > holm.p_value


def test_runs_on_different_examples_are_refused_with_reasons(tmp_path):
    golds = _golds(120)
    correct = np.ones(120, dtype=bool)
    run_a = write_run(tmp_path / "a", [classification("t/sst", golds, correct_to_predictions(golds, correct))])
    shorter = write_run(tmp_path / "b", [classification("t/sst", golds[:100], correct_to_predictions(golds[:100], correct[:100]))])
    with pytest.raises(IncomparableRunsError) as refused:
        compare_runs(run_a, shorter)
    message = str(refused.value)
    assert "t/sst" in message and "120 vs 100 examples" in message and "20 example ids only in A" in message
    assert "--allow-different-data" in message
    comparison = compare_runs(run_a, shorter, settings=CompareSettings(allow_different_data=True))
    task = comparison.tasks[0]
    assert (task.same_examples, task.n_compared) == (False, 100)
    assert "compared on the 100 shared example ids" in task.notes[0]
    assert comparison.get("t/sst", "accuracy").n == 100


def test_samples_without_statistics_are_a_record_error(tmp_path):
    correct = np.ones(10, dtype=bool)
    run_a, run_b = _pair(tmp_path, correct, correct)
    # samples are content-addressed: write the stripped rows as a new file the record names
    stripped = [{k: v for k, v in row.items() if k != "stats"} for row in read_samples(run_b, "t/sst")]
    record = json.loads((run_b / "results.json").read_text())
    record["tasks"]["t/sst"]["samples"] = write_samples(run_b, "t/sst", stripped)
    (run_b / "results.json").write_text(json.dumps(record))
    with pytest.raises(RecordError, match="lack usable per-example statistics for 'accuracy'"):
        compare_runs(run_a, run_b)


def test_only_shared_tasks_are_compared_and_unknown_settings_refused(tmp_path):
    golds = _golds(50)
    both = classification("t/both", golds, golds)
    run_a = write_run(tmp_path / "a", [both, classification("t/only_a", golds, golds)])
    run_b = write_run(tmp_path / "b", [both])
    comparison = compare_runs(run_a, run_b)
    assert [item.task for item in comparison.metrics] == ["t/both"]
    with pytest.raises(RecordError, match="task 't/only_a' is not in run"):
        compare_runs(run_a, run_b, tasks=["t/only_a"])
    with pytest.raises(UsageError, match="unknown correction 'bonferroni'"):
        CompareSettings(correction="bonferroni")


def test_cli_prints_a_table_and_writes_json(tmp_path, capsys):
    rng = np.random.default_rng(5)
    correct_a = rng.random(200) < 0.6
    run_a, run_b = _pair(tmp_path, correct_a, np.ones(200, dtype=bool))
    output = tmp_path / "comparison.json"
    assert main(["compare", str(run_a), str(run_b), "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "t/sst" in printed and "mcnemar-exact" in printed and "improved" in printed
    data = json.loads(output.read_text())
    assert data["schema"] == "evalharness.comparison.compare/1" and data["summary"]["improved"] == 1
    row = data["comparisons"][0]
    assert row["value_b"] == 100.0 and row["verdict"] == "improved" and row["p_value"] < 1e-10
    assert main(["compare", str(run_a), str(run_b), "--json", "--correction", "bh", "--test", "bootstrap"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["settings"]["correction"] == "bh" and printed["comparisons"][0]["test"] == "paired-bootstrap"


def test_cli_refusal_exits_2_with_the_reason(tmp_path, cli):
    golds = _golds(30)
    run_a = write_run(tmp_path / "a", [classification("t/sst", golds, golds)])
    run_b = write_run(tmp_path / "b", [classification("t/sst", golds[:20], golds[:20])])
    result = cli("compare", str(run_a), str(run_b))
    assert result.returncode == 2
    assert "did not evaluate the same examples" in result.stderr and "Traceback" not in result.stderr
    allowed = cli("compare", str(run_a), str(run_b), "--allow-different-data")
    assert allowed.returncode == 0 and "compared on the 20 shared example ids" in allowed.stdout
