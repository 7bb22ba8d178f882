"""``--log-to`` and ``publish log``: MLflow metrics read back from a local file store equal the
record; a tracker that is missing is refused before any work, one that fails after the record
is written says the record is safe."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from evalharness.records.record import load_record
from tests.inprocess import main  # noqa: F401 - pytest fixture
from tests.record_factory import metric, task, write_run
from tests.test_score_command import HYPOTHESES, workspace  # noqa: F401 - pytest fixture

pytest.importorskip("mlflow")


def _client(store: Path):
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(store.resolve().as_uri())
    experiment = client.get_experiment_by_name("evalharness")
    return client, (client.search_runs([experiment.experiment_id]) if experiment else [])


def _run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run", model="org/model", tasks={
        "glue/sst2": task({"accuracy": metric(87.5, ci=(80.0, 95.0), stderr=3.5, n=8, groups={"long": (75.0, 50.0, 100.0, 4)})}, n=8),
        "glue/cola": task({"mcc": metric(None, name="mcc", n=8)}, n=8),
    })


def test_mlflow_metrics_read_back_from_the_file_store_equal_the_record(main, tmp_path):
    run, store = _run(tmp_path), tmp_path / "mlruns"
    result = main("publish", "log", str(run), "--to", f"mlflow:{store}")
    assert result.returncode == 0, result.stderr
    client, [logged] = _client(store)
    entry = load_record(run).tasks["glue/sst2"].metrics["accuracy"]
    assert logged.data.metrics == {
        "glue/sst2/accuracy": entry.value, "glue/sst2/accuracy.ci_low": entry.ci[0], "glue/sst2/accuracy.ci_high": entry.ci[1],
        "glue/sst2/accuracy.stderr": entry.stderr, "glue/sst2/accuracy.group.long": 75.0,
    }
    assert logged.data.params["settings/seed"] == "1234" and logged.data.params["model/fingerprint"] == load_record(run).model.fingerprint
    assert logged.data.tags["signature/glue/sst2/accuracy"] == entry.signature.format()
    assert logged.data.tags["evalharness.undefined"] == "tasks.glue/cola.metrics.mcc.value"
    assert logged.info.status == "FINISHED"
    assert sorted(a.path for a in client.list_artifacts(logged.info.run_id)) == ["report.html", "results.json", "signatures.json"]


def test_the_same_record_is_not_logged_twice(main, tmp_path):
    run, store = _run(tmp_path), tmp_path / "mlruns"
    assert main("publish", "log", str(run), "--to", f"mlflow:{store}").returncode == 0
    again = main("publish", "log", str(run), "--to", f"mlflow:{store}")
    assert again.returncode == 0 and "already logged as MLflow run" in again.stdout
    assert len(_client(store)[1]) == 1


def test_score_logs_to_mlflow_after_writing_its_record(main, workspace, tmp_path):  # noqa: F811
    hyp = workspace / "system.txt"
    hyp.write_text("\n".join(HYPOTHESES) + "\n")
    run_dir, store = workspace / "runs" / "system", tmp_path / "mlruns"
    result = main("score", "--task", "tmp/mt", "--predictions", str(hyp), "--data-dir", str(workspace / "data"),
                  "--tasks-dir", str(workspace / "tasks"), "--run-dir", str(run_dir), "--log-to", f"mlflow:{store}")
    assert result.returncode == 0, result.stderr
    _, [logged] = _client(store)
    record = load_record(run_dir)
    assert logged.data.metrics["tmp/mt/bleu"] == record.tasks["tmp/mt"].metrics["bleu"].value
    assert logged.data.metrics["tmp/mt/chrf.ci_high"] == record.tasks["tmp/mt"].metrics["chrf"].ci[1]


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_a_tracker_whose_package_is_missing_is_refused_before_scoring(main, workspace):  # noqa: F811
    hyp = workspace / "system.txt"
    hyp.write_text("\n".join(HYPOTHESES) + "\n")
    run_dir = workspace / "runs" / "system"
    result = main("score", "--task", "tmp/mt", "--predictions", str(hyp), "--data-dir", str(workspace / "data"),
                  "--tasks-dir", str(workspace / "tasks"), "--run-dir", str(run_dir), "--log-to", "wandb:proj")
    assert result.returncode == 2 and "--log-to wandb:proj: the 'wandb' package is not installed (pip install wandb)" in result.stderr
    assert not run_dir.exists()
    no_record = main("score", "--task", "tmp/mt", "--predictions", str(hyp), "--log-to", "mlflow")
    assert no_record.returncode == 2 and "--log-to logs a run record: give --run-dir" in no_record.stderr


def test_an_unknown_tracker_is_a_usage_error_with_a_suggestion(cli, tmp_path):
    result = cli("publish", "log", str(tmp_path), "--to", "mlfow:x", timeout=120)
    assert result.returncode == 2 and "unknown tracker 'mlfow'; did you mean 'mlflow'?" in result.stderr


def test_a_tracker_that_fails_after_the_record_is_written_says_the_record_is_safe(main, workspace, tmp_path):  # noqa: F811
    hyp = workspace / "system.txt"
    hyp.write_text("\n".join(HYPOTHESES) + "\n")
    run_dir = workspace / "runs" / "system"
    unusable = f"mlflow:unsupported-scheme://{tmp_path}/store"
    result = main("score", "--task", "tmp/mt", "--predictions", str(hyp), "--data-dir", str(workspace / "data"),
                  "--tasks-dir", str(workspace / "tasks"), "--run-dir", str(run_dir), "--log-to", unusable)
    assert result.returncode == 2
    assert "MLflow tracking store unsupported-scheme://" in result.stderr
    assert f"the run record is complete at {run_dir}; log it again with 'evalharness publish log {run_dir} --to {unusable}'" in result.stderr
    assert load_record(run_dir).tasks["tmp/mt"].metrics["bleu"].value is not None


def test_run_logs_the_evaluated_checkpoint_to_mlflow(main, tiny_classifier, tmp_path):
    from evalharness.testing.demo import generate_sentiment_data

    generate_sentiment_data(tmp_path / "data" / "demo" / "sentiment", n_train=4, n_test=12, seed=3)
    run_dir, store = tmp_path / "run", tmp_path / "mlruns"
    result = main("run", "--model", str(tiny_classifier), "--tasks", "demo/sentiment", "--data-dir", str(tmp_path / "data"),
                  "--output", str(run_dir), "--log-to", f"mlflow:{store}")
    assert result.returncode == 0, result.stderr
    assert "logged to MLflow run" in result.stderr
    _, [logged] = _client(store)
    record = load_record(run_dir)
    for key, entry in record.tasks["demo/sentiment"].metrics.items():
        assert logged.data.metrics[f"demo/sentiment/{key}"] == entry.value
        assert logged.data.tags[f"signature/demo/sentiment/{key}"] == entry.signature.format()
    assert logged.data.params["model/fingerprint"] == record.model.fingerprint
