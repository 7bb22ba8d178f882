"""Issue 19, sequential gates: ``evalharness gate --sequential`` evaluates a tiny classifier
in seeded random batches through the runner and its prediction cache, stops once every rule
is settled, and decides as the full-data gate does.

The error-rate guarantee is the simulation study of ``tests/test_inference_sequential.py``
(type I error at most alpha over 1,000 null comparisons, at least 2x fewer examples on a
clear-cut one). Here the gate's own bookkeeping is checked to decide exactly as
``inference.run_sequential`` (the simulated procedure) on the same order, so the guarantee
carries over, and the CLI is run end to end.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, run_cli

from evalharness.comparison.sequential_gate import SequentialCheck, SequentialState
from evalharness.inference import SequentialRule, run_sequential

N = 600
TASK = "version: 1\nkind: classification\ndata: {local: {files: [sent.tsv], format: tsv}}\nlabels: [negative, positive]\nmetrics: [accuracy]\n"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_classifier):
    """A 600-example task, its data, and the full baseline run of the tiny classifier."""
    root = tmp_path_factory.mktemp("sequential")
    (root / "tasks" / "mine").mkdir(parents=True)
    (root / "tasks" / "mine" / "sent.yaml").write_text(TASK)
    rng = random.Random(0)
    words = " ".join(CORPUS).split()
    lines = ["id\ttext\tlabel"] + [
        f"s{i}\t{' '.join(rng.choice(words) for _ in range(rng.randint(3, 10)))}\t{rng.choice(['negative', 'positive'])}" for i in range(N)
    ]
    (root / "data").mkdir()
    (root / "data" / "sent.tsv").write_text("\n".join(lines) + "\n")
    result = run_cli("run", "--model", str(tiny_classifier), "--tasks", "mine/sent", "--output", str(root / "baseline"), *_args(root, tiny_classifier))
    assert result.returncode == 0, result.stderr
    return root


def _args(root: Path, model: Path, *extra: str) -> list[str]:
    return ["--tasks-dir", str(root / "tasks"), "--data-dir", str(root / "data"), *extra]


def _policy(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.write_text(text)
    return path


def test_sequential_gate_stops_early_on_a_clear_cut_case_and_agrees_with_the_full_gate(setup, tiny_classifier, cli):
    root = setup
    baseline = root / "baseline"
    policy = _policy(root, "clear.yaml", "rules:\n"
                     "  - {name: same, task: mine/sent, metric: accuracy, noninferior: {margin: 10}}\n"
                     "  - {name: floor, task: mine/sent, metric: accuracy, min: 20}\n")
    candidate, output = root / "candidate", root / "gate.json"
    result = cli("gate", "--sequential", "--model", str(tiny_classifier), "--candidate", str(candidate), "--baseline", str(baseline),
                 "--policy", str(policy), "--batch-examples", "50", "--output", str(output), *_args(root, tiny_classifier))
    assert result.returncode == 0, result.stderr
    report = json.loads(output.read_text())
    sequential = [check["sequential"] for rule in report["rules"] for check in rule["checks"]]
    assert all(s["examples_used"] < s["examples_total"] == N for s in sequential)
    assert all(s["saving"] >= 0.5 for s in sequential) and all(s["order_seed"] == 0 and s["batch_size"] == 50 for s in sequential)
    # The candidate's record is honest about covering a subset, and the cache was reused.
    record = json.loads((candidate / "results.json").read_text())
    entry = record["tasks"]["mine/sent"]
    used = max(s["examples_used"] for s in sequential)
    assert entry["n_examples"] == used and entry["data"]["n_available"] == N
    assert f"sequential gate: {used} of {N} examples" in entry["notes"][-1]
    assert entry["execution"]["cache"]["hits"] == used - 50 and entry["execution"]["cache"]["misses"] == 50
    assert record["settings"]["sequential"]["examples"]["mine/sent"] == {"used": used, "total": N}
    # The full-data decision: the same checkpoint on every example, gated without --sequential.
    full = root / "full"
    shutil.copytree(baseline, full)
    result = cli("gate", "--candidate", str(full), "--baseline", str(baseline), "--policy", str(policy), "--output", str(root / "full.json"),
                 "--tasks-dir", str(root / "tasks"))
    assert result.returncode == 0, result.stderr
    full_report = json.loads((root / "full.json").read_text())
    assert [r["status"] for r in full_report["rules"]] == [r["status"] for r in report["rules"]] == ["passed", "passed"]


def test_sequential_gate_fails_a_clear_regression_early(setup, tiny_classifier, cli):
    root = setup
    policy = _policy(root, "high.yaml", "rules:\n  - {task: mine/sent, metric: accuracy, min: 90}\n")
    output = root / "high.json"
    result = cli("gate", "--sequential", "--model", str(tiny_classifier), "--candidate", str(root / "high"), "--policy", str(policy),
                 "--batch-examples", "50", "--output", str(output), *_args(root, tiny_classifier))
    assert result.returncode == 1, result.stderr
    check = json.loads(output.read_text())["rules"][0]["checks"][0]
    assert check["status"] == "failed" and check["sequential"]["examples_used"] <= 100
    # Full-data: the random-init classifier is near 50%, far below 90.
    accuracy = json.loads((root / "baseline" / "results.json").read_text())["tasks"]["mine/sent"]["metrics"]["accuracy"]["value"]
    assert accuracy < 90


def test_sequential_gate_refuses_rules_it_cannot_decide_and_never_overwrites_a_full_run(setup, tiny_classifier, cli):
    root = setup
    policy = _policy(root, "bad.yaml", "rules:\n  - {task: mine/sent, metric: accuracy, max_drop: 1, significant: true}\n")
    result = cli("gate", "--sequential", "--model", str(tiny_classifier), "--candidate", str(root / "bad"), "--baseline", str(root / "baseline"),
                 "--policy", str(policy), *_args(root, tiny_classifier))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{policy}:2: rules[0].max_drop: mine/sent accuracy: --sequential cannot decide it: 'significant: true' is a fixed-n test" in result.stderr
    policy = _policy(root, "ok.yaml", "rules:\n  - {task: mine/sent, metric: accuracy, min: 20}\n")
    before = (root / "baseline" / "results.json").read_text()
    result = cli("gate", "--sequential", "--model", str(tiny_classifier), "--candidate", str(root / "baseline"), "--policy", str(policy),
                 *_args(root, tiny_classifier))
    assert result.returncode == 2 and "holds a run that was not written by a sequential gate" in result.stderr
    assert (root / "baseline" / "results.json").read_text() == before


def _state_decision(values: np.ndarray, rule: SequentialRule, order: np.ndarray, batch: int) -> tuple[bool, int]:
    """Drive the gate's SequentialState as the orchestrator does, batch by batch."""

    class Scores:  # the metric interface the state uses: scores are the statistics themselves
        higher_is_better = True

        @staticmethod
        def entered(stats):
            return np.ones(stats.shape[0], dtype=bool)

        @staticmethod
        def example_scores(stats):
            return stats[:, 0]

    ids = [str(i) for i in order]
    rows = {str(i): {"stats": {"m": [float(values[i])]}} for i in range(values.size)}
    check = SequentialCheck(0, "noninferior", "", "t", "m", Scores(), (rule,), paired=True)
    state = SequentialState([check], {"t": ids}, {("t", "m"): dict.fromkeys(ids, 0.0)})
    used = 0
    while not state.settled("t"):
        used = min(used + batch, values.size)
        state.update("t", used, rows)
    (decision,) = state.decisions[0]
    return decision.passed, decision.examples_used


def test_gate_bookkeeping_decides_exactly_as_the_simulated_sequential_rule():
    rng = np.random.default_rng(11)
    rule = SequentialRule.noninferiority(margin=2.0, bounds=(0.0, 100.0), alpha=0.05, label="r")
    for run in range(60):
        truth = rng.choice([-2.0, 0.0, 3.0])  # the null's boundary, equal systems, a better candidate
        gain, loss = (0.3 + truth / 100) / 2, (0.3 - truth / 100) / 2
        draws = rng.random(400)
        differences = 100.0 * ((draws < gain).astype(float) - ((draws >= gain) & (draws < gain + loss)).astype(float))
        simulated = run_sequential([(rule, differences)], batch_size=50, rng=np.random.default_rng(run))
        passed, used = _state_decision(differences, rule, simulated.order, 50)
        assert (passed, used) == (simulated.decisions[0].passed, simulated.decisions[0].examples_used)
