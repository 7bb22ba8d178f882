"""Run records: round trip, atomic writes, and refusal of unknown or corrupted records."""

from __future__ import annotations

import json

import pytest

from evalharness.errors import RecordError
from evalharness.records.record import (
    DataEntry,
    MetricEntry,
    ModelEntry,
    RunRecord,
    TaskEntry,
    atomic_write_text,
    load_record,
    samples_path,
    write_record,
)


def make_record() -> RunRecord:
    metric = MetricEntry(metric="accuracy", value=91.5, ci=(89.0, 94.0), stderr=1.2, ci_method="analytic-t-0.95", n=10,
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
