"""Sweeps (issue 10): models × task groups locally and on a local Ray instance, with a worker
killed mid-job, a job that fails for good, fsspec outputs and the leaderboard at the end."""

from __future__ import annotations

import json

import pytest

from evalharness.errors import SpecError, UsageError
from evalharness.records.record import load_record, read_samples
from evalharness.evaluation.sweep import Job, SweepSpec, load_sweep_spec, plan_jobs, run_sweep
from evalharness.testing.faults import CrashOnce
from tests.test_distributed import SENTENCES, TASK


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    """A task folder and its data (14 short reviews), shared by the module's sweeps."""
    root = tmp_path_factory.mktemp("reviews")
    (root / "data" / "reviews").mkdir(parents=True)
    rows = "".join(f"{text}\t{label}\n" for text, label in SENTENCES)
    (root / "data" / "reviews" / "dev.tsv").write_text("sentence\tlabel\n" + rows, encoding="utf-8")
    (root / "tasks" / "mine").mkdir(parents=True)
    (root / "tasks" / "mine" / "reviews.yaml").write_text(TASK, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module (starting one costs seconds)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def run_options(reviews):
    return {"data_dir": str(reviews / "data"), "tasks_dirs": [str(reviews / "tasks")], "batch_size": 4, "n_resamples": 50}


@pytest.mark.slow  # ~20 s: two workers import torch, one is killed and replaced
def test_killed_ray_worker_is_retried_and_nothing_is_lost(tmp_path, local_ray, reviews, tiny_classifier, tiny_causal_lm):
    marker = tmp_path / "crashed-once"
    output = f"file://{tmp_path / 'sweep'}"  # an fsspec URL: each worker writes locally, then uploads
    spec = SweepSpec(
        models=[str(tiny_classifier), str(tiny_causal_lm)], tasks=["mine/reviews"], output=output,
        local_ray=2, max_retries=2, run=run_options(reviews),
    )
    messages = []
    result = run_sweep(spec, progress=messages.append, after_evaluation=CrashOnce(str(marker)))

    assert marker.exists(), "the fault injection did not fire: the retry path was not exercised"
    assert [o.ok for o in result.outcomes] == [True, True] and not result.failed
    for job in plan_jobs(spec):
        run_dir = tmp_path / "sweep" / job.key
        record = load_record(run_dir)
        assert record.tasks["mine/reviews"].n_examples == len(SENTENCES)
        assert len(read_samples(run_dir, "mine/reviews")) == len(SENTENCES)
    board = json.loads((tmp_path / "sweep" / "leaderboard" / "leaderboard.json").read_text())
    assert result.leaderboard == f"{output}/leaderboard"
    assert len(board["rows"]) == 2
    assert any("2 done, 0 running, 0 failed" in message for message in messages)


def test_failed_ray_job_is_reported_without_losing_the_others(tmp_path, local_ray, reviews, tiny_classifier):
    spec = SweepSpec(
        models=[str(tiny_classifier), str(tmp_path / "no-such-checkpoint")], tasks=["mine/reviews"],
        output=str(tmp_path / "sweep"), local_ray=2, max_retries=1, run=run_options(reviews),
    )
    result = run_sweep(spec, progress=lambda message: None)
    assert [o.ok for o in result.outcomes] == [True, False]
    failed = result.failed[0]
    assert failed.job.key == "no-such-checkpoint/mine__reviews" and "ModelError" in failed.error
    assert load_record(tmp_path / "sweep" / result.outcomes[0].job.key).tasks["mine/reviews"].metrics["accuracy"].n == 14
    assert (tmp_path / "sweep" / "leaderboard" / "leaderboard.csv").is_file()


def test_local_sweep_from_a_config_file_exits_1_and_lists_the_failed_job(cli, tmp_path, reviews, tiny_classifier):
    config = tmp_path / "sweep.yaml"
    config.write_text(
        f"models: ['{tiny_classifier}', '{tmp_path / 'missing'}']\n"
        f"tasks: [mine/reviews]\n"
        f"output: {tmp_path / 'out'}\n"
        f"run: {json.dumps(run_options(reviews))}\n",
        encoding="utf-8",
    )
    result = cli("sweep", "--config", str(config), "--limit", "6")
    assert result.returncode == 1, result.stderr
    assert "1 of 2 jobs failed" in result.stderr and "missing/mine__reviews" in result.stderr
    record = load_record(tmp_path / "out" / tiny_classifier.name / "mine__reviews")
    assert record.tasks["mine/reviews"].n_examples == 6  # the command line's --limit overrides the file
    assert (tmp_path / "out" / "leaderboard" / "leaderboard.md").is_file()

    again = cli("sweep", "--config", str(config), "--models", str(tiny_classifier), "--resume")
    assert again.returncode == 0, again.stderr
    assert "already in" in again.stderr  # resume: the finished job is not run again
    assert load_record(tmp_path / "out" / tiny_classifier.name / "mine__reviews").run_id == record.run_id


def test_sweep_file_with_unknown_key_is_refused(tmp_path):
    config = tmp_path / "sweep.yaml"
    config.write_text("models: [a]\ntasks: [glue]\noutput: out\ngpus: 1\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"sweep.yaml:4: gpus: unknown key .*did you mean 'gpus_per_job'"):
        load_sweep_spec(config)
    config.write_text("models: [a, a]\ntasks: [glue]\noutput: out\n", encoding="utf-8")
    with pytest.raises(SpecError, match="models: .*listed more than once: a"):
        load_sweep_spec(config)


def test_two_models_with_one_folder_name_would_overwrite_each_other(tmp_path):
    (tmp_path / "a" / "model").mkdir(parents=True)
    (tmp_path / "b" / "model").mkdir(parents=True)
    spec = SweepSpec(models=[str(tmp_path / "a" / "model"), str(tmp_path / "b" / "model")], tasks=["glue"], output="out")
    with pytest.raises(UsageError, match="share the output folder 'model/glue'"):
        plan_jobs(spec)
    assert Job("org/bert-base", "glue/sst2").key == "org__bert-base/glue__sst2"


def test_unknown_output_filesystem_stops_before_any_job_runs(tmp_path):
    spec = SweepSpec(models=[str(tmp_path / "never-loaded")], tasks=["glue"], output="nosuchfs://bucket/sweep")
    with pytest.raises(UsageError, match="--output nosuchfs://bucket/sweep: .*nosuchfs"):
        run_sweep(spec, progress=lambda message: None)


def test_sweep_without_ray_address_runs_locally():
    assert SweepSpec(models=["m"], tasks=["t"], output="o").executor == "local"
    assert SweepSpec(models=["m"], tasks=["t"], output="o", ray_address="auto").executor == "ray"
    with pytest.raises(ValueError, match="either ray_address or local_ray"):
        SweepSpec(models=["m"], tasks=["t"], output="o", ray_address="auto", local_ray=2)
