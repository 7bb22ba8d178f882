"""Issue 19: decision-grade gates, attacked.

A statistical rule must never pass on an interval it cannot stand behind (undefined, zero
width, examples that are not independent), policies that could never fire or that mix tests
are refused with file:line (exit 2), clusters are honoured everywhere a paired test is made
(gate and compare) and refused when two runs disagree, and stored baselines are verified.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from run_factory import CLASSIFICATION_TASK, TaskRun, classification, correct_to_predictions, write_run

from evalharness.cli import main
from evalharness.comparison.compare import compare_runs
from evalharness.comparison.gate import evaluate_gate
from evalharness.errors import DataError, RecordError, SpecError
from evalharness.records.record import load_record, read_samples, write_record, write_samples
from evalharness.types import Example

CLUSTERED = CLASSIFICATION_TASK.replace(
    "data: {local: {files: [x.tsv], format: tsv}}", "data: {local: {files: [x.tsv], format: tsv, columns: {source: src}}}"
) + "cluster_field: source\n"


def _golds(n: int) -> list[str]:
    return list(np.random.default_rng(0).choice(["negative", "positive"], n))


def _correct(n: int, accuracy: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(n) < accuracy


def _run(folder: Path, name: str, correct: np.ndarray, *, clusters: list | None = None, task: str = "glue/sst2") -> Path:
    golds = _golds(correct.size)
    predictions = correct_to_predictions(golds, correct)
    if clusters is None:
        return write_run(folder / name, [classification(task, golds, predictions)], model=name)
    examples = [Example(id=str(i), fields={"text": f"x{i}", "label": g, "source": c}) for i, (g, c) in enumerate(zip(golds, clusters))]
    return write_run(folder / name, [TaskRun("mine/clustered", CLUSTERED, examples, predictions)], model=name)


def _policy(folder: Path, text: str) -> Path:
    path = folder / "gates.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("decisions")
    base = _correct(300, 0.8, 1)
    return {"b": _run(root, "b", base), "c": _run(root, "c", base ^ (np.random.default_rng(3).random(300) < 0.1))}


def _gate(capsys, *args) -> tuple[int, str, str]:
    code = main(["gate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


# -- policies that could pass without checking anything -------------------------------------------


@pytest.mark.parametrize(
    "rule, expected",
    [
        ("{task: glue/sst2, metric: accuracy, max_drop: 1, significant: true, noninferior: {margin: 1}}",
         ":2: rules[0]: 'noninferior' is a test of its own (at 'alpha'); 'significant: true' cannot be combined with it"),
        ("{task: glue/sst2, metric: accuracy, noninferior: {margin: 100}}",
         ":2: rules[0].noninferior: noninferior margin 100 is at least the largest possible change of accuracy (100): the check can never fail"),
        ("{task: glue/sst2, metric: accuracy, within: {margin: 150}}",
         ":2: rules[0].within: within margin 150 is at least the whole range of accuracy ([0, 100]): the check can never fail"),
        ("{task: glue/sst2, metric: accuracy, noninferior: {margin: 1.0, relative: true}}",
         ":2: rules[0].noninferior: a relative margin is a fraction of the baseline value (0.02 = 2%), got 1"),
        ("{task: glue/sst2, metric: accuracy, noninferior: {margin: .nan}}", ":2: rules[0].noninferior.margin: Input should be a finite number"),
        ("{task: glue/sst2, metric: accuracy, noninferior: {margin: -1}}", ":2: rules[0].noninferior.margin: Input should be greater than or equal to 0"),
        ("{task: glue/sst2, metric: accuracy, within: {margin: 0}}", ":2: rules[0].within.margin: Input should be greater than 0"),
        ("{task: glue/sst2, metric: accuracy, noninferior: {margin: 1}, alpha: 0.5}",
         ":2: rules[0]: alpha 0.5 is the one-sided level of 'noninferior'/'within'"),
        ("{task: glue/sst2, metric: accuracy, noninferior: {margin: 1, relative: \"true\"}}", ":2: rules[0].noninferior.relative: Input should be a valid boolean"),
        ("{task: glue/sst2, metric: accuracy, noninferior: {margin: 1, bogus: 2}}", ":2: rules[0].noninferior.bogus: unknown key"),
    ],
    ids=["with-significant", "margin-whole-range", "within-whole-range", "relative-100pct", "nan", "negative", "within-zero",
         "alpha-half", "relative-not-bool", "unknown-key"],
)
def test_statistical_rule_that_cannot_fire_or_is_malformed_is_refused_with_file_and_line(tmp_path, pair, capsys, rule, expected):
    policy = _policy(tmp_path, f"rules:\n  - {rule}\n")
    code, _, err = _gate(capsys, "--candidate", pair["c"], "--baseline", pair["b"], "--policy", policy)
    assert code == 2 and f"{policy}{expected}" in err


def test_relative_margin_on_a_metric_with_an_ideal_value_is_refused(tmp_path, capsys):
    policy = _policy(tmp_path, "rules:\n  - {task: bias/crows_pairs, metric: stereotype_score, noninferior: {margin: 0.1, relative: true}}\n")
    from record_factory import metric, task, write_run as write_record_run

    run = write_record_run(tmp_path / "r", model="r", tasks={"bias/crows_pairs": task({"stereotype_score": metric(55.0, name="stereotype_score", ideal=50.0, higher=False)})})
    code, _, err = _gate(capsys, "--candidate", run, "--baseline", run, "--policy", policy)
    assert code == 2 and "rules[0].noninferior: metric 'stereotype_score' of bias/crows_pairs has an ideal value (50)" in err


def test_power_at_or_below_alpha_is_refused(tmp_path, pair, capsys):
    policy = _policy(tmp_path, "power: 0.04\nrules:\n  - {task: glue/sst2, metric: accuracy, noninferior: {margin: 1}}\n")
    code, _, err = _gate(capsys, "--candidate", pair["c"], "--policy", policy)
    assert code == 2 and "power 0.04 must be above every test's alpha" in err


def test_relative_margin_on_a_zero_baseline_names_the_rule(tmp_path, capsys):
    zero = _run(tmp_path, "zero", np.zeros(50, dtype=bool))
    policy = _policy(tmp_path, "rules:\n  - {task: glue/sst2, metric: accuracy, noninferior: {margin: 0.1, relative: true}}\n")
    code, _, err = _gate(capsys, "--candidate", zero, "--baseline", zero, "--policy", policy)
    assert code == 2 and f"{policy}:2: rules[0]: glue/sst2 accuracy: noninferior: a relative margin of 0.1 needs a finite, non-zero baseline value" in err


def test_noninferior_without_a_baseline_is_not_evaluated_unless_optional(tmp_path, pair, capsys):
    policy = _policy(tmp_path, "rules:\n  - {task: glue/sst2, metric: accuracy, noninferior: {margin: 2}}\n")
    code, out, err = _gate(capsys, "--candidate", pair["c"], "--policy", policy)
    assert code == 2 and "noninferior: no baseline run given (--baseline)" in err and "gate passed" not in out


# -- intervals a rule must not stand on ---------------------------------------------------------


def test_single_cluster_leaves_the_rule_not_evaluated_never_passed(tmp_path, capsys):
    base = _correct(200, 0.8, 1)
    cand = base ^ (np.random.default_rng(4).random(200) < 0.05)
    b = _run(tmp_path, "b", base, clusters=["one"] * 200)
    c = _run(tmp_path, "c", cand, clusters=["one"] * 200)
    policy = _policy(tmp_path, "rules:\n  - {task: mine/clustered, metric: accuracy, noninferior: {margin: 30}}\n")
    code, out, err = _gate(capsys, "--candidate", c, "--baseline", b, "--policy", policy, "--tasks-dir", b / "specs")
    assert code == 2 and "gate passed" not in out
    assert "cannot decide: all 200 examples are in one cluster" in err


def test_identical_runs_get_the_betting_interval_not_a_zero_width_one(tmp_path, pair):
    policy = _policy(tmp_path, "rules:\n  - {task: glue/sst2, metric: accuracy, noninferior: {margin: 20}}\n")
    (check,) = evaluate_gate(policy, pair["b"], pair["b"]).rules[0].checks
    assert check.interval["method"] == "paired-betting-cs" and check.interval["low"] < 0 < check.interval["high"]
    assert check.status == "passed" and check.mde["value"] is None and "do not vary" in check.mde["reason"]
    assert check.mde_warning.startswith("this gate cannot tell which drop it can see with 300 examples")


def test_clustered_runs_that_disagree_on_an_examples_cluster_are_refused(tmp_path, capsys):
    base = _correct(100, 0.8, 1)
    clusters = [f"p{i // 4}" for i in range(100)]
    b = _run(tmp_path, "b", base, clusters=clusters)
    c = _run(tmp_path, "c", base, clusters=clusters[:-1] + ["elsewhere"])
    policy = _policy(tmp_path, "rules:\n  - {task: mine/clustered, metric: accuracy, noninferior: {margin: 5}}\n")
    code, _, err = _gate(capsys, "--candidate", c, "--baseline", b, "--policy", policy, "--tasks-dir", b / "specs", "--allow-different-data")
    assert code == 2 and "example '99' is in cluster" in err and "cannot be compared with clustered intervals" in err


def test_samples_row_without_its_cluster_is_refused(tmp_path, capsys):
    clusters = [f"p{i // 4}" for i in range(80)]
    b = _run(tmp_path, "b", _correct(80, 0.8, 1), clusters=clusters)
    rows = read_samples(b, "mine/clustered")
    rows[5].pop("cluster")
    record = load_record(b)
    entry = record.tasks["mine/clustered"].model_copy(update={"samples": write_samples(b, "mine/clustered", rows)})
    write_record(b, record.model_copy(update={"tasks": {"mine/clustered": entry}}))
    policy = _policy(tmp_path, "rules:\n  - {task: mine/clustered, metric: accuracy, noninferior: {margin: 5}}\n")
    code, _, err = _gate(capsys, "--candidate", b, "--baseline", b, "--policy", policy, "--tasks-dir", b / "specs")
    assert code == 2 and "declares cluster_field 'source' but example '5' has no cluster in its samples row" in err


def test_example_without_a_cluster_value_is_refused_when_scored(tmp_path):
    with pytest.raises(DataError, match="example '3' has no value for cluster_field 'source'"):
        _run(tmp_path, "b", _correct(10, 0.8, 1), clusters=["a", "a", "b", "", "c", "c", "d", "d", "e", "e"])


def test_cluster_field_that_names_no_field_is_refused(tmp_path):
    from evalharness.spec.loader import load_task

    path = tmp_path / "t.yaml"
    path.write_text(CLASSIFICATION_TASK + "cluster_field: paragraph\n")
    with pytest.raises(SpecError, match="cluster_field 'paragraph': 'paragraph' is not a field of a 'classification' example"):
        load_task(path, "t")


def test_compare_tests_clustered_tasks_with_the_paired_cluster_bootstrap(tmp_path):
    clusters = [f"p{i // 5}" for i in range(200)]
    base = _correct(200, 0.7, 1)
    b = _run(tmp_path, "b", base, clusters=clusters)
    c = _run(tmp_path, "c", base ^ (np.random.default_rng(9).random(200) < 0.1), clusters=clusters)
    (item,) = compare_runs(b, c).metrics
    assert item.test == "paired-cluster-bootstrap" and "clusters:40" in item.method
    assert any("tested with the paired cluster bootstrap instead of mcnemar" in note for note in item.notes)
    assert item.ci[0] < item.change < item.ci[1]


def test_spec_hash_of_tasks_without_cluster_field_is_unchanged():
    """Adding the optional field must not make old runs of every task incomparable."""
    from evalharness.spec.catalog import TaskCatalog

    sst2 = TaskCatalog().load("glue/sst2")
    assert sst2.spec.cluster_field is None
    assert "cluster_field" not in json.dumps(sst2.spec.model_dump(mode="json", exclude_none=True))
    from evalharness.spec.loader import spec_hash

    dumped = sst2.spec.model_dump(mode="json")
    dumped.pop("cluster_field")
    import hashlib

    canonical = json.dumps(dumped, sort_keys=True, ensure_ascii=False)
    assert spec_hash(sst2.spec) == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


# -- which interval a metric gets ---------------------------------------------------------------


def test_every_metric_declaring_mean_of_examples_is_the_mean_of_its_example_scores():
    from evalharness.metrics.registry import METRICS, build_metric

    rng = np.random.default_rng(0)
    checked = 0
    for name in METRICS:
        try:
            metric = build_metric(name)
        except Exception:  # metrics that need settings (a positive label...) are not means
            continue
        if not getattr(metric, "mean_of_examples", False):
            continue
        stats = np.column_stack([rng.random(50) < 0.6, np.ones(50)]).astype(float)
        for rows in (stats, stats[:7], stats[rng.integers(0, 50, 50)]):
            assert metric.aggregate(rows) == pytest.approx(metric.example_scores(rows).mean(), abs=1e-9), name
        checked += 1
    assert checked >= 3  # accuracy, squad_exact, squad_f1


def test_corpus_metric_gets_the_seeded_paired_bootstrap_not_a_t_interval(tmp_path):
    spec = CLASSIFICATION_TASK.replace("metrics: [accuracy]", "metrics: [{name: f1, settings: {positive_label: positive}}]")
    golds = _golds(300)
    base = _correct(300, 0.8, 1)
    runs = [write_run(tmp_path / n, [classification("mine/f1", golds, correct_to_predictions(golds, c), spec=spec)], model=n)
            for n, c in (("b", base), ("c", base ^ (np.random.default_rng(2).random(300) < 0.05)))]
    policy = _policy(tmp_path, "rules:\n  - {task: mine/f1, metric: f1, noninferior: {margin: 5}}\n")
    (check,) = evaluate_gate(policy, runs[1], runs[0], tasks_dirs=[runs[0] / "specs"]).rules[0].checks
    assert check.interval["method"] == "paired-bootstrap-percentile-B1000|seed:12345"
    again = evaluate_gate(policy, runs[1], runs[0], tasks_dirs=[runs[0] / "specs"]).rules[0].checks[0]
    assert again.interval == check.interval  # seeded: the same verdict on a rerun


# -- outputs ------------------------------------------------------------------------------------


def test_every_output_shows_interval_margin_verdict_and_mde(tmp_path, pair):
    from evalharness.comparison.gate_report import to_dict, to_junit, to_markdown

    policy = _policy(tmp_path, "rules:\n  - {task: glue/sst2, metric: accuracy, noninferior: {margin: 3}}\n")
    report = evaluate_gate(policy, pair["c"], pair["b"])
    (check,) = report.rules[0].checks
    interval = f"[90% CI {check.interval['low']:.3g}" if abs(check.interval["low"]) < 1 else f"[90% CI {check.interval['low']:.2f}"
    for text in (to_markdown(report), to_junit(report)):
        assert interval in text and check.verdict in text and "MDE " in text
    row = to_dict(report)["rules"][0]["checks"][0]
    assert {"interval", "margin", "verdict", "p_value", "mde", "mde_warning"} <= set(row)
    assert row["mde"]["power"] == 0.8 and row["mde"]["method"].startswith("mde-t(df=299)-one-sided")


# -- stores ----------------------------------------------------------------------------------------


def test_provenance_listing_a_file_outside_the_run_is_refused(tmp_path, pair):
    from evalharness.records.baselines import bless, resolve_run

    store = tmp_path / "store"
    bless(pair["b"], name="v1", store=str(store))
    provenance = json.loads((store / "v1" / "provenance.json").read_text())
    (store / "evil").write_text("x")
    import hashlib

    provenance["files"]["../evil"] = hashlib.sha256(b"x").hexdigest()
    (store / "v1" / "provenance.json").write_text(json.dumps(provenance))
    with pytest.raises(RecordError, match="would be written outside the run directory"):
        resolve_run(f"v1@{store}", workdir=tmp_path / "w")


# -- fuzzing: statistical rules with odd settings exit 0/1 only after a real evaluation ---------------

_margin = st.one_of(st.floats(min_value=-5, max_value=120), st.sampled_from([0, 0.5, 1e-9, float("nan"), float("inf"), 99.999]))
_rule = st.fixed_dictionaries(
    {"task": st.just("glue/sst2"), "metric": st.just("accuracy")},
    optional={
        "noninferior": st.fixed_dictionaries({"margin": _margin}, optional={"relative": st.booleans()}),
        "within": st.fixed_dictionaries({"margin": _margin}, optional={"relative": st.booleans()}),
        "alpha": st.floats(min_value=1e-6, max_value=0.9),
        "significant": st.booleans(),
        "max_drop": st.floats(min_value=0, max_value=50),
        "optional": st.booleans(),
    },
)


@settings(deadline=None, database=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rules=st.lists(_rule, min_size=1, max_size=3), power=st.one_of(st.none(), st.floats(min_value=0.01, max_value=0.99)),
       with_baseline=st.booleans())
def test_fuzzed_statistical_policies_never_crash_and_never_pass_unchecked(pair, tmp_path_factory, rules, power, with_baseline):
    folder = tmp_path_factory.mktemp("fuzz")
    document = {"rules": rules, **({"power": power} if power is not None else {})}
    policy = folder / "gates.yaml"
    policy.write_text(yaml.safe_dump(document))
    output = folder / "gate.json"
    args = ["gate", "--candidate", str(pair["c"]), "--policy", str(policy), "--output", str(output), "--json"]
    code = main(args + (["--baseline", str(pair["b"])] if with_baseline else []))
    assert code in (0, 1, 2)
    if code in (0, 1):
        report = json.loads(output.read_text())
        statuses = {check["status"] for rule in report["rules"] for check in rule["checks"]}
        assert "not evaluated" not in statuses and statuses & {"passed", "failed"}
        for rule in report["rules"]:
            for check in rule["checks"]:
                if check["check"] in ("noninferior", "within") and check["status"] == "passed":
                    assert check["interval"]["low"] is not None and check["interval"]["low"] > -check["margin"]
