"""Issue 14, class 5: gates that pass on nothing.

A gate exits 0 only when every rule was evaluated and passed; a rule that cannot be evaluated
exits 2 with the reason unless it is ``optional: true`` (then "skipped" in the terminal, JUnit
and Markdown). Policies are validated against the task registry and the runs before anything
is evaluated: unknown names (with did-you-mean), non-finite thresholds, rules that can never
fire and contradictory rules all exit 2 with ``file:line: rules[i].field``, never 1.
Runs are hand-built records (``record_factory``) or scored predictions (``run_factory``).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from record_factory import metric, task, write_run
from run_factory import classification, correct_to_predictions
from run_factory import write_run as write_scored_run

from evalharness.cli import main
from evalharness.comparison.gate import evaluate_gate, load_policy
from evalharness.comparison.gate_policy import validate_policy
from evalharness.spec.catalog import TaskCatalog

REPO = Path(__file__).resolve().parents[2]


def _tasks(accuracy: float | None = 80.0, stereotype: float | None = 55.0) -> dict:
    return {
        "glue/sst2": task({"accuracy": metric(accuracy)}),
        "bias/crows_pairs": task({"stereotype_score": metric(stereotype, name="stereotype_score", ideal=50.0, higher=False)}),
    }


def _changed_samples() -> dict[str, list[dict]]:
    """Per-example rows unlike the default ones, so paired tests see real differences."""
    rows = [
        {"id": str(i), "input": f"x{i}", "prediction": "p", "gold": "p", "scores": {}, "stats": {key: [float(i % 3 != 0), 1.0]}}
        for i in range(100)
        for key in ["accuracy"]
    ]
    crows = [{**row, "stats": {"stereotype_score": row["stats"]["accuracy"]}} for row in rows]
    return {"glue/sst2": rows, "bias/crows_pairs": crows}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gate_runs")
    return {
        "candidate": write_run(root / "candidate", model="candidate", tasks=_tasks()),
        "baseline": write_run(root / "baseline", model="baseline", tasks=_tasks()),
        "null": write_run(root / "null", model="null", tasks=_tasks(accuracy=None)),
        "only_sst2": write_run(root / "only_sst2", model="only", tasks={"glue/sst2": task({"accuracy": metric(80.0)})}),
        "changed": write_run(root / "changed", model="changed", tasks=_tasks(accuracy=70.0, stereotype=60.0), samples=_changed_samples()),
    }


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gates.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _gate(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["gate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


# -- rules that cannot be evaluated ---------------------------------------------------------


def test_baseline_rule_without_baseline_exits_2_naming_the_rule(tmp_path, runs, cli):
    policy = _policy(tmp_path, "rules:\n  - task: glue/sst2\n    metric: accuracy\n    min: 50\n    max_drop: 1\n")
    junit, markdown, output = tmp_path / "gate.xml", tmp_path / "gate.md", tmp_path / "gate.json"
    result = cli("gate", "--candidate", str(runs["candidate"]), "--policy", str(policy),
                 "--junit", str(junit), "--markdown", str(markdown), "--output", str(output))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{policy}:2: rules[0]: glue/sst2 accuracy: max_drop: no baseline run given (--baseline)" in result.stderr
    assert "gate NOT EVALUATED" in result.stdout and "gate passed" not in result.stdout
    suite = ET.parse(junit).getroot()
    assert suite.get("errors") == "1" and suite.get("failures") == "0"
    assert suite.find("testsuite/testcase/error").get("message") == "max_drop: no baseline run given (--baseline)"
    assert markdown.read_text().startswith("## evalharness gate ⛔ not evaluated")
    written = json.loads(output.read_text())
    assert written["exit_code"] == 2 and written["passed"] is False and written["summary"]["not evaluated"] == 1


def test_optional_rule_that_cannot_be_evaluated_is_skipped_everywhere(tmp_path, runs, capsys):
    policy = _policy(
        tmp_path,
        "rules:\n"
        "  - {task: glue/sst2, metric: accuracy, min: 50}\n"
        "  - {task: glue/sst2, metric: accuracy, max_drop: 1, optional: true}\n",
    )
    junit, markdown = tmp_path / "gate.xml", tmp_path / "gate.md"
    code, out, _ = _gate(capsys, "--candidate", runs["candidate"], "--policy", policy, "--junit", junit, "--markdown", markdown)
    assert code == 0
    assert "skipped" in out and "gate passed" in out
    suite = ET.parse(junit).getroot()
    assert suite.get("skipped") == "1" and suite.get("errors") == "0"
    assert "| ⏭️ skipped | glue/sst2 accuracy | drop vs baseline ≤ 1 |" in markdown.read_text()


def test_rule_on_a_registered_task_absent_from_the_candidate_exits_2(tmp_path, runs, capsys):
    policy = _policy(tmp_path, "rules:\n  - {task: bias/crows_pairs, metric: stereotype_score, max_distance_from_ideal: 10}\n")
    code, _, err = _gate(capsys, "--candidate", runs["only_sst2"], "--policy", policy)
    assert code == 2
    assert f"{policy}:2: rules[0]" in err and "task 'bias/crows_pairs' is not in the candidate run" in err


def test_rule_on_a_metric_the_candidate_did_not_compute_exits_2(tmp_path, capsys):
    # glue/mrpc's spec lists accuracy and f1; this candidate only has accuracy.
    run = write_run(tmp_path / "mrpc", model="m", tasks={"glue/mrpc": task({"accuracy": metric(80.0)})})
    policy = _policy(tmp_path, "rules:\n  - {task: glue/mrpc, metric: f1, min: 50}\n")
    code, _, err = _gate(capsys, "--candidate", run, "--policy", policy)
    assert code == 2 and "metric 'f1' is not in the candidate's glue/mrpc" in err


def test_rule_on_a_task_absent_from_the_baseline_exits_2(tmp_path, runs, capsys):
    policy = _policy(tmp_path, "rules:\n  - {task: bias/crows_pairs, metric: stereotype_score, max_distance_increase: 2}\n")
    code, _, err = _gate(capsys, "--candidate", runs["candidate"], "--baseline", runs["only_sst2"], "--policy", policy)
    assert code == 2 and "the baseline run has no bias/crows_pairs stereotype_score" in err


def test_null_candidate_value_exits_2_instead_of_passing(tmp_path, runs, capsys):
    policy = _policy(tmp_path, "rules:\n  - {task: glue/sst2, metric: accuracy, max: 99}\n")
    code, _, err = _gate(capsys, "--candidate", runs["null"], "--policy", policy)
    assert code == 2 and "glue/sst2 accuracy is undefined (null) in the candidate run" in err


def test_null_baseline_value_exits_2_instead_of_passing(tmp_path, runs, capsys):
    policy = _policy(tmp_path, "rules:\n  - {task: glue/sst2, metric: accuracy, max_drop: 1}\n")
    code, _, err = _gate(capsys, "--candidate", runs["candidate"], "--baseline", runs["null"], "--policy", policy)
    assert code == 2 and "glue/sst2 accuracy is undefined (null) in the baseline run" in err


def test_gate_whose_every_rule_was_skipped_checked_nothing_and_exits_2(tmp_path, runs, capsys):
    policy = _policy(tmp_path, "rules:\n  - {task: glue/sst2, metric: accuracy, max_drop: 1, optional: true}\n")
    code, out, err = _gate(capsys, "--candidate", runs["candidate"], "--policy", policy)
    assert code == 2 and "every rule was skipped, so the gate checked nothing" in err
    assert "gate passed" not in out


def test_metric_not_comparable_with_the_baseline_is_not_evaluated(tmp_path, capsys):
    a = write_run(tmp_path / "a", model="a", tasks={"glue/sst2": task({"accuracy": metric(80.0)})})
    other = metric(80.0).model_copy(update={"settings": {"zero_division": 0}})
    b = write_run(tmp_path / "b", model="b", tasks={"glue/sst2": task({"accuracy": other})})
    policy = _policy(tmp_path, "rules:\n  - {task: glue/sst2, metric: accuracy, max_drop: 1}\n")
    code, _, err = _gate(capsys, "--candidate", a, "--baseline", b, "--policy", policy)
    assert code == 2 and "cannot compare glue/sst2 accuracy with the baseline: different metric or settings" in err


# -- validation before evaluation -------------------------------------------------------------


def test_unknown_task_is_refused_with_did_you_mean(tmp_path, runs, cli):
    policy = _policy(tmp_path, "rules:\n  - task: glue/sst3\n    metric: accuracy\n    min: 50\n")
    result = cli("gate", "--candidate", str(runs["candidate"]), "--policy", str(policy))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{policy}:2: rules[0].task: unknown task 'glue/sst3'; did you mean 'glue/sst2'?" in result.stderr


def test_unknown_metric_is_refused_with_did_you_mean(tmp_path, runs, capsys):
    policy = _policy(tmp_path, "rules:\n  - task: glue/sst2\n    metric: acc\n    min: 50\n")
    code, _, err = _gate(capsys, "--candidate", runs["candidate"], "--policy", policy)
    assert code == 2 and f"{policy}:3: rules[0].metric: task 'glue/sst2' has no metric 'acc'; did you mean 'accuracy'?" in err


def test_unknown_required_task_is_refused_with_did_you_mean(tmp_path, runs, capsys):
    policy = _policy(tmp_path, "required_tasks: [glue/mnli]\n")
    code, _, err = _gate(capsys, "--candidate", runs["candidate"], "--policy", policy)
    assert code == 2 and f"{policy}:1: required_tasks[0]: unknown task 'glue/mnli'; did you mean 'glue/mnli_matched'?" in err


def test_metric_unknown_to_the_task_spec_is_refused_even_when_the_task_did_not_run(tmp_path, runs, capsys):
    # glue/cola is registered (metric mcc) but absent from both runs.
    policy = _policy(tmp_path, "rules:\n  - {task: glue/cola, metric: accuracy, min: 10, optional: true}\n")
    code, _, err = _gate(capsys, "--candidate", runs["candidate"], "--policy", policy)
    assert code == 2 and "rules[0].metric: task 'glue/cola' has no metric 'accuracy'" in err and "(has: mcc)" in err


@pytest.mark.parametrize("field, value", [("min", ".nan"), ("max", ".inf"), ("max_drop", ".inf"), ("max_distance_from_ideal", ".nan"), ("alpha", ".nan")])
def test_non_finite_threshold_is_refused(tmp_path, runs, capsys, field, value):
    extra = "    significant: true\n    max_drop: 1\n" if field == "alpha" else ""
    metric_name = "stereotype_score" if "ideal" in field else "accuracy"
    task_name = "bias/crows_pairs" if "ideal" in field else "glue/sst2"
    policy = _policy(tmp_path, f"rules:\n  - task: {task_name}\n    metric: {metric_name}\n    {field}: {value}\n{extra}")
    code, _, err = _gate(capsys, "--candidate", runs["candidate"], "--baseline", runs["baseline"], "--policy", policy)
    assert code == 2 and f"{policy}:4: rules[0].{field}: Input should be a finite number" in err


@pytest.mark.parametrize(
    "rule, expected",
    [
        ("{task: glue/sst2, metric: accuracy, min: 0}", "rules[0].min: min 0 is at or below the lowest value accuracy can take (0): the check can never fail"),
        ("{task: glue/sst2, metric: accuracy, min: -5}", "rules[0].min: min -5 is at or below the lowest value"),
        ("{task: glue/sst2, metric: accuracy, max: 100}", "rules[0].max: max 100 is at or above the highest value accuracy can take (100)"),
        ("{task: glue/sst2, metric: accuracy, max_drop: 100}", "rules[0].max_drop: max_drop 100 is at least the whole range of accuracy"),
        ("{task: glue/sst2, metric: accuracy, max_drop_relative: 1.0}", "rules[0].max_drop_relative: max_drop_relative 1 (100%) can never be exceeded"),
        ("{task: bias/crows_pairs, metric: stereotype_score, max_distance_from_ideal: 50}", "rules[0].max_distance_from_ideal: 50 is at least the largest possible distance"),
        ("{task: bias/crows_pairs, metric: stereotype_score, max_distance_increase: 60}", "rules[0].max_distance_increase: 60 is at least the largest possible distance"),
    ],
    ids=["min-at-floor", "min-below-floor", "max-at-ceiling", "drop-whole-range", "relative-100pct", "distance", "distance-increase"],
)
def test_rule_that_can_never_fire_is_refused(tmp_path, runs, capsys, rule, expected):
    policy = _policy(tmp_path, f"rules:\n  - {rule}\n")
    code, _, err = _gate(capsys, "--candidate", runs["candidate"], "--baseline", runs["baseline"], "--policy", policy)
    assert code == 2 and f"{policy}:2: {expected}" in err


def test_bound_no_value_can_meet_is_refused(tmp_path, runs, capsys):
    policy = _policy(tmp_path, "rules:\n  - {task: glue/sst2, metric: accuracy, min: 101}\n")
    code, _, err = _gate(capsys, "--candidate", runs["candidate"], "--policy", policy)
    assert code == 2 and "rules[0].min: min 101 is above the highest value accuracy can take (100): the check can never pass" in err


def test_relative_drop_limit_is_allowed_where_the_metric_can_grow_without_bound():
    """Perplexity (lower is better, unbounded above) can rise by more than 100%: not a dead rule."""
    from evalharness.comparison.gate_policy import metric_facts

    assert metric_facts("word_perplexity", {}).largest_relative_drop == float("inf")
    assert metric_facts("accuracy", {}).largest_relative_drop == 1.0


def test_contradictory_rules_are_refused(tmp_path, runs, capsys):
    policy = _policy(
        tmp_path,
        "rules:\n"
        "  - {task: bias/crows_pairs, metric: stereotype_score, min: 70}\n"
        "  - {task: bias/crows_pairs, metric: stereotype_score, max_distance_from_ideal: 10}\n",
    )
    code, _, err = _gate(capsys, "--candidate", runs["candidate"], "--policy", policy)
    assert code == 2
    assert f"{policy}:2: rules[0]: rules on bias/crows_pairs stereotype_score contradict each other" in err
    assert "at least 70 and at most 60" in err


def test_distance_rule_on_a_metric_without_ideal_is_refused(tmp_path, runs, capsys):
    policy = _policy(tmp_path, "rules:\n  - {task: glue/sst2, metric: accuracy, max_distance_from_ideal: 5}\n")
    code, _, err = _gate(capsys, "--candidate", runs["candidate"], "--policy", policy)
    assert code == 2 and "rules[0].max_distance_from_ideal: metric 'accuracy' of glue/sst2 (accuracy) has no ideal value" in err


def test_alpha_without_significant_is_refused(tmp_path, runs, capsys):
    policy = _policy(tmp_path, "rules:\n  - {task: glue/sst2, metric: accuracy, max_drop: 1, alpha: 0.01}\n")
    code, _, err = _gate(capsys, "--candidate", runs["candidate"], "--policy", policy)
    assert code == 2 and f"{policy}:2: rules[0]: 'alpha' is the level of the paired test" in err


def test_contradicting_optional_and_required_are_refused(tmp_path, runs, capsys):
    policy = _policy(tmp_path, "rules:\n  - {task: glue/sst2, metric: accuracy, min: 5, optional: true, required: true}\n")
    code, _, err = _gate(capsys, "--candidate", runs["candidate"], "--policy", policy)
    assert code == 2 and "'required: true' contradicts 'optional: true'" in err


def test_custom_task_is_known_through_tasks_dir(tmp_path, runs, capsys):
    tasks_dir = tmp_path / "my_tasks" / "mine"
    tasks_dir.mkdir(parents=True)
    (tasks_dir / "reviews.yaml").write_text(
        "version: 1\nkind: classification\ndata: {local: {files: [x.tsv], format: tsv}}\nlabels: [negative, positive]\nmetrics: [accuracy]\n"
    )
    policy = _policy(tmp_path, "rules:\n  - {task: mine/reviews, metric: accuracy, min: 50}\n")
    code, _, err = _gate(capsys, "--candidate", runs["candidate"], "--policy", policy)
    assert code == 2 and "unknown task 'mine/reviews'" in err
    code, _, err = _gate(capsys, "--candidate", runs["candidate"], "--policy", policy, "--tasks-dir", tmp_path / "my_tasks")
    assert code == 2 and "task 'mine/reviews' is not in the candidate run" in err  # known now; simply did not run


def test_shipped_example_policy_validates_against_the_task_registry():
    loaded = load_policy(REPO / "docs" / "gates.example.yaml")
    facts = validate_policy(loaded, TaskCatalog())
    assert set(facts) == set(range(len(loaded.policy.rules)))  # every rule names a real task and metric


# -- what a passing or failing gate shows ---------------------------------------------------


def test_rule_names_with_markup_and_control_characters_neither_crash_nor_break_junit(tmp_path, runs, capsys):
    policy = _policy(tmp_path, 'rules:\n  - {task: glue/sst2, metric: accuracy, min: 50, name: "[/]\\x01 <&>"}\n')
    junit = tmp_path / "gate.xml"
    code, out, _ = _gate(capsys, "--candidate", runs["candidate"], "--policy", policy, "--junit", junit)
    assert code == 0 and "[/]" in out
    case = ET.parse(junit).getroot().find("testsuite/testcase")
    assert case.get("name").startswith("[/]\ufffd <&>")


def test_observed_improvement_within_the_limit_is_not_called_an_improvement(tmp_path):
    golds = list(np.random.default_rng(0).choice(["negative", "positive"], 60))
    base = np.arange(60) % 3 != 0
    better = base | (np.arange(60) == 0)
    runs = {
        name: write_scored_run(tmp_path / name, [classification("glue/sst2", golds, correct_to_predictions(golds, correct))], model=name)
        for name, correct in (("base", base), ("cand", better))
    }
    policy = _policy(tmp_path, "rules:\n  - {task: glue/sst2, metric: accuracy, max_drop: 1}\n")
    report = evaluate_gate(policy, runs["cand"], runs["base"])
    (check,) = report.rules[0].checks
    assert check.status == "passed" and "improved" not in check.detail and check.detail.startswith("no drop")
    assert report.exit_code == 0


# -- fuzzing: a policy with problems exits 2, never 1 -----------------------------------------

FIELDS = ["task", "metric", "name", "min", "max", "max_drop", "max_drop_relative", "max_distance_from_ideal",
          "max_distance_increase", "significant", "alpha", "optional", "required", "bogus"]
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1, max_value=110),
    st.sampled_from(["glue/sst2", "bias/crows_pairs", "glue/sst", "accuracy", "acc", "stereotype_score", "[/]", "\x00", "", "holm"]),
    st.lists(st.integers(), max_size=2),
)
_number = st.one_of(
    st.floats(min_value=1, max_value=45), st.floats(min_value=1, max_value=45), st.floats(min_value=-10, max_value=110),
    st.integers(-5, 105), st.sampled_from([float("nan"), float("inf"), 1e308, 10**30]),
)
_pairs = st.sampled_from([("glue/sst2", "accuracy"), ("glue/sst2", "accuracy"), ("bias/crows_pairs", "stereotype_score"), ("glue/cola", "mcc"), ("glue/sst", "acc")])
_checks = st.sampled_from(["min", "max", "max_drop", "max_drop_relative", "max_distance_from_ideal", "max_distance_increase"])
_plausible_rule = st.tuples(_pairs, st.dictionaries(_checks, _number, min_size=1, max_size=2)).flatmap(
    lambda pair_checks: st.fixed_dictionaries(
        {"task": st.just(pair_checks[0][0]), "metric": st.just(pair_checks[0][1]), **{k: st.just(v) for k, v in pair_checks[1].items()}},
        optional={"significant": st.booleans(), "optional": st.booleans(), "name": st.text(max_size=6)},
    )
)
_rule = st.one_of(_plausible_rule, st.dictionaries(st.sampled_from(FIELDS), _values, max_size=6))
_junk_policies = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "rules": st.one_of(st.lists(_rule, max_size=3), _values),
            "required_tasks": st.one_of(st.lists(_values, max_size=2), _values),
            "alpha": _values,
            "correction": _values,
            "version": _values,
            "bogus": _values,
        },
    ),
    _values,
)
_plausible_policies = st.fixed_dictionaries(
    {"rules": st.lists(_plausible_rule, min_size=1, max_size=3)},
    optional={"alpha": st.floats(0.001, 0.5), "correction": st.sampled_from(["holm", "bh", "none"]), "required_tasks": st.lists(_pairs.map(lambda pair: pair[0]), max_size=2)},
)


def _fuzz_gate(runs: dict[str, Path], folder: Path, document, with_baseline: bool) -> int:
    """Run the gate on ``document``; exit 0/1 must come with a real evaluation that agrees."""
    policy = folder / "gates.yaml"
    policy.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    output = folder / "gate.json"
    args = ["gate", "--candidate", str(runs["candidate"]), "--policy", str(policy), "--output", str(output), "--json",
            "--n-resamples", "50", "--n-permutations", "50"]
    if with_baseline:
        args += ["--baseline", str(runs["changed"])]
    code = main(args)  # an uncaught exception here is a crash (exit 1 with a traceback)
    assert code in (0, 1, 2)
    if code in (0, 1):
        report = json.loads(output.read_text())
        statuses = {check["status"] for rule in report["rules"] for check in rule["checks"]}
        assert "not evaluated" not in statuses and statuses & {"passed", "failed"}
        assert ("failed" in statuses) == (code == 1)
    return code


_FUZZ = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@settings(_FUZZ, max_examples=60)
@given(document=_junk_policies, with_baseline=st.booleans())
def test_malformed_policy_never_crashes_the_gate(runs, tmp_path_factory, document, with_baseline):
    _fuzz_gate(runs, tmp_path_factory.mktemp("fuzz"), document, with_baseline)


@settings(_FUZZ, max_examples=80)
@given(document=_plausible_policies, with_baseline=st.booleans())
def test_plausible_policy_exits_0_or_1_only_after_a_real_evaluation(runs, tmp_path_factory, document, with_baseline):
    _fuzz_gate(runs, tmp_path_factory.mktemp("fuzz"), document, with_baseline)
