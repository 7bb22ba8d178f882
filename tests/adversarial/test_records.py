"""Issue 14, class 4: run directories and records.

A second run into a directory keeps (or refuses, saying why) the tasks already there;
``results.json`` and its samples change together and a samples file altered afterwards is
refused; concurrent writers lose nothing; files follow the umask; records whose numbers a
metric cannot produce are refused on load, naming the file and the field.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from evalharness.errors import RecordError
from evalharness.records.record import load_record, read_samples, write_samples
from evalharness.records.store import merge_records, update_record
from tests.conftest import CORPUS, REPO
from tests.inprocess import main  # noqa: F401 - the in-process CLI fixture
from tests.record_factory import metric, task, write_run

TASK = """\
version: 1
kind: classification
data: {{local: {{files: [{name}.tsv], format: tsv}}}}
labels: [negative, positive]
metrics: [accuracy]
"""


def write_tasks(root: Path, names=("alpha", "beta"), n: int = 12) -> Path:
    """Small classification tasks ``mine/<name>`` with their data, under ``root``."""
    (root / "tasks" / "mine").mkdir(parents=True, exist_ok=True)
    for offset, name in enumerate(names):
        (root / "tasks" / "mine" / f"{name}.yaml").write_text(TASK.format(name=name), encoding="utf-8")
        lines = ["text\tlabel"] + [
            f"{CORPUS[(i + offset) % 8]} {i}\t{'positive' if (i + offset) % 3 else 'negative'}" for i in range(n)
        ]
        (root / f"{name}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def run_args(model: Path, root: Path, out: Path, tasks: str, *extra: str) -> list[str]:
    return ["run", "--model", str(model), "--tasks", tasks, "--tasks-dir", str(root / "tasks"),
            "--data-dir", str(root), "--output", str(out), "--batch-size", "4", *extra]


def score_args(root: Path, out: Path, name: str, predictions: Path, *extra: str) -> list[str]:
    return ["score", "--task", f"mine/{name}", "--predictions", str(predictions),
            "--tasks-dir", str(root / "tasks"), "--data-dir", str(root), "--run-dir", str(out),
            "--name", "system", "--n-resamples", "20", *extra]


def predictions_file(root: Path, name: str, n: int = 12, flip: int = 0) -> Path:
    labels = ["positive" if i % 2 else "negative" for i in range(n)]
    labels[:flip] = ["positive" if label == "negative" else "negative" for label in labels[:flip]]
    path = root / f"{name}-{flip}.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "prediction": label}) + "\n" for i, label in enumerate(labels)), encoding="utf-8")
    return path


def samples_files(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in (out / "samples").rglob("*.jsonl"))


# -- merging ----------------------------------------------------------------------------------


def test_second_run_with_other_tasks_keeps_the_earlier_tasks(main, tmp_path, tiny_classifier):
    root = write_tasks(tmp_path)
    out = tmp_path / "run"
    assert main(*run_args(tiny_classifier, root, out, "mine/alpha")).returncode == 0
    first = load_record(out)
    second = main(*run_args(tiny_classifier, root, out, "mine/beta"))
    assert second.returncode == 0, second.stderr
    assert "added mine/beta" in second.stderr and "kept mine/alpha (from an earlier run in this directory)" in second.stderr
    record = load_record(out)
    assert list(record.tasks) == ["mine/alpha", "mine/beta"]
    assert record.tasks["mine/alpha"] == first.tasks["mine/alpha"]  # kept as it was
    assert record.run_id == first.run_id and record.settings["tasks"] == ["mine/alpha", "mine/beta"]
    assert len(read_samples(out, "mine/alpha")) == 12 and len(read_samples(out, "mine/beta")) == 12


def test_second_run_of_another_checkpoint_into_the_directory_is_refused_naming_the_difference(
    main, tmp_path, tiny_classifier, tiny_generic_classifier
):
    root = write_tasks(tmp_path)
    out = tmp_path / "run"
    assert main(*run_args(tiny_classifier, root, out, "mine/alpha")).returncode == 0
    before = (out / "results.json").read_bytes()
    other = main(*run_args(tiny_generic_classifier, root, out, "mine/beta", "--label-map", "LABEL_0=negative,LABEL_1=positive"))
    assert other.returncode == 2, other.stderr
    assert str(out / "results.json") in other.stderr and "model fingerprint" in other.stderr
    assert "running mine/beta" not in other.stderr  # refused before the forward passes
    assert (out / "results.json").read_bytes() == before and len(samples_files(out)) == 1


def test_merge_with_a_different_seed_is_refused_naming_the_setting(main, tmp_path, tiny_classifier):
    root = write_tasks(tmp_path)
    out = tmp_path / "run"
    assert main(*run_args(tiny_classifier, root, out, "mine/alpha")).returncode == 0
    before = (out / "results.json").read_bytes()
    other = main(*run_args(tiny_classifier, root, out, "mine/beta", "--seed", "7"))
    assert other.returncode == 2 and "settings.seed: 1234 here, 7 now" in other.stderr, other.stderr
    assert "running mine/beta" not in other.stderr
    assert (out / "results.json").read_bytes() == before


def test_rerun_with_other_settings_that_replaces_every_task_is_allowed(main, tmp_path, tiny_classifier):
    """Nothing of the earlier run is kept, so nothing would be misdescribed: a plain rerun."""
    root = write_tasks(tmp_path)
    out = tmp_path / "run"
    assert main(*run_args(tiny_classifier, root, out, "mine/alpha")).returncode == 0
    again = main(*run_args(tiny_classifier, root, out, "mine/alpha", "--limit", "6"))
    assert again.returncode == 0 and "replaced mine/alpha" in again.stderr, again.stderr
    record = load_record(out)
    assert record.tasks["mine/alpha"].n_examples == 6 and record.settings["limit"] == 6
    assert len(samples_files(out)) == 1  # the superseded samples file was removed


def test_unreadable_record_in_the_output_directory_is_never_overwritten(main, tmp_path, tiny_classifier):
    root = write_tasks(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text('{"schema_version": 1, "tasks": ', encoding="utf-8")
    result = main(*run_args(tiny_classifier, root, out, "mine/alpha"))
    assert result.returncode == 2 and "will not overwrite it" in result.stderr and str(out / "results.json") in result.stderr
    assert "running mine/alpha" not in result.stderr
    assert (out / "results.json").read_text(encoding="utf-8") == '{"schema_version": 1, "tasks": '


def test_score_run_dir_of_another_system_is_refused_before_scoring(main, tmp_path):
    root = write_tasks(tmp_path)
    out = tmp_path / "run"
    assert main(*score_args(root, out, "alpha", predictions_file(root, "alpha"))).returncode == 0
    before = (out / "results.json").read_bytes()
    other = main(*score_args(root, out, "beta", predictions_file(root, "beta"))[:-2], "--name", "another")
    assert other.returncode == 2 and "model name: 'system' here, 'another' now" in other.stderr, other.stderr
    assert (out / "results.json").read_bytes() == before and len(samples_files(out)) == 1


def test_parallel_score_run_dir_processes_lose_no_task(tmp_path):
    names = ("alpha", "beta", "gamma", "delta")
    root = write_tasks(tmp_path, names)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    processes = [
        subprocess.Popen([sys.executable, "-m", "evalharness", *score_args(root, out, name, predictions_file(root, name))],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in names
    ]
    outcomes = [(p.wait(timeout=300), p.stderr.read()) for p in processes]
    for process in processes:
        process.stdout.close(), process.stderr.close()
    assert [code for code, _ in outcomes] == [0, 0, 0, 0], outcomes
    record = load_record(out)
    assert sorted(record.tasks) == sorted(f"mine/{name}" for name in names)
    assert sorted(record.model.notes["predictions"]) == sorted(record.tasks)
    assert all(len(read_samples(out, name)) == 12 for name in record.tasks)
    assert len(samples_files(out)) == 4


def test_rescored_task_changed_by_another_writer_meanwhile_is_not_overwritten(main, tmp_path, monkeypatch):
    from evalharness.external import rescore

    root = write_tasks(tmp_path)
    out = tmp_path / "run"
    assert main(*score_args(root, out, "alpha", predictions_file(root, "alpha"))).returncode == 0
    real = rescore._rescore_task

    def rescore_while_another_score_lands(*args, **kwargs):
        entry = real(*args, **kwargs)
        assert main(*score_args(root, out, "alpha", predictions_file(root, "alpha", flip=3))).returncode == 0
        return entry

    monkeypatch.setattr(rescore, "_rescore_task", rescore_while_another_score_lands)
    result = main("rescore", str(out), "--tasks-dir", str(root / "tasks"), "--data-dir", str(root))
    assert result.returncode == 2 and "changed while it was being rescored" in result.stderr, result.stderr
    rows = read_samples(out, "mine/alpha")  # the other writer's predictions survive
    assert rows[0]["prediction"] == "positive"


# -- record and samples as one unit -------------------------------------------------------------


def test_samples_file_altered_after_the_run_is_refused_by_its_readers(main, tmp_path):
    root = write_tasks(tmp_path)
    out = tmp_path / "run"
    assert main(*score_args(root, out, "alpha", predictions_file(root, "alpha"))).returncode == 0
    path = out / load_record(out).tasks["mine/alpha"].samples
    rows = path.read_text(encoding="utf-8").splitlines()
    first = json.loads(rows[0])
    first["prediction"] = "positive" if first["prediction"] == "negative" else "negative"
    path.write_text("\n".join([json.dumps(first), *rows[1:]]) + "\n", encoding="utf-8")  # still 12 valid lines
    with pytest.raises(RecordError, match="does not match the sha256"):
        read_samples(out, "mine/alpha")
    for command in (["compare", str(out), str(out)], ["rescore", str(out), "--tasks-dir", str(root / "tasks"), "--data-dir", str(root)]):
        result = main(*command)
        assert result.returncode == 2 and str(path) in result.stderr and "sha256" in result.stderr, result.stderr


@pytest.mark.parametrize("crash_at", ["record", "cleanup"])
def test_crash_while_replacing_a_task_leaves_a_consistent_record_and_samples_pair(tmp_path, monkeypatch, crash_at):
    """Killed after the new samples are written but before ``results.json`` is replaced: the
    old pair is intact; killed after the replacement: the new pair is."""
    from evalharness.records import store

    out = write_run(tmp_path / "run", model="m", tasks={"t": task({"accuracy": metric(50.0, n=4)}, n=4)})
    old = load_record(out)
    new_rows = [dict(row, prediction="positive") for row in read_samples(out, "t")]
    new_entry = old.tasks["t"].model_copy(update={"samples": write_samples(out, "t", new_rows)})
    new = old.model_copy(update={"tasks": {"t": new_entry}})
    target = store.write_record if crash_at == "record" else store._remove_superseded

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(store, target.__name__, killed)
    with pytest.raises(KeyboardInterrupt):
        update_record(out, lambda existing: merge_records(out, existing, new))
    expected = old if crash_at == "record" else new
    assert load_record(out) == expected
    assert read_samples(out, "t") == (read_samples(out, "t") if crash_at == "record" else new_rows)
    assert not list(out.rglob("*.tmp"))


def test_record_and_samples_follow_the_umask(main, tmp_path, tiny_classifier):
    root = write_tasks(tmp_path)
    out = tmp_path / "run"
    previous = os.umask(0o002)
    try:
        assert main(*run_args(tiny_classifier, root, out, "mine/alpha")).returncode == 0
    finally:
        os.umask(previous)
    record = load_record(out)
    for path in (out / "results.json", out / record.tasks["mine/alpha"].samples, out / "cache" / "predictions.sqlite", out / ".lock", out / ".record.lock"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o664, path


# -- semantic validation on load -----------------------------------------------------------------


def _set(path: str, value):
    def change(data: dict) -> None:
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value

    return change


IMPLAUSIBLE = {
    "accuracy_above_100": (_set("tasks.t.metrics.accuracy.value", 150.0), "tasks.t.metrics.accuracy.value: 150 is outside accuracy's range [0, 100]"),
    "infinite_value": (None, "tasks.t.metrics.accuracy.value: inf is not a finite number"),
    "zero_examples_behind_a_value": (_set("tasks.t.metrics.accuracy.n", 0), "tasks.t.metrics.accuracy.n: 0"),
    "more_examples_than_the_task": (_set("tasks.t.metrics.accuracy.n", 5), "tasks.t.metrics.accuracy.n: 5 is more than the task's n_examples 4"),
    "interval_without_its_value": (_set("tasks.t.metrics.accuracy.ci", [70.0, 80.0]), "tasks.t.metrics.accuracy.ci: [70, 80] does not contain the value 50"),
    "inverted_interval": (_set("tasks.t.metrics.accuracy.ci", [60.0, 40.0]), "tasks.t.metrics.accuracy.ci: low 60 is above high 40"),
    "negative_stderr": (_set("tasks.t.metrics.accuracy.stderr", -1.0), "tasks.t.metrics.accuracy.stderr: -1.0 is below 0"),
    "flipped_direction": (_set("tasks.t.metrics.accuracy.higher_is_better", False), "tasks.t.metrics.accuracy.higher_is_better: False"),
    "no_examples": (_set("tasks.t.n_examples", 0), "tasks.t.n_examples: 0"),
    "group_out_of_range": (_set("tasks.t.metrics.accuracy.groups", {"g": {"value": -3.0, "ci": [None, None], "n": 2}}), "tasks.t.metrics.accuracy.groups.g.value: -3 is outside"),
    "empty_group": (_set("tasks.t.metrics.accuracy.groups", {"g": {"value": None, "ci": [None, None], "n": 0}}), "tasks.t.metrics.accuracy.groups.g.n: 0"),
    "seed_out_of_range": (_set("settings.seed", -1), "settings.seed: -1 is not an integer between 0 and 4294967295"),
    "number_written_as_a_string": (_set("tasks.t.metrics.accuracy.value", "50.0"), "tasks.t.metrics.accuracy.value: Input should be a valid number"),
    "boolean_as_a_count": (_set("tasks.t.metrics.accuracy.n", True), "tasks.t.metrics.accuracy.n: Input should be a valid integer"),
}


@pytest.mark.parametrize("case", sorted(IMPLAUSIBLE))
def test_record_with_a_number_no_metric_can_produce_is_refused_naming_the_field(main, tmp_path, case):
    good = write_run(tmp_path / "good", model="good", tasks={"t": task({"accuracy": metric(50.0, n=4)}, n=4)})
    bad = write_run(tmp_path / "bad", model="bad", tasks={"t": task({"accuracy": metric(50.0, n=4)}, n=4)})
    change, message = IMPLAUSIBLE[case]
    results = bad / "results.json"
    if change is None:  # JSON has no Infinity, but 1e999 parses to it
        results.write_text(results.read_text(encoding="utf-8").replace('"value": 50.0', '"value": 1e999', 1), encoding="utf-8")
    else:
        data = json.loads(results.read_text(encoding="utf-8"))
        change(data)
        results.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(RecordError) as caught:
        load_record(bad)
    assert str(results) in str(caught.value) and message in str(caught.value)
    result = main("compare", str(good), str(bad))
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_unknown_metric_name_is_checked_for_everything_but_its_range(tmp_path):
    run = write_run(tmp_path / "r", model="m", tasks={"t": task({"m": metric(1e6, name="from_a_newer_release", n=4)}, n=4)})
    assert load_record(run).tasks["t"].metrics["m"].value == 1e6
    data = json.loads((run / "results.json").read_text(encoding="utf-8"))
    data["tasks"]["t"]["metrics"]["m"]["n"] = 9
    (run / "results.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(RecordError, match="tasks.t.metrics.m.n: 9 is more than"):
        load_record(run)


def test_interval_that_misses_its_estimate_is_widened_when_written(tmp_path):
    """A percentile bootstrap of a biased statistic can leave the point estimate outside the
    interval; the written record contains it (conservatively) instead of being unreadable."""
    from evalharness.types import GroupResult, containing

    assert containing(30.0, 31.0, 35.0) == (30.0, 35.0)
    assert GroupResult.computed(36.0, 31.0, 35.0, n=5).ci == (31.0, 36.0)
    assert containing(float("nan"), 31.0, 35.0) == (31.0, 35.0)
    # and through a metric's result into a written record, which reads back whole
    import numpy as np

    from evalharness.metrics.registry import build_metric
    from evalharness.stats import Interval
    from tests.record_factory import task, write_run

    metric = build_metric("accuracy")
    metric.interval = lambda stats, **_: Interval(0.8, 0.9, 0.05, "bootstrap-percentile")  # misses the value
    result = metric.compute(["a", "b"], ["a", "a"], rng=np.random.default_rng(0), n_resamples=10)
    assert result.value is not None and result.ci[0] <= result.value <= result.ci[1]
    run = write_run(tmp_path / "run", model="m", tasks={"t": task({"accuracy": result}, n=2)})
    written = load_record(run).tasks["t"].metrics["accuracy"]
    assert written.ci[0] <= written.value <= written.ci[1]
