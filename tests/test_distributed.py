"""Data-parallel runs (issue 10): ``torchrun -m evalharness run`` with the gloo backend on two
CPU processes equals the single-process run (same predictions, same scores, one record)."""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys

import pytest

from evalharness.execution.distributed import (
    DistributedContext,
    compute_sharded,
    device_for_rank,
    launch_environment,
    request_cost,
    shard_by_cost,
)
from evalharness.errors import UsageError
from evalharness.records.record import load_record, read_samples
from evalharness.evaluation.runner import RunConfig, run_evaluation
from evalharness.types import GenerationOptions, ClassifyRequest, LoglikelihoodRequest
from tests.conftest import REPO

SENTENCES = [
    ("it 's a charming and often affecting journey .", "positive"),
    ("unflinchingly bleak and desperate", "negative"),
    ("the movie was great but the plot was dull .", "negative"),
    ("this film is not good , and the acting is awful .", "negative"),
    ("a wonderful , moving and funny story about love and loss .", "positive"),
    ("what a boring , tedious and forgettable script .", "negative"),
    ("a wonderful story .", "positive"),
    ("the acting is great , the story is moving and the film is a charming journey about love .", "positive"),
    ("dull", "negative"),
    ("not good", "negative"),
    ("funny , moving and wonderful", "positive"),
    ("the plot was boring and the script was awful , tedious and forgettable .", "negative"),
    ("a charming film", "positive"),
    ("the story is about loss", "negative"),
]

TASK = """\
version: 1
kind: classification
data: {local: {files: [reviews/dev.tsv], format: tsv, columns: {text: sentence}}}
labels: [negative, positive]
prompt:
  template: "Review: {{ text }}\\nSentiment:"
  choices: [" negative", " positive"]
  target: " {{ label }}"
metrics: [accuracy, {name: f1, settings: {positive_label: positive}}]
"""


@pytest.fixture
def reviews_task(tmp_path):
    (tmp_path / "data" / "reviews").mkdir(parents=True)
    rows = "".join(f"{text}\t{label}\n" for text, label in SENTENCES)
    (tmp_path / "data" / "reviews" / "dev.tsv").write_text("sentence\tlabel\n" + rows, encoding="utf-8")
    (tmp_path / "tasks" / "mine").mkdir(parents=True)
    (tmp_path / "tasks" / "mine" / "reviews.yaml").write_text(TASK, encoding="utf-8")
    return tmp_path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def torchrun(*args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node N -m evalharness ...``, as a user launches it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
        "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", "evalharness", *args,
    ]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def assert_same_run(single, parallel, task: str, *, detail_key: str) -> None:
    """Same predictions and scores; raw model outputs equal up to float noise (batch padding
    and thread counts change the last bits of a logit, never a prediction)."""
    one, two = load_record(single), load_record(parallel)
    assert one.tasks[task].metrics == two.tasks[task].metrics
    assert one.tasks[task].data == two.tasks[task].data and one.model.fingerprint == two.model.fingerprint
    rows_one, rows_two = read_samples(single, task), read_samples(parallel, task)
    assert [(r["id"], r["prediction"], r["scores"], r["stats"]) for r in rows_one] == [
        (r["id"], r["prediction"], r["scores"], r["stats"]) for r in rows_two
    ]
    for a, b in zip(rows_one, rows_two):
        assert a["details"][detail_key] == pytest.approx(b["details"][detail_key], rel=1e-5, abs=1e-6)
    assert one.environment["distributed"] == {"world_size": 1, "backend": None}
    assert two.environment["distributed"] == {"world_size": 2, "backend": "gloo"}


def run_both(model, kind_args, reviews_task, out):
    common = ["--tasks", "mine/reviews", "--tasks-dir", str(reviews_task / "tasks"), "--data-dir", str(reviews_task / "data"), "--batch-size", "3"]
    single = run_evaluation(
        RunConfig(model=str(model), tasks=["mine/reviews"], output=out / "single", data_dir=reviews_task / "data",
                  tasks_dirs=[reviews_task / "tasks"], batch_size=3)
    )
    parallel = torchrun("run", "--model", str(model), *kind_args, *common, "--output", str(out / "parallel"))
    assert parallel.returncode == 0, parallel.stderr[-3000:]
    return single, parallel


