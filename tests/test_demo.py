"""``evalharness demo`` runs end to end offline: valid run records, a gate of the candidate
against the baseline, a leaderboard, a report and a site; ``compare`` works on its runs."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET

import pytest

from evalharness.comparison.compare import compare_runs
from evalharness.records.record import load_record
from tests.conftest import REPO


def test_demo_end_to_end(cli, tmp_path):
    # One test, so that parallel workers never train the demo models twice. Generous
    # timeout: training two tiny models takes minutes on a contended 2-core machine.
    output = tmp_path / "demo-output"
    result = cli("demo", "--output", str(output), timeout=1800)
    assert result.returncode == 0, result.stderr
    accuracies = _check_runs(output, result.stdout)
    _check_gate(output, result.stdout)
    _check_compare(output, cli)
    _check_published(output, result.stdout, accuracies, cli, tmp_path)


def _check_runs(output, stdout):
    baseline = load_record(output / "runs" / "baseline")
    candidate = load_record(output / "runs" / "candidate")
    base_acc = baseline.tasks["demo/sentiment"].metrics["accuracy"].value
    cand_acc = candidate.tasks["demo/sentiment"].metrics["accuracy"].value
    assert baseline.tasks["demo/sentiment"].n_examples == 500
    # The candidate is trained ten times longer; the synthetic labels carry 4% noise.
    assert 60 < base_acc < cand_acc < 100
    assert "demo finished" in stdout
    return {"baseline": (base_acc, baseline.run_id), "candidate": (cand_acc, candidate.run_id)}


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


def _check_published(output, stdout, accuracies, cli, tmp_path):
    for label, path in (("leaderboard", output / "leaderboard" / "leaderboard.md"), ("report", output / "report.html"),
                        ("site", output / "site" / "index.html")):
        assert f"{label}: {path}" in stdout and path.is_file()
    board = json.loads((output / "leaderboard" / "leaderboard.json").read_text())
    assert [row["model"] for row in board["rows"]] == ["candidate", "baseline"]
    assert [row["rank"] for row in board["rows"]] == [1, 2]  # 400 vs 40 training steps: CIs do not overlap
    assert board["rows"][0]["values"]["demo/sentiment:accuracy"]["value"] == accuracies["candidate"][0]
    report = (output / "report.html").read_text()
    assert "Evaluation report: candidate vs baseline" in report
    assert accuracies["candidate"][1] in report and accuracies["baseline"][1] in report

    # The shipped definition rebuilds the same leaderboard from a checkout-like layout.
    shutil.copytree(REPO / "leaderboards", tmp_path / "leaderboards")
    rebuilt = cli("leaderboard", "--definition", str(tmp_path / "leaderboards" / "demo.yaml"), "--output", str(tmp_path / "rebuilt"))
    assert rebuilt.returncode == 0, rebuilt.stderr
    again = json.loads((tmp_path / "rebuilt" / "leaderboard.json").read_text())
    assert [row["values"] for row in again["rows"]] == [row["values"] for row in board["rows"]]
