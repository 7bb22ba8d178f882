"""``evalharness rescore``: metrics recomputed from stored predictions, never from the model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from sklearn.metrics import f1_score

from evalharness.records.record import load_record, read_samples
from tests.conftest import REPO
from tests.inprocess import main  # noqa: F401 - the in-process CLI fixture
from tests.test_resume import TASK, _write_task


def _run(main, model, root, out):
    result = main("run", "--model", str(model), "--tasks", "reviews", "--tasks-dir", str(root / "tasks"),
                  "--data-dir", str(root), "--output", str(out), "--limit", "40", "--batch-size", "8")
    assert result.returncode == 0, result.stderr
    return load_record(out)


def test_rescore_adds_a_new_metric_without_the_checkpoint(main, tmp_path, tiny_classifier):
    model = shutil.copytree(tiny_classifier, tmp_path / "checkpoint")
    root = _write_task(tmp_path)
    (root / "tasks" / "reviews.yaml").write_text(TASK.replace("metrics: [accuracy, {name: f1, settings: {positive_label: positive}}]", "metrics: [accuracy]"))
    out = tmp_path / "run"
    before = _run(main, model, root, out)
    assert set(before.tasks["reviews"].metrics) == {"accuracy"}

    shutil.rmtree(model)  # rescoring must not need (or load) the model
    (root / "tasks" / "reviews.yaml").write_text(TASK, encoding="utf-8")  # f1 added to the YAML
    code = (
        "import sys\nfrom evalharness.cli import main\n"
        f"code = main(['rescore', {str(out)!r}, '--tasks-dir', {str(root / 'tasks')!r}])\n"
        "print('LOADED', [m for m in ('torch', 'transformers') if m in sys.modules], code)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert "LOADED [] 0" in result.stdout, result.stdout + result.stderr

    after = load_record(out).tasks["reviews"]
    assert set(after.metrics) == {"accuracy", "f1"}
    assert after.metrics["accuracy"] == before.tasks["reviews"].metrics["accuracy"]
    samples = read_samples(out, "reviews")
    golds = [row["gold"] for row in samples]
    predictions = [row["prediction"] for row in samples]
    assert after.metrics["f1"].value == pytest.approx(100 * f1_score(golds, predictions, pos_label="positive"), abs=1e-9)
    assert [row["prediction"] for row in samples] == predictions and all("f1" in row["scores"] for row in samples)
    assert after.execution["rescored_from"] == "samples" and after.execution["cache"] == before.tasks["reviews"].execution["cache"]


def test_rescore_refuses_when_the_data_changed_since_the_run(main, tmp_path, tiny_classifier):
    root = _write_task(tmp_path)
    out = tmp_path / "run"
    _run(main, tiny_classifier, root, out)
    data = root / "reviews.tsv"
    data.write_text(data.read_text().replace("\tpositive", "\tnegative", 1))
    result = main("rescore", str(out), "--tasks-dir", str(root / "tasks"))
    assert result.returncode == 2 and "fingerprint" in result.stderr and "reviews" in result.stderr


def test_rescore_of_an_unknown_task_names_the_run_and_its_tasks(main, tmp_path, tiny_classifier):
    root = _write_task(tmp_path)
    out = tmp_path / "run"
    _run(main, tiny_classifier, root, out)
    result = main("rescore", str(out), "--tasks", "glue/sst2", "--tasks-dir", str(root / "tasks"))
    assert result.returncode == 2 and "no task glue/sst2" in result.stderr and "reviews" in result.stderr


def test_a_record_whose_data_dir_is_not_text_is_refused_naming_the_field(main, tmp_path, tiny_classifier):
    """Rescoring reads the data from the run's recorded settings.data_dir; one of another JSON
    type (it was a TypeError traceback) is refused naming the record and field."""
    import json

    root = _write_task(tmp_path)
    out = tmp_path / "run"
    _run(main, tiny_classifier, root, out)
    results = out / "results.json"
    record = json.loads(results.read_text())
    record["settings"]["data_dir"] = 5
    results.write_text(json.dumps(record))
    result = main("rescore", str(out), "--tasks-dir", str(root / "tasks"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{results}: settings.data_dir: expected a string, got a number" in result.stderr