def test_two_rank_classifier_run_matches_single_process(tmp_path, reviews_task, tiny_classifier):
    single, parallel = run_both(tiny_classifier, [], reviews_task, tmp_path)
    assert single.record.tasks["mine/reviews"].formulation == "classifier_head"
    assert_same_run(single.run_dir, tmp_path / "parallel", "mine/reviews", detail_key="logits")
    # Rank 0 alone prints the table and writes the run: one record, no stray files.
    assert parallel.stdout.count("run record:") == 1
    assert sorted(p.name for p in (tmp_path / "parallel").iterdir()) == [".lock", ".record.lock", "cache", "results.json", "samples"]


def test_cache_filled_by_two_ranks_serves_a_single_process_rerun(tmp_path, reviews_task, tiny_classifier):
    """The cache is keyed by request, not rank: a run started on 2 ranks finishes on 1."""
    single, _ = run_both(tiny_classifier, [], reviews_task, tmp_path)
    resumed = run_evaluation(
        RunConfig(model=str(tiny_classifier), tasks=["mine/reviews"], output=tmp_path / "parallel",
                  data_dir=reviews_task / "data", tasks_dirs=[reviews_task / "tasks"], batch_size=5)
    )
    execution = resumed.record.tasks["mine/reviews"].execution
    assert execution["cache"] == {"hits": execution["unique_requests"], "misses": 0}
    assert [r["prediction"] for r in read_samples(resumed.run_dir, "mine/reviews")] == [
        r["prediction"] for r in read_samples(single.run_dir, "mine/reviews")
    ]


def test_two_rank_loglikelihood_run_matches_single_process(tmp_path, reviews_task, tiny_causal_lm):
    single, parallel = run_both(tiny_causal_lm, ["--model-kind", "causal_lm"], reviews_task, tmp_path)
    assert single.record.tasks["mine/reviews"].formulation == "choice_loglikelihood"
    assert_same_run(single.run_dir, tmp_path / "parallel", "mine/reviews", detail_key="loglikelihoods")


# -- sharding plan and the single-process passthrough ------------------------------------------


def test_shards_cover_every_request_once_in_ascending_order():
    costs = [5, 1, 9, 3, 3, 7, 2, 2, 8, 1, 4]
    for world in (1, 2, 3, 4, 16):
        shards = shard_by_cost(costs, world)
        assert len(shards) == world
        assert sorted(i for shard in shards for i in shard) == list(range(len(costs)))
        assert all(shard == sorted(shard) for shard in shards)
        assert shards == shard_by_cost(costs, world)  # every rank computes the same plan


def test_shards_balance_token_cost_not_request_count():
    # One long request and many short ones: equal counts would put 100 + 5 on one rank.
    costs = [100] + [10] * 10
    shards = shard_by_cost(costs, 2)
    loads = sorted(sum(costs[i] for i in shard) for shard in shards)
    assert loads == [100, 100] and sorted(map(len, shards)) == [1, 10]


def test_greedy_plan_stays_within_four_thirds_of_the_best_split():
    costs = [7, 7, 6, 6, 5, 4, 4, 3, 2]
    best = min(
        max(sum(c for c, s in zip(costs, assignment) if s == k) for k in range(3))
        for assignment in itertools.product(range(3), repeat=len(costs))
    )
    makespan = max(sum(costs[i] for i in shard) for shard in shard_by_cost(costs, 3))
    assert makespan <= best * 4 / 3


def test_request_cost_counts_text_and_generation_budget():
    assert request_cost(ClassifyRequest("abcd", "ef")) == 6
    assert request_cost(LoglikelihoodRequest("abc", " d")) == 5
    assert request_cost(("hello",), GenerationOptions(max_new_tokens=10)) == 5 + 40
    assert request_cost(ClassifyRequest("")) == 1  # never zero: every request costs a slot


