"""``evalharness gate``: exit codes, JUnit XML (one test case per rule) and the Markdown
summary for pass, fail, invalid policy, missing task, incomparable runs and no baseline."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from run_factory import CLASSIFICATION_TASK, classification, correct_to_predictions, write_run

from evalharness.cli import main
from evalharness.errors import SpecError
from evalharness.comparison.gate import CHECKS, evaluate_gate, load_policy
from evalharness.comparison.gate_report import to_junit, to_markdown
from evalharness.metrics.registry import METRICS

MINIMAL_POLICY = """\
rules:
  - task: glue/sst2
    metric: accuracy
    min: 50          # absolute floor
    max_drop: 1.0    # allowed drop against the baseline, in the metric's units
    significant: true  # fail a drop only when it is statistically significant (alpha 0.05 unless `alpha:` is given)
"""


def _golds(n: int) -> list[str]:
    return list(np.random.default_rng(0).choice(["negative", "positive"], n))


def _run(tmp_path: Path, name: str, correct: np.ndarray, *, task: str = "glue/sst2", spec: str = CLASSIFICATION_TASK) -> Path:
    golds = _golds(len(correct))
    return write_run(tmp_path / name, [classification(task, golds, correct_to_predictions(golds, correct), spec=spec)], model=name)


def _correct(n: int, accuracy: float, seed: int = 1) -> np.ndarray:
    correct = np.zeros(n, dtype=bool)
    correct[np.random.default_rng(seed).permutation(n)[: round(n * accuracy)]] = True
    return correct


def _degrade(correct: np.ndarray, lost: int) -> np.ndarray:
    worse = correct.copy()
    worse[np.flatnonzero(correct)[:lost]] = False
    return worse


@pytest.fixture
def policy(tmp_path) -> Path:
    path = tmp_path / "gates.yaml"
    path.write_text(MINIMAL_POLICY, encoding="utf-8")
    return path


def _gate(tmp_path: Path, *args: str) -> tuple[int, ET.Element, str]:
    junit, markdown = tmp_path / "gate.xml", tmp_path / "gate.md"
    code = main(["gate", *args, "--junit", str(junit), "--markdown", str(markdown)])
    return code, ET.parse(junit).getroot(), markdown.read_text(encoding="utf-8")


def test_minimal_policy_passes_when_the_candidate_improves(tmp_path, policy, capsys):
    base = _correct(400, 0.80)
    candidate = base | _correct(400, 0.3, seed=2)
    code, junit, markdown = _gate(
        tmp_path, "--candidate", str(_run(tmp_path, "cand", candidate)), "--baseline", str(_run(tmp_path, "base", base)), "--policy", str(policy)
    )
    assert code == 0
    assert junit.get("tests") == "1" and junit.get("failures") == "0" and junit.get("skipped") == "0"
    case = junit.find("testsuite/testcase")
    assert case.get("name").startswith("glue/sst2 accuracy: value ≥ 50, drop vs baseline ≤ 1 if significant at 0.05")
    assert case.find("failure") is None and case.find("skipped") is None
    assert "[passed] max_drop" in case.find("system-out").text
    assert markdown.startswith("## evalharness gate ✅ passed")
    assert "| ✅ pass | glue/sst2 accuracy | value ≥ 50 |" in markdown
    assert "gate passed" in capsys.readouterr().out


def test_a_significant_drop_fails_and_an_insignificant_one_passes(tmp_path, policy):
    base = _correct(500, 0.80)
    baseline = _run(tmp_path, "base", base)
    # 30 of 400 correct answers lost: a 6-point drop, McNemar p ~ 2e-9.
    code, junit, markdown = _gate(tmp_path, "--candidate", str(_run(tmp_path, "bad", _degrade(base, 30))), "--baseline", str(baseline), "--policy", str(policy))
    assert code == 1
    failure = junit.find("testsuite/testcase/failure")
    assert junit.get("failures") == "1"
    assert failure.get("message").startswith("max_drop: regression 6.00 > 1.00, significant (p adj.")
    assert markdown.startswith("## evalharness gate ❌ failed")
    assert "| ❌ fail | glue/sst2 accuracy | drop vs baseline ≤ 1 if significant at 0.05 | 74.00 | 80.00 | -6.00 |" in markdown
    # 10 lost and 4 gained: a 1.2-point drop, over max_drop, but McNemar's exact
    # p = 2 * P(X <= 4 | X ~ Bin(14, 1/2)) = 2 * 1471 / 16384 = 0.18.
    noisy = _degrade(base, 10)
    noisy[np.flatnonzero(~base)[:4]] = True
    code, junit, markdown = _gate(tmp_path, "--candidate", str(_run(tmp_path, "noisy", noisy)), "--baseline", str(baseline), "--policy", str(policy))
    assert code == 0
    assert "regression 1.20 > 1.00, not significant (p adj. 0.18" in junit.find("testsuite/testcase/system-out").text
    assert "not significant" in markdown


def test_without_significance_any_drop_over_the_limit_fails(tmp_path):
    path = tmp_path / "gates.yaml"
    path.write_text("rules:\n  - {task: glue/sst2, metric: accuracy, max_drop_relative: 0.01}\n")
    base = _correct(500, 0.80)
    candidate = _degrade(base, 10)  # 2 points of 80: a 2.5% relative drop
    code, junit, _ = _gate(tmp_path, "--candidate", str(_run(tmp_path, "c", candidate)), "--baseline", str(_run(tmp_path, "b", base)), "--policy", str(path))
    assert code == 1
    assert "regression 2.50% > 1.00%" in junit.find("testsuite/testcase/failure").get("message")


def test_no_baseline_fails_baseline_rules_with_exit_2_unless_they_are_optional(tmp_path, policy):
    # Issue 14: a rule that cannot be evaluated no longer lets the gate pass (it was "not evaluated", exit 0).
    code, junit, markdown = _gate(tmp_path, "--candidate", str(_run(tmp_path, "c", _correct(100, 0.7))), "--policy", str(policy))
    assert code == 2
    error = junit.find("testsuite/testcase/error")
    assert junit.get("errors") == "1" and error.get("message") == "max_drop: no baseline run given (--baseline)"
    assert "| ✅ pass | glue/sst2 accuracy | value ≥ 50 |" in markdown
    assert "| ⛔ not evaluated | glue/sst2 accuracy | drop vs baseline ≤ 1 if significant at 0.05 |" in markdown
    assert "- Baseline: none (absolute rules only)" in markdown
    # Marked optional, the baseline check is skipped and the absolute floor decides.
    policy.write_text(MINIMAL_POLICY + "    optional: true\n")
    code, junit, markdown = _gate(tmp_path, "--candidate", str(_run(tmp_path, "c", _correct(100, 0.7))), "--policy", str(policy))
    assert code == 0 and junit.find("testsuite/testcase/skipped").get("message") == "max_drop: no baseline run given (--baseline)"
    assert "| ⏭️ skipped | glue/sst2 accuracy | drop vs baseline ≤ 1 if significant at 0.05 |" in markdown
    code, junit, _ = _gate(tmp_path, "--candidate", str(_run(tmp_path, "weak", _correct(100, 0.4))), "--policy", str(policy))
    assert code == 1 and "min: 40.00 < 50" in junit.find("testsuite/testcase/failure").get("message")


def test_a_missing_task_is_not_evaluated_and_optional_rules_skip(tmp_path):
    path = tmp_path / "gates.yaml"
    path.write_text(
        "required_tasks: [glue/sst2, glue/mnli_matched]\n"
        "rules:\n"
        "  - {task: glue/cola, metric: mcc, min: 10}\n"
        "  - {task: glue/qqp, metric: accuracy, min: 10, required: false}\n"
        "  - {task: glue/sst2, metric: accuracy, min: 10}\n"
    )
    code, junit, markdown = _gate(tmp_path, "--candidate", str(_run(tmp_path, "c", _correct(50, 0.9))), "--policy", str(path))
    assert code == 2
    cases = {case.get("name").split(":")[0]: case for case in junit.iter("testcase")}
    assert len(cases) == 5 and junit.get("failures") == "1" and junit.get("errors") == "1" and junit.get("skipped") == "1"
    assert "task 'glue/cola' is not in the candidate run" in cases["glue/cola mcc"].find("error").get("message")
    assert cases["glue/qqp accuracy"].find("skipped") is not None
    assert cases["glue/sst2 accuracy"].find("failure") is None and cases["glue/sst2 accuracy"].find("error") is None
    assert cases["required task glue/sst2"].find("failure") is None
    assert "glue/mnli_matched' is not in the candidate run" in cases["required task glue/mnli_matched"].find("failure").get("message")
    assert "**2 passed, 1 failed, 1 not evaluated, 1 skipped** of 5 rules" in markdown
    # A misspelt metric is refused before anything is evaluated.
    path.write_text("rules:\n  - {task: glue/sst2, metric: acc, min: 10}\n")
    with pytest.raises(SpecError, match=r"gates.yaml:2: rules\[0\].metric: task 'glue/sst2' has no metric 'acc'; did you mean 'accuracy'\?"):
        evaluate_gate(path, _run(tmp_path, "c2", _correct(50, 0.9)))


def test_invalid_policies_exit_2_with_file_line_and_field(tmp_path, cli):
    run = _run(tmp_path, "c", _correct(20, 0.9))
    cases = {
        "rules:\n  - task: glue/sst2\n    metric: accuracy\n    max_dorp: 1\n": ":4: rules[0].max_dorp: unknown key (remove it or check its spelling); did you mean 'max_drop'?",
        "rules:\n  - task: glue/sst2\n    metric: accuracy\n    min: '50'\n": ":4: rules[0].min: Input should be a valid number (got '50')",
        "rules:\n  - task: glue/sst2\n    metric: accuracy\n": ":2: rules[0]: a rule needs at least one check",
        "rules:\n  - {task: glue/sst2, metric: accuracy, min: 5, significant: true}\n": "'significant' and 'alpha' apply to regressions",
        "rules:\n  - {task: glue/sst2, metric: accuracy, max_drop: -1}\n": ":2: rules[0].max_drop: Input should be greater than or equal to 0",
        "alpha: 2\nrules: []\n": ":1: alpha: Input should be less than 1",
        "rules: [\n": "YAML syntax error",
    }
    for index, (text, expected) in enumerate(cases.items()):
        path = tmp_path / f"bad{index}.yaml"
        path.write_text(text)
        result = cli("gate", "--candidate", str(run), "--policy", str(path)) if index == 0 else None
        if result is not None:
            assert result.returncode == 2 and "Traceback" not in result.stderr
            assert f"{path}{expected}" in result.stderr
        with pytest.raises(SpecError) as error:
            load_policy(path)
        assert expected in str(error.value) and str(path) in str(error.value)


def test_incomparable_runs_and_missing_records_exit_2(tmp_path, policy, capsys):
    baseline = _run(tmp_path, "b", _correct(100, 0.8))
    other_data = _run(tmp_path, "c", _correct(90, 0.8))
    assert main(["gate", "--candidate", str(other_data), "--baseline", str(baseline), "--policy", str(policy)]) == 2
    assert "did not evaluate the same examples" in capsys.readouterr().err
    assert main(["gate", "--candidate", str(tmp_path / "nothing"), "--policy", str(policy)]) == 2
    assert "no run record here" in capsys.readouterr().err
    # Allowed explicitly, the drop is tested on the shared examples and said so.
    code = main(["gate", "--candidate", str(other_data), "--baseline", str(baseline), "--policy", str(policy), "--allow-different-data"])
    assert code in (0, 1) and "compared on the 90 shared example ids" in capsys.readouterr().out


def test_bias_rules_on_the_distance_from_the_ideal(tmp_path, monkeypatch):
    monkeypatch.setitem(METRICS, "positive_share", "run_factory:PositiveShare")
    spec = CLASSIFICATION_TASK.replace("metrics: [accuracy]", "metrics: [accuracy, positive_share]")
    golds = ["positive"] * 200

    def run(name: str, positives: int) -> Path:
        preds = ["positive"] * positives + ["negative"] * (200 - positives)
        return write_run(tmp_path / name, [classification("bias/probe", golds, preds, spec=spec)], model=name)

    path = tmp_path / "gates.yaml"
    path.write_text(
        "rules:\n"
        "  - task: bias/probe\n    metric: positive_share\n    max_distance_from_ideal: 10\n"
        "  - task: bias/probe\n    metric: positive_share\n    max_distance_increase: 2\n    significant: true\n"
    )
    report = evaluate_gate(path, run("c", 130), run("b", 110))  # 65% vs 55%: distance 15 vs 5
    first, second = report.rules
    assert first.status == "failed" and first.checks[0].detail == "|65.00 - 50| = 15.00 > 10"
    assert second.status == "failed" and second.checks[0].change == pytest.approx(10.0)
    assert report.exit_code == 1
    mirrored = evaluate_gate(path, run("m", 90), run("b", 110))  # 45% vs 55%: the same distance
    assert [rule.status for rule in mirrored.rules] == ["passed", "passed"]
    junit = ET.fromstring(to_junit(mirrored).split("\n", 1)[1])
    assert junit.get("tests") == "2" and junit.get("failures") == "0"
    assert to_markdown(mirrored).startswith("## evalharness gate ✅ passed")
    # A 'drop' of a metric with an ideal value is ambiguous: the policy is refused (exit 2).
    path.write_text("rules:\n  - {task: bias/probe, metric: positive_share, max_drop: 1}\n")
    with pytest.raises(SpecError, match=r"gates.yaml:2: rules\[0\].max_drop: .* has an ideal value \(50\)"):
        evaluate_gate(path, run("c", 130), run("b", 110))


def test_the_shipped_example_policy_is_valid_and_has_every_kind_of_check():
    loaded = load_policy(Path(__file__).resolve().parent.parent / "docs" / "gates.example.yaml")
    used = {name for rule in loaded.policy.rules for name in CHECKS if getattr(rule, name) is not None}
    assert used == set(CHECKS) - {"max"}  # the ceiling example is commented out
    assert loaded.policy.required_tasks == ["glue/sst2"] and loaded.policy.correction == "holm"


def test_compare_and_gate_never_import_models(tmp_path):
    """They read records only: no torch or transformers, even when the gate runs a paired test."""
    import subprocess
    import sys

    base = _run(tmp_path, "b", _correct(50, 0.8))
    cand = _run(tmp_path, "c", _correct(50, 0.7))
    policy = tmp_path / "gates.yaml"
    policy.write_text(MINIMAL_POLICY)
    code = (
        "import sys\n"
        "from evalharness.cli import main\n"
        f"main(['compare', {str(base)!r}, {str(cand)!r}, '--json'])\n"
        f"main(['gate', '--candidate', {str(cand)!r}, '--baseline', {str(base)!r}, '--policy', {str(policy)!r}])\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_the_gate_reads_each_run_record_once_and_hands_it_to_compare(tmp_path, policy, monkeypatch):
    import evalharness.records.record as record_module

    base = _correct(400, 0.80)
    candidate, baseline = _run(tmp_path, "cand", _degrade(base, 30)), _run(tmp_path, "base", base)
    loads: list[str] = []
    real = record_module.load_record
    monkeypatch.setattr(record_module, "load_record", lambda run: loads.append(Path(run).name) or real(run))
    report = evaluate_gate(policy, candidate, baseline)
    assert sorted(loads) == ["base", "cand"]  # compare received the loaded runs
    assert not report.passed
