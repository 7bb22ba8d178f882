"""Run records: round trip, atomic writes, and refusal of unknown or corrupted records."""

from __future__ import annotations

import json

import pytest

from evalharness.errors import RecordError
from evalharness.records.record import (
    DataEntry,
    ModelEntry,
    RunRecord,
    TaskEntry,
    atomic_write_text,
    load_record,
    samples_path,
    write_record,
)
from evalharness.types import MetricResult


def make_record() -> RunRecord:
    metric = MetricResult(metric="accuracy", value=91.5, ci=(89.0, 94.0), stderr=1.2, ci_method="analytic-t-0.95", n=10,
                         higher_is_better=True, signature="accuracy|impl:sklearn")
    task = TaskEntry(version=1, kind="classification", spec_hash="sha256:0", formulation="classifier_head",
                     n_examples=10, data=DataEntry(source="local", location="x.tsv", fingerprint="sha256:1", n_available=10),
                     metrics={"accuracy": metric}, samples="samples/t.jsonl", seconds=0.1)
    model = ModelEntry(name="m", path="/m", kind="sequence_classifier", fingerprint="sha256:2")
    return RunRecord(run_id="r1", created="2026-01-01T00:00:00+00:00", model=model, tasks={"t": task})


def test_round_trip(tmp_path):
    record = make_record()
    write_record(tmp_path, record)
    assert load_record(tmp_path) == record
    assert json.loads((tmp_path / "results.json").read_text())["schema_version"] == 1


def test_unknown_schema_version_is_refused_clearly(tmp_path):
    data = make_record().model_dump(mode="json") | {"schema_version": 99}
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(RecordError, match="schema_version 99 is not supported"):
        load_record(tmp_path)


def test_truncated_record_is_refused(tmp_path):
    write_record(tmp_path, make_record())
    text = (tmp_path / "results.json").read_text()
    (tmp_path / "results.json").write_text(text[: len(text) // 2])
    with pytest.raises(RecordError, match="not valid JSON.*truncated or corrupted"):
        load_record(tmp_path)


def test_hand_edited_record_with_wrong_type_is_refused(tmp_path):
    data = make_record().model_dump(mode="json")
    data["tasks"]["t"]["metrics"]["accuracy"]["value"] = "high"
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(RecordError, match=r"tasks\.t\.metrics\.accuracy\.value"):
        load_record(tmp_path)


def test_unknown_field_is_refused(tmp_path):
    data = make_record().model_dump(mode="json") | {"surprise": 1}
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(RecordError, match="surprise"):
        load_record(tmp_path)


def test_missing_record(tmp_path):
    with pytest.raises(RecordError, match="no run record here"):
        load_record(tmp_path)


def test_atomic_write_leaves_old_content_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    atomic_write_text(target, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temp file left behind


def test_task_names_cannot_escape_the_run_directory(tmp_path):
    assert samples_path(tmp_path, "glue/sst2") == tmp_path / "samples" / "glue" / "sst2.jsonl"
    with pytest.raises(RecordError, match="outside the run directory"):
        samples_path(tmp_path, "../../etc/x")


def test_a_metric_result_is_the_record_entry_written_and_read_back_unchanged(tmp_path):
    """What a metric computes is what the record keeps: no conversion in between, undefined
    numbers (an F1 with no positive example, a group of one) already None, as JSON null."""
    import numpy as np

    from evalharness.metrics.registry import build_metric
    from evalharness.records.record import load_record
    from tests.record_factory import task, write_run

    rng = np.random.default_rng(0)
    grouped = build_metric("accuracy").compute(["a", "b", "a", "a"], ["a", "b", "b", "a"], rng=rng, groups=["x", "x", "x", "y"])
    undefined = build_metric("f1", {"positive_label": "yes"}).compute(["no", "no"], ["no", "no"], rng=rng)
    assert undefined.value is None and undefined.note
    assert grouped.settings == {} and grouped.metric == "accuracy" and set(grouped.groups) == {"x", "y"}
    run = write_run(tmp_path / "run", model="m", tasks={"t": task({"accuracy": grouped, "f1": undefined}, n=4)})
    stored = load_record(run).tasks["t"].metrics
    assert stored == {"accuracy": grouped, "f1": undefined}
    written = json.loads((run / "results.json").read_text(encoding="utf-8"))["tasks"]["t"]["metrics"]["f1"]
    assert written["value"] is None and written["metric"] == "f1" and written["settings"]["positive_label"] == "yes"


def test_a_nan_in_a_records_free_form_section_is_written_as_null_not_a_crash(tmp_path):
    # JSON has no NaN: a record section given one (the API, a model_copy update) is written as
    # null, as before the sections were typed as JSON, instead of failing the write after the run
    record = make_record().model_copy(update={"settings": {"generation": {"length_penalty": float("nan")}}})
    write_record(tmp_path, RunRecord.model_validate(record.model_dump()))
    assert json.loads((tmp_path / "results.json").read_text())["settings"] == {"generation": {"length_penalty": None}}


def test_samples_scores_that_are_an_empty_list_or_zero_are_refused_not_read_as_no_scores():
    # a falsy value of the wrong type ([], 0, "") was taken for "no scores": every metric then
    # read as undefined without a word
    from evalharness.records.record import row_scores

    assert row_scores({"id": "1"}, "t samples, row 0") == {}
    assert row_scores({"id": "1", "scores": None}, "t samples, row 0") == {}
    for value in ([], 0, "", False):
        with pytest.raises(RecordError, match=r"t samples, row 0: scores: expected an object"):
            row_scores({"id": "1", "scores": value}, "t samples, row 0")


def test_a_record_whose_metric_settings_differ_from_its_signature_is_refused(tmp_path):
    # the settings rebuild the metric (gate, noise, report) and the signature decides what is
    # comparable: a record edited in one place only would be recomputed under one and compared
    # under the other
    import numpy as np

    from evalharness.metrics.registry import build_metric

    result = build_metric("f1", {"positive_label": "pos"}).compute(["pos", "neg"], ["pos", "pos"], rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"differ from the signature's"):
        result.replaced(settings={"positive_label": "neg"})
    record = make_record()
    task = record.tasks["t"].model_copy(update={"metrics": {"f1": result}})
    write_record(tmp_path, record.model_copy(update={"tasks": {"t": task}}))
    data = json.loads((tmp_path / "results.json").read_text())
    data["tasks"]["t"]["metrics"]["f1"]["settings"]["positive_label"] = "neg"
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(RecordError, match=r"differ from the signature's"):
        load_record(tmp_path)
