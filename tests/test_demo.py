"""``evalharness demo`` runs end to end offline and leaves valid run records."""

from __future__ import annotations

from evalharness.records import load_record


def test_demo_trains_and_evaluates_two_models(cli, tmp_path):
    result = cli("demo", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    baseline = load_record(tmp_path / "runs" / "baseline")
    candidate = load_record(tmp_path / "runs" / "candidate")
    base_acc = baseline.tasks["demo/sentiment"].metrics["accuracy"].value
    cand_acc = candidate.tasks["demo/sentiment"].metrics["accuracy"].value
    assert baseline.tasks["demo/sentiment"].n_examples == 500
    # The candidate is trained ten times longer; the synthetic labels carry 4% noise.
    assert 60 < base_acc < cand_acc < 100
    assert "demo finished" in result.stdout
