"""Issue 19, noise floor: ``evalharness noise RUN_DIR`` reruns a seeded sample of a run with
other batch sizes and seeds (fresh caches), re-scores its statistics with other bootstrap
seeds, writes the spread to ``RUN_DIR/noise.json`` without touching the record, and the gate
warns when a limit is not above that floor."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, run_cli
from run_factory import classification, correct_to_predictions, write_run

from evalharness.comparison.gate import evaluate_gate

TASK = "version: 1\nkind: classification\ndata: {local: {files: [sent.tsv], format: tsv}}\nlabels: [negative, positive]\nmetrics: [accuracy, {name: f1, settings: {positive_label: positive}}]\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_classifier) -> Path:
    root = tmp_path_factory.mktemp("noise")
    (root / "tasks" / "mine").mkdir(parents=True)
    (root / "tasks" / "mine" / "sent.yaml").write_text(TASK)
    rng = random.Random(1)
    words = " ".join(CORPUS).split()
    lines = ["id\ttext\tlabel"] + [f"n{i}\t{' '.join(rng.choice(words) for _ in range(rng.randint(2, 14)))}\t{rng.choice(['negative', 'positive'])}" for i in range(120)]
    (root / "data").mkdir()
    (root / "data" / "sent.tsv").write_text("\n".join(lines) + "\n")
    result = run_cli("run", "--model", str(tiny_classifier), "--tasks", "mine/sent", "--tasks-dir", str(root / "tasks"),
                     "--data-dir", str(root / "data"), "--output", str(root / "run"))
    assert result.returncode == 0, result.stderr
    return root


def test_noise_reruns_a_sample_and_records_the_spread_without_touching_the_record(run, cli):
    record = (run / "run" / "results.json").read_text()
    result = cli("noise", str(run / "run"), "--sample", "40", "--batch-sizes", "1,5", "--run-seeds", "1", "--bootstrap-seeds", "3",
                 "--tasks-dir", str(run / "tasks"))
    assert result.returncode == 0, result.stderr
    noise = json.loads((run / "run" / "noise.json").read_text())
    assert noise["schema"] == "evalharness.noise/1" and noise["sample"] == {"size": 40, "seed": 0}
    assert noise["perturbations"] == ["batch_size=1", "batch_size=5", "seed=1235", "bootstrap seeds x4"]
    assert any("dtype" in reason for reason in noise["not_measured"])  # CPU: no other dtype unless asked
    task = noise["tasks"]["mine/sent"]
    assert task["sample"] == 40 and task["of"] == 120
    accuracy = task["metrics"]["accuracy"]
    assert set(accuracy["values"]) == {"recorded", "batch_size=1", "batch_size=5", "seed=1235"}
    # A batch-size change moves a classifier's logits by float noise only: same predictions.
    assert accuracy["spread"] == pytest.approx(0.0, abs=1e-9) and accuracy["floor"] == accuracy["spread"]
    assert set(accuracy["predictions_changed"].values()) == {0}
    assert all(change < 1e-6 for change in accuracy["max_example_change"].values())
    assert accuracy["bootstrap"]["low_spread"] == 0.0  # Wilson: no resampling
    f1 = task["metrics"]["f1"]
    assert f1["bootstrap"]["seeds"] == 4 and f1["bootstrap"]["method"].startswith("bootstrap")
    assert (run / "run" / "results.json").read_text() == record


def test_noise_refuses_data_that_changed_since_the_run(run, tmp_path, cli):
    data = tmp_path / "data"
    data.mkdir()
    lines = (run / "data" / "sent.tsv").read_text().splitlines()
    flipped = [line.replace("\tnegative", "\tpositive") if i else line for i, line in enumerate(lines)]
    (data / "sent.tsv").write_text("\n".join(flipped) + "\n")
    result = cli("noise", str(run / "run"), "--sample", "30", "--batch-sizes", "3", "--run-seeds", "0", "--bootstrap-seeds", "0",
                 "--tasks-dir", str(run / "tasks"), "--data-dir", str(data))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "has another gold answer than in the run; the data changed" in result.stderr
    assert not (tmp_path / "noise.json").exists()


def test_gate_warns_when_a_limit_is_not_above_the_measured_noise_floor(tmp_path):
    golds = list(np.random.default_rng(0).choice(["negative", "positive"], 300))
    correct = np.random.default_rng(1).random(300) < 0.8
    base = write_run(tmp_path / "b", [classification("glue/sst2", golds, correct_to_predictions(golds, correct))], model="b")
    cand = write_run(tmp_path / "c", [classification("glue/sst2", golds, correct_to_predictions(golds, correct))], model="c")
    floor = {"schema": "evalharness.noise/1", "tasks": {"glue/sst2": {"metrics": {"accuracy": {"floor": 1.5}}}}}
    (base / "noise.json").write_text(json.dumps(floor))
    policy = tmp_path / "gates.yaml"
    policy.write_text("rules:\n  - {task: glue/sst2, metric: accuracy, max_drop: 1}\n  - {task: glue/sst2, metric: accuracy, noninferior: {margin: 4}}\n")
    report = evaluate_gate(policy, cand, base)
    drop, noninferior = (rule.checks[0] for rule in report.rules)
    assert drop.noise_warning.startswith("the limit 1 is not above the noise floor 1.5 measured by `evalharness noise`")
    assert noninferior.noise_warning is None
    (base / "noise.json").write_text("{not json")
    with pytest.raises(Exception, match="noise.json: not a noise.json this evalharness reads"):
        evaluate_gate(policy, cand, base)


def test_a_samples_row_whose_stats_are_not_an_object_is_refused_naming_the_row():
    # noise, the sequential gate, compare, reports and leaderboards re-score from samples rows'
    # stats through one reader (noise's own reading was a TypeError or KeyError)
    from evalharness.errors import RecordError
    from evalharness.records.record import samples_stats

    with pytest.raises(RecordError, match=r"samples row 'n1': stats: expected an object, got a string"):
        samples_stats([{"id": "n1", "stats": "0.5"}], "accuracy")
    with pytest.raises(RecordError, match=r"samples row 'n1': stats: no per-example statistics for 'accuracy'"):
        samples_stats([{"id": "n1", "stats": {}}], "accuracy")
    with pytest.raises(RecordError, match=r"statistics for 'accuracy' are not numbers of one shape"):
        samples_stats([{"id": "n1", "stats": {"accuracy": [1.0]}}, {"id": "n2", "stats": {"accuracy": [1.0, 0.0]}}], "accuracy")
    assert samples_stats([{"id": "n1", "stats": {"accuracy": [1.0]}}], "accuracy").tolist() == [[1.0]]


def test_a_noise_file_whose_metrics_are_not_an_object_is_refused_naming_the_field(tmp_path):
    """A noise.json of the right schema with a part of the wrong JSON type (it was an
    AttributeError traceback) is refused naming the field."""
    from evalharness.comparison.noise_floor import noise_floors
    from evalharness.errors import RecordError

    floor = {"schema": "evalharness.noise/1", "tasks": {"glue/sst2": {"metrics": [{"floor": 1.5}]}}}
    (tmp_path / "noise.json").write_text(json.dumps(floor))
    with pytest.raises(RecordError, match=r"noise.json: tasks.glue/sst2.metrics: expected an object, got an array"):
        noise_floors(tmp_path)
    (tmp_path / "noise.json").write_text('["evalharness.noise/1"]')
    with pytest.raises(RecordError, match=r"noise.json: not a noise.json this evalharness reads \(not a JSON object\)"):
        noise_floors(tmp_path)


def test_samples_stats_given_as_text_booleans_or_nulls_are_refused_not_converted():
    # numpy would read "1.5" as 1.5, true as 1.0 and null as NaN: a damaged samples file must not
    # become numbers
    from evalharness.errors import RecordError
    from evalharness.records.record import samples_stats

    for value in (["1.5"], [True], [None]):
        with pytest.raises(RecordError, match=r"statistics for 'accuracy' are not numbers of one shape"):
            samples_stats([{"id": "n1", "stats": {"accuracy": value}}], "accuracy")
    assert samples_stats([{"id": "n1", "stats": {"accuracy": [1, 2]}}], "accuracy").tolist() == [[1.0, 2.0]]


def test_a_noise_floor_that_is_infinite_text_or_boolean_is_refused_naming_the_field(tmp_path):
    # json reads Infinity; true was a floor of 1.0 and text was skipped without a word
    from evalharness.comparison.noise_floor import noise_floors
    from evalharness.errors import RecordError

    for floor in ("Infinity", "true", '"0.5"'):
        (tmp_path / "noise.json").write_text(
            '{"schema": "evalharness.noise/1", "tasks": {"t": {"metrics": {"acc": {"floor": %s}}}}}' % floor
        )
        with pytest.raises(RecordError, match=r"noise.json: tasks\.t\.metrics\.acc\.floor: expected a finite number"):
            noise_floors(tmp_path)
    (tmp_path / "noise.json").write_text('{"schema": "evalharness.noise/1", "tasks": {"t": {"metrics": {"acc": {"floor": null}, "f1": {"floor": 2}}}}}')
    assert noise_floors(tmp_path) == {("t", "f1"): (2.0, str(tmp_path))}