def test_single_process_passthrough_calls_compute_once_in_order():
    calls = []

    def compute(batch):
        calls.append(list(batch))
        return [text.upper() for text in batch]

    assert compute_sharded(["a", "b", "c"], [1, 1, 1], compute) == ["A", "B", "C"]
    assert calls == [["a", "b", "c"]]
    with pytest.raises(RuntimeError, match="2 responses for 3 requests"):
        compute_sharded(["a", "b", "c"], [1, 1, 1], lambda batch: batch[:2])


def test_launch_environment_rejects_inconsistent_rank():
    assert launch_environment({}) == DistributedContext()
    assert launch_environment({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == DistributedContext(1, 4, 1)
    with pytest.raises(UsageError, match="RANK=4 and WORLD_SIZE=2"):
        launch_environment({"RANK": "4", "WORLD_SIZE": "2"})
    with pytest.raises(UsageError, match="WORLD_SIZE='two'"):
        launch_environment({"WORLD_SIZE": "two"})


def test_cpu_ranks_keep_the_requested_device():
    context = DistributedContext(rank=1, world_size=2, local_rank=1)
    assert device_for_rank("cpu", context) == "cpu"
    import torch

    expected = "cuda:1" if torch.cuda.is_available() else "auto"
    assert device_for_rank("auto", context) == expected


def test_device_map_auto_loads_through_accelerate_with_unchanged_predictions(tmp_path, reviews_task, tiny_classifier):
    pytest.importorskip("accelerate")
    common = dict(model=str(tiny_classifier), tasks=["mine/reviews"], data_dir=reviews_task / "data", tasks_dirs=[reviews_task / "tasks"])
    plain = run_evaluation(RunConfig(**common, output=tmp_path / "plain"))
    mapped = run_evaluation(RunConfig(**common, output=tmp_path / "mapped", device_map="auto"))
    assert mapped.record.model.notes["device_map"] == {"requested": "auto", "devices": ["cpu"]}
    assert mapped.record.settings["device_map"] == "auto"
    assert [r["prediction"] for r in read_samples(tmp_path / "plain", "mine/reviews")] == [
        r["prediction"] for r in read_samples(tmp_path / "mapped", "mine/reviews")
    ]
    assert plain.record.tasks["mine/reviews"].metrics == mapped.record.tasks["mine/reviews"].metrics


RANK_SCRIPT = """
import json, os, sys
from evalharness.execution.distributed import compute_sharded, distributed_session

out = sys.argv[1]
with distributed_session("cpu") as context:
    calls = []
    def compute(batch):
        calls.append(list(batch))
        return [f"{text}@{context.rank}" for text in batch]
    one = compute_sharded(["only"], [5], compute, context=context)  # rank 1 gets an empty shard
    texts = ["a" * n for n in (9, 1, 1, 4, 3)]
    five = compute_sharded(texts, [len(t) for t in texts], compute, context=context)
    try:  # rank 1 asks for different requests: both ranks must refuse, not mix results
        compute_sharded(["x", "y"] if context.rank == 0 else ["x"], [1, 1] if context.rank == 0 else [1], compute, context=context)
        disagreement = None
    except RuntimeError as exc:
        disagreement = str(exc)
    result = {"one": one, "five": five, "calls": calls, "disagreement": disagreement, "backend": context.backend}
with open(os.path.join(out, f"rank{context.rank}.json"), "w") as handle:
    json.dump(result, handle)
"""


def test_gloo_ranks_gather_in_order_with_an_empty_shard_and_refuse_mismatched_requests(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(RANK_SCRIPT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
         "--master-port", str(free_port()), str(script), str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for rank in ranks:  # every rank holds every response, in request order
        assert rank["backend"] == "gloo"
        assert rank["one"] == ["only@0"]
        assert rank["five"] == ["aaaaaaaaa@0", "a@1", "a@1", "aaaa@1", "aaa@1"]  # 9 | 4+3+1+1
        assert "ranks disagree" in rank["disagreement"]
    assert ranks[1]["calls"][0] == ["a", "a", "aaaa", "aaa"]  # never called with an empty shard
