"""``evalharness demo`` runs end to end offline, leaves valid run records and gates the
candidate against the baseline; ``compare`` works on its runs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from evalharness.compare import compare_runs
from evalharness.records import load_record


def test_demo_evaluates_two_models_gates_them_and_compare_works_on_its_runs(cli, tmp_path):
    # One test, so that parallel workers never train the demo models twice. Generous
    # timeout: training two tiny models takes minutes on a contended 2-core machine.
    output = tmp_path / "demo-output"
    result = cli("demo", "--output", str(output), timeout=1800)
    assert result.returncode == 0, result.stderr
    _check_runs(output, result.stdout)
    _check_gate(output, result.stdout)
    _check_compare(output, cli)


def _check_runs(output, stdout):
    baseline = load_record(output / "runs" / "baseline")
    candidate = load_record(output / "runs" / "candidate")
    base_acc = baseline.tasks["demo/sentiment"].metrics["accuracy"].value
    cand_acc = candidate.tasks["demo/sentiment"].metrics["accuracy"].value
    assert baseline.tasks["demo/sentiment"].n_examples == 500
    # The candidate is trained ten times longer; the synthetic labels carry 4% noise.
    assert 60 < base_acc < cand_acc < 100
    assert "demo finished" in stdout


def _check_gate(output, stdout):
    assert "gate passed" in stdout
    junit = ET.parse(output / "gate.xml").getroot()
    assert (junit.get("tests"), junit.get("failures"), junit.get("skipped")) == ("1", "0", "0")
    markdown = (output / "gate.md").read_text(encoding="utf-8")
    assert markdown.startswith("## evalharness gate ✅ passed")
    assert "| ✅ pass | demo/sentiment accuracy | drop vs baseline ≤ 1 if significant at 0.05 |" in markdown


def _check_compare(output, cli):
    runs = output / "runs"
    item = compare_runs(runs / "baseline", runs / "candidate").get("demo/sentiment", "accuracy")
    assert item.test == "mcnemar-exact" and item.n == 500
    assert item.verdict == "improved" and item.ci[0] > 0 and item.p_value < 1e-6
    assert item.details["only_b_correct"] > item.details["only_a_correct"]
    # Reversed, the same test reports a regression; a run against itself, no change.
    reversed_ = cli("compare", str(runs / "candidate"), str(runs / "baseline"), "--json")
    assert reversed_.returncode == 0, reversed_.stderr
    row = json.loads(reversed_.stdout)["comparisons"][0]
    assert row["verdict"] == "regressed" and row["difference"] == pytest.approx(-item.difference)
    same = compare_runs(runs / "baseline", runs / "baseline").get("demo/sentiment", "accuracy")
    assert (same.p_value, same.verdict) == (1.0, "no significant change")
