"""``evalharness publish eee``: the Every Eval Ever aggregate and instance files validate
against the JSON Schemas shipped in the every-eval-ever 0.3.0 wheel (read from the wheel
that ``scripts/setup.sh --test`` downloads into ``.eh-cache/wheels``; skipped without it) and
pass the same cross-file checks as the package's validator."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evalharness.publish.eee import EeeOptions, export_eee
from evalharness.publish.eee_check import check_export, load_schemas, schema_problems
from evalharness.records.record import load_record
from tests.conftest import REPO
from tests.inprocess import main  # noqa: F401 - pytest fixture
from tests.record_factory import metric, task, write_run


@pytest.fixture(scope="module")
def schemas() -> dict:
    wheels = sorted((REPO / ".eh-cache" / "wheels").glob("every_eval_ever-0.3.0-*.whl"))
    wheel = Path(os.environ.get("EVALHARNESS_EEE_WHEEL", wheels[0] if wheels else REPO / ".eh-cache" / "missing.whl"))
    if not wheel.is_file():
        pytest.skip(f"every-eval-ever wheel not found at {wheel} (scripts/setup.sh --test downloads it)")
    return load_schemas(wheel)


def _run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run", model="org/model", tasks={
        "glue/sst2": task({"accuracy": metric(50.0, ci=(20.0, 80.0), stderr=15.0, n=10,
                                              groups={"short": (40.0, 10.0, 70.0, 5)})}, n=10),
        "glue/cola": task({"mcc": metric(None, name="mcc", n=4)}, n=4),
    })


def _export(run: Path, out: Path, **options) -> object:
    return export_eee(run, EeeOptions(output=out, now=1_700_000_000, **options))


def test_export_validates_against_the_every_eval_ever_schemas_and_keeps_the_numbers(schemas, tmp_path):
    run = _run(tmp_path)
    result = _export(run, tmp_path / "eee")
    assert schema_problems(result.aggregate, schemas, result.samples) == []
    assert check_export(tmp_path / "eee", result.aggregate) == []
    data = json.loads(result.aggregate.read_text())
    entry = load_record(run).tasks["glue/sst2"].metrics["accuracy"]
    [main_result, group] = data["evaluation_results"]
    assert main_result["evaluation_result_id"] == "glue/sst2/accuracy"
    assert main_result["score_details"]["score"] == entry.value
    uncertainty = main_result["score_details"]["uncertainty"]
    assert uncertainty["standard_error"]["value"] == entry.stderr and uncertainty["num_samples"] == entry.n
    assert (uncertainty["confidence_interval"]["lower"], uncertainty["confidence_interval"]["upper"]) == tuple(entry.ci)
    assert main_result["metric_config"]["min_score"] == 0.0 and main_result["metric_config"]["max_score"] == 100.0
    assert main_result["metric_config"]["additional_details"]["signature"] == entry.signature
    assert group["evaluation_name"] == "glue/sst2 [short]" and group["score_details"]["score"] == 40.0
    assert result.aggregate.relative_to(tmp_path / "eee").parts[:4] == ("data", "evalharness", "org", "model")


def test_instance_lines_point_at_their_aggregate_result_and_are_counted(schemas, tmp_path):
    result = _export(_run(tmp_path), tmp_path / "eee")
    aggregate = json.loads(result.aggregate.read_text())
    lines = [json.loads(line) for line in result.samples.read_text().splitlines()]
    assert aggregate["detailed_evaluation_results"]["total_rows"] == len(lines) == 10
    assert aggregate["detailed_evaluation_results"]["file_path"] == result.samples.relative_to(tmp_path / "eee").as_posix()
    assert {line["evaluation_id"] for line in lines} == {aggregate["evaluation_id"]}
    assert {line["evaluation_result_id"] for line in lines} == {"glue/sst2/accuracy"}
    assert [line["evaluation"]["is_correct"] for line in lines] == [i % 2 == 0 for i in range(10)]
    assert aggregate["source_metadata"]["source_type"] == "evaluation_run"


def test_undefined_values_are_left_out_and_listed_never_written_as_numbers(schemas, tmp_path):
    result = _export(_run(tmp_path), tmp_path / "eee")
    text = result.aggregate.read_text()
    assert "glue/cola/mcc" not in [r["evaluation_result_id"] for r in json.loads(text)["evaluation_results"]]
    assert "value undefined in the run" in json.loads(text)["source_metadata"]["additional_details"]["omitted"]
    assert "NaN" not in text and "glue/cola" not in result.samples.read_text()


def test_exporting_the_same_run_again_replaces_its_files_instead_of_adding_a_duplicate(schemas, tmp_path):
    run = _run(tmp_path)
    first = _export(run, tmp_path / "eee")
    second = export_eee(run, EeeOptions(output=tmp_path / "eee", now=1_800_000_000))
    assert first.aggregate == second.aggregate
    assert len(list(first.aggregate.parent.iterdir())) == 2
    assert check_export(tmp_path / "eee", second.aggregate) == []


def test_a_tampered_samples_companion_is_caught_by_the_cross_file_checks(schemas, tmp_path):
    result = _export(_run(tmp_path), tmp_path / "eee")
    lines = result.samples.read_text().splitlines()
    result.samples.write_text("\n".join(lines[:-1]) + "\n")
    problems = check_export(tmp_path / "eee", result.aggregate)
    assert any("total_rows says 10, the companion has 9" in p for p in problems)
    assert any("checksum does not match" in p for p in problems)


def test_a_model_name_without_an_org_prefix_needs_a_model_id_or_developer(main, tmp_path):
    run = write_run(tmp_path / "run", model="tiny-bert", tasks={"t": task({"accuracy": metric(50.0)})})
    refused = main("publish", "eee", str(run), "--output", str(tmp_path / "eee"))
    assert refused.returncode == 2 and "model 'tiny-bert' has no ORG/ prefix; pass --model-id ORG/NAME" in refused.stderr
    assert not (tmp_path / "eee").exists()
    ok = main("publish", "eee", str(run), "--output", str(tmp_path / "eee"), "--developer", "acme")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["aggregate"].endswith(".json") and "/data/evalharness/acme/tiny-bert/" in ok.stdout


def test_corpus_level_metrics_get_no_instance_lines_rather_than_invented_correctness(schemas, tmp_path):
    rows = [{"id": str(i), "input": "x", "prediction": "a", "gold": "b", "scores": {"mcc": None}, "stats": {"mcc": [0, 1, 0, 1]}}
            for i in range(4)]
    run = write_run(tmp_path / "run", model="org/m", tasks={"glue/cola": task({"mcc": metric(12.5, name="mcc", n=4)}, n=4)},
                    samples={"glue/cola": rows})
    result = _export(run, tmp_path / "eee")
    assert result.samples is None and result.n_instances == 0
    assert "glue/cola/mcc instances" in result.omitted
    data = json.loads(result.aggregate.read_text())
    assert data["source_metadata"]["source_type"] == "documentation" and "detailed_evaluation_results" not in data
    assert schema_problems(result.aggregate, schemas) == [] and check_export(tmp_path / "eee", result.aggregate) == []


def test_cli_validates_against_the_wheel_schemas_when_given(main, schemas, tmp_path):
    wheel = sorted((REPO / ".eh-cache" / "wheels").glob("every_eval_ever-0.3.0-*.whl"))[0]
    result = main("publish", "eee", str(_run(tmp_path)), "--output", str(tmp_path / "eee"), "--schemas", str(wheel),
                  "--relationship", "first_party", "--availability", "open_weights")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["results"] == 2 and printed["instances"] == 10
    bad = main("publish", "eee", str(_run(tmp_path)), "--output", str(tmp_path / "eee2"), "--relationship", "friend")
    assert bad.returncode == 2 and "--relationship 'friend': expected one of first_party" in bad.stderr


def test_a_samples_row_whose_scores_is_not_an_object_is_refused_naming_the_field(tmp_path):
    from evalharness.errors import RecordError

    rows = [{"id": str(i), "input": "x", "prediction": "a", "gold": "a", "scores": [100.0], "stats": {"accuracy": [1, 1]}}
            for i in range(2)]
    run = write_run(tmp_path / "run", model="org/m", tasks={"t": task({"accuracy": metric(100.0, n=2)}, n=2)}, samples={"t": rows})
    with pytest.raises(RecordError, match=r"t samples, row 0: scores: expected an object, got an array"):
        _export(run, tmp_path / "eee")


def test_an_aggregate_whose_nested_sections_are_not_objects_is_reported_not_a_crash(tmp_path):
    aggregate = tmp_path / "data" / "c" / "org" / "m" / "6f1ed002-ab5d-4bd2-8a1c-9b4a6c1c2e3f.json"
    aggregate.parent.mkdir(parents=True)
    aggregate.write_text(json.dumps({"detailed_evaluation_results": ["x"], "model_info": "org/m", "evaluation_results": [3]}))
    problems = check_export(tmp_path, aggregate)
    assert any("detailed_evaluation_results.file_path is None" in p for p in problems)
    assert any("evaluation_results[0].score_details.score is not a finite number" in p for p in problems)
    assert any("model_info.additional_details.deployment_type is missing" in p for p in problems)


def test_a_schema_file_that_is_not_an_object_is_refused_naming_it(tmp_path):
    from evalharness.errors import UsageError

    (tmp_path / "eval.schema.json").write_text("[]")
    (tmp_path / "instance_level_eval.schema.json").write_text("{}")
    with pytest.raises(UsageError, match=r"eval\.schema\.json: expected an object, got an array"):
        load_schemas(tmp_path)
