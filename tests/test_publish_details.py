"""``evalharness publish details``: per-task Parquet files with one stable schema, a split per
run plus ``latest`` in the dataset card, one model per folder."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from evalharness.publish.details import SCHEMA_VERSION, details_schema
from evalharness.records.record import read_samples
from tests.inprocess import main  # noqa: F401 - pytest fixture
from tests.record_factory import metric, task, write_run

QA_ROWS = [{"id": "q1", "input": {"question": "Who?", "context": "Bo won."}, "prediction": "Bo", "gold": ["Bo", "bo"],
            "scores": {"squad_exact": 100.0, "squad_f1": 100.0}, "stats": {"squad_exact": [1.0], "squad_f1": [1.0]}},
           {"id": "q2", "input": {"question": "Where?", "context": "In Rome."}, "prediction": "", "gold": [],
            "scores": {"squad_exact": 100.0, "squad_f1": None}, "stats": {"squad_exact": [1.0], "squad_f1": [1.0]},
            "details": {"no_answer_probability": 0.9}}]


def _run(directory: Path, *, created: str = "2026-01-01T00:00:00+00:00", value: float = 50.0, model: str = "org/model") -> Path:
    return write_run(directory, model=model, created=created, tasks={
        "glue/sst2": task({"accuracy": metric(value, n=6)}, n=6),
        "squad/v2": task({"squad_exact": metric(100.0, name="squad_exact", n=2), "squad_f1": metric(100.0, name="squad_f1", n=2)}, n=2),
    }, samples={"squad/v2": QA_ROWS})


def test_parquet_files_have_the_documented_schema_and_give_the_samples_back(main, tmp_path):
    run = _run(tmp_path / "run")
    result = main("publish", "details", str(run), "--output", str(tmp_path / "details"))
    assert result.returncode == 0, result.stderr
    [path] = (tmp_path / "details" / "squad_v2").glob("details_*.parquet")
    table = pq.read_table(path)
    assert table.schema.equals(details_schema(["squad_exact", "squad_f1"]))
    assert table.schema.metadata[b"evalharness.schema"] == SCHEMA_VERSION.encode()
    rows = table.to_pylist()
    samples = read_samples(run, "squad/v2")
    assert [json.loads(row["input"]) for row in rows] == [s["input"] for s in samples]
    assert [json.loads(row["gold"]) for row in rows] == [["Bo", "bo"], []]
    assert [row["prediction"] for row in rows] == ['"Bo"', '""']  # the empty no-answer string stays a string
    assert rows[1]["scores"] == {"squad_exact": 100.0, "squad_f1": None}
    assert json.loads(rows[1]["details"]) == {"no_answer_probability": 0.9} and rows[0]["details"] is None
    assert {row["model_fingerprint"] for row in rows} == {json.loads((tmp_path / "details" / "details_manifest.json").read_text())["model_fingerprint"]}


def test_a_second_run_adds_a_split_and_latest_points_at_the_newest(main, tmp_path):
    from huggingface_hub import DatasetCard

    out = tmp_path / "details"
    newer = _run(tmp_path / "newer", created="2026-03-01T00:00:00+00:00", value=70.0)
    older = _run(tmp_path / "older", created="2026-02-01T10:00:00+09:00", value=60.0)
    for run in (newer, older, newer):  # exported out of order, and one twice
        assert main("publish", "details", str(run), "--output", str(out)).returncode == 0
    configs = {c["config_name"]: c["data_files"] for c in DatasetCard.load(out / "README.md").data.to_dict()["configs"]}
    assert set(configs) == {"glue_sst2", "squad_v2"}
    splits = [item["split"] for item in configs["glue_sst2"]]
    assert len(splits) == 3 and splits[-1] == "latest"
    latest = configs["glue_sst2"][-1]["path"]
    assert "2026_03_01" in latest and pq.read_table(out / latest).column("run_id").to_pylist()[0] in latest
    assert len(list((out / "glue_sst2").glob("*.parquet"))) == 2


def test_details_of_another_model_or_a_foreign_folder_are_never_mixed_in(main, tmp_path):
    out = tmp_path / "details"
    assert main("publish", "details", str(_run(tmp_path / "a")), "--output", str(out)).returncode == 0
    other = main("publish", "details", str(_run(tmp_path / "b", model="org/other")), "--output", str(out))
    assert other.returncode == 2 and "holds details of model 'org/model'" in other.stderr and "one details folder per model" in other.stderr
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "README.md").write_text("my dataset\n")
    refused = main("publish", "details", str(_run(tmp_path / "c")), "--output", str(foreign))
    assert refused.returncode == 2 and "holds no details_manifest.json" in refused.stderr
    assert (foreign / "README.md").read_text() == "my dataset\n" and len(list(foreign.iterdir())) == 1


def test_push_offline_keeps_the_folder_and_exits_2(main, tmp_path):
    result = main("publish", "details", str(_run(tmp_path / "run")), "--output", str(tmp_path / "details"), "--push", "org/details")
    assert result.returncode == 2 and "not pushed to org/details: the Hub is unreachable" in result.stderr
    assert "--repo-type dataset" in result.stderr and (tmp_path / "details" / "README.md").is_file()


def test_a_details_manifest_whose_run_entry_lacks_its_tasks_is_refused_naming_the_field(main, tmp_path):
    out = tmp_path / "details"
    assert main("publish", "details", str(_run(tmp_path / "a")), "--output", str(out)).returncode == 0
    manifest = json.loads((out / "details_manifest.json").read_text())
    [split] = manifest["runs"]
    del manifest["runs"][split]["tasks"]
    (out / "details_manifest.json").write_text(json.dumps(manifest))
    refused = main("publish", "details", str(_run(tmp_path / "b", created="2026-03-01T00:00:00+00:00")), "--output", str(out))
    assert refused.returncode == 2
    assert f"details_manifest.json: runs.{split}.tasks: Field required (not as evalharness writes its manifest)" in refused.stderr
