"""Issue 19: decision-grade gates. ``noninferior`` and ``within`` rules, the minimum
detectable effect of every rule with a test, and clustered examples.

The issue's check: two runs built so that the drop is not significant but the interval
crosses the margin; the old ``significant: true`` rule passes, the non-inferiority rule
fails (exit 1) with the interval shown. Intervals and tests agree with scipy/statsmodels on
the same per-example numbers (paired t, TOST, CR1 cluster-robust on a regression, the
power of a t test) to 1e-6.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm
from run_factory import CLASSIFICATION_TASK, classification, correct_to_predictions, write_run
from scipy import stats as scipy_stats
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

from evalharness.cli import main
from evalharness.comparison.gate import evaluate_gate
from evalharness.metrics.registry import METRICS
from evalharness.types import Example

N = 500
CLUSTERED_TASK = CLASSIFICATION_TASK.replace(
    "data: {local: {files: [x.tsv], format: tsv}}", "data: {local: {files: [x.tsv], format: tsv, columns: {source: src}}}"
) + "cluster_field: source\n"


def _golds(n: int = N) -> list[str]:
    return list(np.random.default_rng(0).choice(["negative", "positive"], n))


def _baseline_correct(n: int = N, accuracy: float = 0.8) -> np.ndarray:
    correct = np.zeros(n, dtype=bool)
    correct[np.random.default_rng(1).permutation(n)[: round(n * accuracy)]] = True
    return correct


def _changed(base: np.ndarray, lost: int, gained: int) -> np.ndarray:
    out = base.copy()
    out[np.flatnonzero(base)[:lost]] = False
    out[np.flatnonzero(~base)[:gained]] = True
    return out


def _run(folder: Path, name: str, correct: np.ndarray, *, clusters: list[str] | None = None) -> Path:
    golds = _golds(correct.size)
    predictions = correct_to_predictions(golds, correct)
    if clusters is None:
        return write_run(folder / name, [classification("glue/sst2", golds, predictions)], model=name)
    examples = [Example(id=str(i), fields={"text": f"example {i}", "label": g, "source": c}) for i, (g, c) in enumerate(zip(golds, clusters))]
    from run_factory import TaskRun

    return write_run(folder / name, [TaskRun("mine/clustered", CLUSTERED_TASK, examples, predictions)], model=name)


def _policy(folder: Path, text: str) -> Path:
    path = folder / "gates.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _differences(candidate: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    return 100.0 * (candidate.astype(float) - baseline.astype(float))


# -- the check --------------------------------------------------------------------------


def test_drop_not_significant_but_crossing_the_margin_passes_significant_rule_and_fails_noninferiority(tmp_path, cli):
    base = _baseline_correct()
    candidate = _changed(base, lost=10, gained=4)  # a 1.2-point drop; McNemar p = 0.18
    runs = {"b": _run(tmp_path, "b", base), "c": _run(tmp_path, "c", candidate)}
    policy = _policy(
        tmp_path,
        "rules:\n"
        "  - {name: old, task: glue/sst2, metric: accuracy, max_drop: 1, significant: true}\n"
        "  - {name: new, task: glue/sst2, metric: accuracy, noninferior: {margin: 1}}\n",
    )
    junit, markdown, output = tmp_path / "g.xml", tmp_path / "g.md", tmp_path / "g.json"
    result = cli("gate", "--candidate", str(runs["c"]), "--baseline", str(runs["b"]), "--policy", str(policy),
                 "--junit", str(junit), "--markdown", str(markdown), "--output", str(output))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    # The interval is shown wherever the verdict is: terminal, JSON, JUnit and Markdown.
    low, high = scipy_stats.ttest_rel(100.0 * candidate, 100.0 * base).confidence_interval(0.90)
    shown = f"90% CI of the difference [{low:.4g}, {high:.4g}]"
    assert "not significant" in result.stdout and "inferiority not ruled out" in result.stdout
    report = json.loads(output.read_text())
    old, new = report["rules"]
    assert old["status"] == "passed" and new["status"] == "failed"
    check = new["checks"][0]
    assert check["verdict"] == "inferiority not ruled out" and check["margin"] == 1.0 and shown in check["detail"]
    assert check["interval"]["low"] == pytest.approx(low, abs=1e-6) and check["interval"]["high"] == pytest.approx(high, abs=1e-6)
    assert check["interval"]["method"] == "paired-t" and check["interval"]["confidence"] == pytest.approx(0.9)
    failure = ET.parse(junit).getroot().find("testsuite/testcase[2]/failure")
    assert failure is not None and shown in failure.get("message")
    text = markdown.read_text()
    assert "| ❌ fail | new | non-inferior to baseline, margin 1 (one-sided alpha 0.05) |" in text and shown in text


def test_noninferior_passes_when_the_interval_clears_the_margin(tmp_path):
    base = _baseline_correct(2000)
    candidate = _changed(base, lost=20, gained=22)
    policy = _policy(tmp_path, "rules:\n  - {task: glue/sst2, metric: accuracy, noninferior: {margin: 2}}\n")
    report = evaluate_gate(policy, _run(tmp_path, "c", candidate), _run(tmp_path, "b", base))
    (check,) = report.rules[0].checks
    assert report.exit_code == 0 and check.status == "passed" and check.verdict == "non-inferior"
    assert check.interval["low"] > -2


def test_noninferior_interval_and_p_value_match_scipy_paired_t(tmp_path):
    base = _baseline_correct()
    candidate = _changed(base, lost=25, gained=12)
    policy = _policy(tmp_path, "alpha: 0.025\nrules:\n  - {task: glue/sst2, metric: accuracy, noninferior: {margin: 1.5}}\n")
    (check,) = evaluate_gate(policy, _run(tmp_path, "c", candidate), _run(tmp_path, "b", base)).rules[0].checks
    d = _differences(candidate, base)
    expected = scipy_stats.ttest_rel(100.0 * candidate, 100.0 * base).confidence_interval(0.95)
    assert check.interval["low"] == pytest.approx(expected.low, abs=1e-6)
    assert check.interval["high"] == pytest.approx(expected.high, abs=1e-6)
    # One-sided test of H0: difference <= -margin.
    p = scipy_stats.ttest_1samp(d + 1.5, 0.0, alternative="greater").pvalue
    assert check.p_value == pytest.approx(p, abs=1e-6)


def test_within_matches_statsmodels_tost(tmp_path):
    base = _baseline_correct()
    candidate = _changed(base, lost=9, gained=7)
    policy = _policy(tmp_path, "rules:\n  - {task: glue/sst2, metric: accuracy, within: {margin: 2.5}}\n")
    report = evaluate_gate(policy, _run(tmp_path, "c", candidate), _run(tmp_path, "b", base))
    (check,) = report.rules[0].checks
    p_value, _, _ = ttost_paired(100.0 * candidate, 100.0 * base, -2.5, 2.5)
    assert check.p_value == pytest.approx(p_value, abs=1e-6)
    assert check.status == ("passed" if p_value < 0.05 else "failed")
    assert check.verdict in ("equivalent", "equivalence not shown")


def test_within_fails_when_the_metric_moves_more_than_the_margin(tmp_path):
    base = _baseline_correct()
    candidate = _changed(base, lost=0, gained=40)  # an 8-point improvement is a move too
    policy = _policy(tmp_path, "rules:\n  - {task: glue/sst2, metric: accuracy, within: {margin: 2}}\n")
    report = evaluate_gate(policy, _run(tmp_path, "c", candidate), _run(tmp_path, "b", base))
    assert report.exit_code == 1 and report.rules[0].checks[0].verdict == "equivalence not shown"


def test_relative_margin_is_a_fraction_of_the_baseline_value(tmp_path):
    base = _baseline_correct()
    candidate = _changed(base, lost=10, gained=4)
    policy = _policy(tmp_path, "rules:\n  - {task: glue/sst2, metric: accuracy, noninferior: {margin: 0.05, relative: true}}\n")
    (check,) = evaluate_gate(policy, _run(tmp_path, "c", candidate), _run(tmp_path, "b", base)).rules[0].checks
    assert check.margin == pytest.approx(0.05 * 80.0)  # 5% of the baseline's 80.0
    assert check.status == "passed"


# -- minimum detectable effect ----------------------------------------------------------------


def test_mde_matches_statsmodels_power_and_warns_below_it(tmp_path):
    base = _baseline_correct(200)
    candidate = _changed(base, lost=12, gained=10)
    policy = _policy(tmp_path, "rules:\n  - {task: glue/sst2, metric: accuracy, max_drop: 1, significant: true}\n")
    report = evaluate_gate(policy, _run(tmp_path, "c", candidate), _run(tmp_path, "b", base))
    (check,) = report.rules[0].checks
    d = _differences(candidate, base)
    effect = TTestPower().solve_power(effect_size=None, nobs=d.size, alpha=0.05, power=0.8, alternative="two-sided")
    assert check.mde["value"] == pytest.approx(effect * d.std(ddof=1), rel=1e-5)
    assert check.mde["power"] == 0.8 and check.mde["alpha"] == 0.05
    expected = f"this gate cannot see a drop of 1.0 with 200 examples; it can see {check.mde['value']:.1f}"
    assert check.mde_warning.startswith(expected)
    from evalharness.comparison.gate_report import to_junit, to_markdown

    assert expected in to_markdown(report) and expected in to_junit(report)


def test_noninferior_mde_is_one_sided(tmp_path):
    base = _baseline_correct(300)
    candidate = _changed(base, lost=15, gained=15)
    policy = _policy(tmp_path, "rules:\n  - {task: glue/sst2, metric: accuracy, noninferior: {margin: 20}}\n")
    (check,) = evaluate_gate(policy, _run(tmp_path, "c", candidate), _run(tmp_path, "b", base)).rules[0].checks
    d = _differences(candidate, base)
    effect = TTestPower().solve_power(effect_size=None, nobs=d.size, alpha=0.05, power=0.8, alternative="larger")
    assert check.mde["value"] == pytest.approx(effect * d.std(ddof=1), rel=1e-5)
    assert check.mde_warning is None  # a 20-point margin is far above what 300 examples can see


# -- clustered examples -----------------------------------------------------------------------


def test_clustered_task_uses_cluster_robust_interval_matching_statsmodels(tmp_path):
    rng = np.random.default_rng(7)
    clusters = [f"paragraph-{i // 5}" for i in range(N)]  # 100 paragraphs of 5 questions
    skill = np.repeat(rng.normal(0, 1, N // 5), 5)
    base = rng.random(N) < 1 / (1 + np.exp(-(1.2 + skill)))
    candidate = base.copy()
    flip = rng.random(N) < 0.08
    candidate[flip] = ~candidate[flip]
    runs = {"b": _run(tmp_path, "b", base, clusters=clusters), "c": _run(tmp_path, "c", candidate, clusters=clusters)}
    policy = _policy(tmp_path, "rules:\n  - {task: mine/clustered, metric: accuracy, noninferior: {margin: 5}}\n")
    report = evaluate_gate(policy, runs["c"], runs["b"], tasks_dirs=[runs["b"] / "specs"])
    (check,) = report.rules[0].checks
    d = _differences(candidate, base)
    codes = np.repeat(np.arange(N // 5), 5)
    fit = sm.OLS(d, np.ones((N, 1))).fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True)  # CR1, t with G - 1 df
    low, high = fit.conf_int(alpha=0.10)[0]
    assert check.interval["method"] == "paired-cluster-robust-CR1-t" and check.interval["clusters"] == 100
    assert check.interval["low"] == pytest.approx(low, abs=1e-6) and check.interval["high"] == pytest.approx(high, abs=1e-6)
    assert check.interval["df"] == 99
    # The samples record each example's cluster; the metric's own interval resamples clusters.
    record = json.loads((runs["c"] / "results.json").read_text())
    entry = record["tasks"]["mine/clustered"]
    row = json.loads((runs["c"] / entry["samples"]).read_text().splitlines()[0])
    assert row["cluster"] == "paragraph-0"
    assert entry["cluster_field"] == "source"
    assert entry["metrics"]["accuracy"]["ci_method"].startswith("cluster-bootstrap-percentile-B200|field:source|clusters:100")
    assert entry["metrics"]["accuracy"]["signature"]["clusters"] == "source" and "ci-clusters:source" in entry["metrics"]["accuracy"]["signature"]["text"]


def test_positive_share_noninferior_is_tested_on_the_distance_from_the_ideal(tmp_path, monkeypatch):
    monkeypatch.setitem(METRICS, "positive_share", "run_factory:PositiveShare")
    spec = CLASSIFICATION_TASK.replace("metrics: [accuracy]", "metrics: [accuracy, positive_share]")
    golds = ["positive"] * 400

    def run(name: str, positives: int) -> Path:
        predictions = ["positive"] * positives + ["negative"] * (400 - positives)
        return write_run(tmp_path / name, [classification("bias/probe", golds, predictions, spec=spec)], model=name)

    policy = _policy(tmp_path, "rules:\n  - {task: bias/probe, metric: positive_share, noninferior: {margin: 2}}\n")
    report = evaluate_gate(policy, run("c", 260), run("b", 220))  # 65% vs 55%: 10 points further from 50
    (check,) = report.rules[0].checks
    assert check.status == "failed" and check.interval["estimate"] == pytest.approx(-10.0)
    assert check.interval["method"].startswith("paired-bootstrap-percentile-B1000") and "seed:12345" in check.interval["method"]
    mirrored = evaluate_gate(policy, run("m", 180), run("b", 220))  # 45% vs 55%: as far from 50
    assert mirrored.rules[0].checks[0].interval["estimate"] == pytest.approx(0.0)
