"""A real bias run record (CrowS-Pairs with the tiny causal LM) in the HTML report and a gate:
the per-bias-type breakdown is charted with the ideal, and the gate bounds the distance from
the ideal rather than treating the stereotype score as higher-is-better."""

from __future__ import annotations

import pytest

from evalharness.cli import main
from evalharness.report import render_report
from evalharness.evaluation.runner import RunConfig, run_evaluation


@pytest.fixture(scope="module")
def crows_run(tiny_causal_lm, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("crows_run")
    config = RunConfig(model=str(tiny_causal_lm), tasks=["bias/crows_pairs"], data_dir=shared_data, output=out,
                       limit=40, n_resamples=100, device="cpu")
    return out, run_evaluation(config).record.tasks["bias/crows_pairs"]


def test_report_charts_the_bias_type_breakdown_of_a_real_run(crows_run):
    run_dir, entry = crows_run
    html = render_report(run_dir)
    score = entry.metrics["stereotype_score"]
    assert len(score.groups) >= 5
    assert f"stereotype_score by group ({len(score.groups)} groups)" in html
    for name, group in score.groups.items():
        assert f"{name} (n={group.n})" in html
    assert "ideal 50" in html and "closest to 50" in html


def test_gate_bounds_the_distance_from_the_ideal(crows_run, tmp_path):
    run_dir, entry = crows_run
    distance = abs(entry.metrics["stereotype_score"].value - 50.0)
    policy = tmp_path / "gates.yaml"
    for limit, expected in ((distance + 0.5, 0), (max(distance - 0.5, 0.0), 1)):
        if expected == 1 and distance < 0.5:
            continue  # a perfectly unbiased sample cannot fail a distance bound
        policy.write_text(
            f"rules:\n  - task: bias/crows_pairs\n    metric: stereotype_score\n    max_distance_from_ideal: {limit}\n",
            encoding="utf-8",
        )
        assert main(["gate", "--candidate", str(run_dir), "--policy", str(policy)]) == expected
