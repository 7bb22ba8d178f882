"""``evalharness demo`` runs end to end offline and leaves valid run records, a leaderboard,
a report and a site built from them."""

from __future__ import annotations

import json
import shutil

from evalharness.records import load_record
from tests.conftest import REPO


def test_demo_trains_and_evaluates_two_models(cli, tmp_path):
    output = tmp_path / "demo-output"
    result = cli("demo", "--output", str(output))
    assert result.returncode == 0, result.stderr
    baseline = load_record(output / "runs" / "baseline")
    candidate = load_record(output / "runs" / "candidate")
    base_acc = baseline.tasks["demo/sentiment"].metrics["accuracy"].value
    cand_acc = candidate.tasks["demo/sentiment"].metrics["accuracy"].value
    assert baseline.tasks["demo/sentiment"].n_examples == 500
    # The candidate is trained ten times longer; the synthetic labels carry 4% noise.
    assert 60 < base_acc < cand_acc < 100
    assert "demo finished" in result.stdout

    # What the demo publishes from those runs, and where it says it is.
    for label, path in (("leaderboard", output / "leaderboard" / "leaderboard.md"), ("report", output / "report.html"),
                        ("site", output / "site" / "index.html")):
        assert f"{label}: {path}" in result.stdout and path.is_file()
    board = json.loads((output / "leaderboard" / "leaderboard.json").read_text())
    assert [row["model"] for row in board["rows"]] == ["candidate", "baseline"]
    assert [row["rank"] for row in board["rows"]] == [1, 2]  # 400 vs 40 training steps: CIs do not overlap
    assert board["rows"][0]["values"]["demo/sentiment:accuracy"]["value"] == cand_acc
    report = (output / "report.html").read_text()
    assert "Evaluation report: candidate vs baseline" in report and candidate.run_id in report and baseline.run_id in report

    # The shipped definition rebuilds the same leaderboard from a checkout-like layout.
    shutil.copytree(REPO / "leaderboards", tmp_path / "leaderboards")
    rebuilt = cli("leaderboard", "--definition", str(tmp_path / "leaderboards" / "demo.yaml"), "--output", str(tmp_path / "rebuilt"))
    assert rebuilt.returncode == 0, rebuilt.stderr
    again = json.loads((tmp_path / "rebuilt" / "leaderboard.json").read_text())
    assert [row["values"] for row in again["rows"]] == [row["values"] for row in board["rows"]]
