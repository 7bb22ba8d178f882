"""``evalharness publish model-card``: Hub ``.eval_results/*.yaml`` and the ``model-index``
header, read back with huggingface_hub's own parsers; what is refused and why."""

from __future__ import annotations

from pathlib import Path

import yaml

from evalharness.records.record import load_record
from tests.inprocess import main  # noqa: F401 - pytest fixture
from tests.record_factory import metric, task, write_run
from tests.run_factory import CLASSIFICATION_TASK, classification
from tests.run_factory import write_run as score_run


def _run(tmp_path: Path, **tasks) -> Path:
    default = {"glue/sst2": task({"accuracy": metric(91.25, ci=(89.5, 93.0), stderr=0.9, n=100)}, n=100)}
    return write_run(tmp_path / "run", model="org/model", tasks=tasks or default)


def _entries(path: Path) -> list:
    from huggingface_hub import parse_eval_result_entries

    return parse_eval_result_entries(yaml.safe_load(path.read_text(encoding="utf-8")))


def test_model_index_and_eval_results_round_trip_through_huggingface_hub_parsers(main, tmp_path):
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    run = _run(tmp_path)
    out = tmp_path / "card"
    result = main("publish", "model-card", str(run), "--output", str(out), "--dataset", "glue/sst2=nyu-mll/glue:sst2",
                  "--source-url", "https://huggingface.co/datasets/org/details", "--source-name", "details")
    assert result.returncode == 0, result.stderr
    record = load_record(run)
    card = ModelCard.load(out / "README.md")
    name, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    assert name == "org/model" and len(results) == 1
    assert (results[0].dataset_type, results[0].metric_type, results[0].metric_value) == ("nyu-mll/glue", "accuracy", 91.25)
    assert results[0].metric_value == record.tasks["glue/sst2"].metrics["accuracy"].value
    [entry] = _entries(out / ".eval_results" / "glue_sst2.yaml")
    assert (entry.dataset_id, entry.task_id, entry.value, entry.date) == ("nyu-mll/glue", "sst2", 91.25, record.created)
    assert entry.source_url == "https://huggingface.co/datasets/org/details" and entry.source_name == "details"
    assert "CI [89.5, 93]" in entry.notes and "n=100" in entry.notes and "accuracy|impl:test" in entry.notes
    assert "| glue/sst2 | nyu-mll/glue | accuracy | 91.25 |" in (out / "README.md").read_text()


def test_undefined_value_is_never_published_and_the_task_is_named(main, tmp_path):
    run = _run(tmp_path, **{"glue/sst2": task({"accuracy": metric(80.0)}), "glue/cola": task({"mcc": metric(None, name="mcc")})})
    out = tmp_path / "card"
    result = main("publish", "model-card", str(run), "--output", str(out), "--dataset", "glue/sst2=nyu-mll/glue:sst2",
                  "--dataset", "glue/cola=nyu-mll/glue:cola")
    assert result.returncode == 0, result.stderr
    assert "not published: glue/cola: mcc is undefined in the run (recorded as null)" in result.stderr
    assert sorted(p.name for p in (out / ".eval_results").iterdir()) == ["glue_sst2.yaml"]
    assert "cola" not in (out / "README.md").read_text()


def test_partial_run_is_refused_unless_allowed_and_then_says_so(main, tmp_path):
    partial = task({"accuracy": metric(75.0, n=50)}, n=50).model_copy()
    run = _run(tmp_path, **{"glue/sst2": partial})
    record = load_record(run)
    # the factory sets n_available = n; a --limit run evaluates fewer examples than the data has
    from evalharness.records.record import write_record

    entry = record.tasks["glue/sst2"]
    write_record(run, record.model_copy(update={"tasks": {"glue/sst2": entry.model_copy(update={"data": entry.data.model_copy(update={"n_available": 872})})}}))
    out = tmp_path / "card"
    refused = main("publish", "model-card", str(run), "--output", str(out), "--dataset", "glue/sst2=nyu-mll/glue:sst2")
    assert refused.returncode == 2
    assert "glue/sst2: evaluated on 50 of the 872 available examples" in refused.stderr and "--allow-partial" in refused.stderr
    assert not out.exists()
    allowed = main("publish", "model-card", str(run), "--output", str(out), "--dataset", "glue/sst2=nyu-mll/glue:sst2", "--allow-partial")
    assert allowed.returncode == 0, allowed.stderr
    [entry] = _entries(out / ".eval_results" / "glue_sst2.yaml")
    assert "partial: evaluated on 50 of the 872 available examples" in entry.notes


def test_task_without_a_hub_dataset_is_not_published_and_the_fix_is_named(main, tmp_path):
    run = _run(tmp_path, **{"glue/sst2": task({"accuracy": metric(80.0)}), "mine/private": task({"accuracy": metric(70.0)})})
    result = main("publish", "model-card", str(run), "--output", str(tmp_path / "card"), "--dataset", "glue/sst2=nyu-mll/glue:sst2")
    assert result.returncode == 0, result.stderr
    assert "not published: mine/private: no Hub dataset id is known for it; pass --dataset mine/private=ORG/NAME[:TASK_ID]" in result.stderr
    nothing = main("publish", "model-card", str(run), "--output", str(tmp_path / "none"))
    assert nothing.returncode == 2 and "nothing to publish" in nothing.stderr and not (tmp_path / "none").exists()


def test_hub_dataset_is_taken_from_the_task_spec_only_while_it_is_unchanged(main, tmp_path):
    spec = CLASSIFICATION_TASK.replace("data: {local: {files: [x.tsv], format: tsv}}",
                                       "data: {local: {files: [x.tsv], format: tsv}, hub: {path: org/sentiment, name: en, split: test}}")
    golds = ["positive", "negative"] * 5
    run = score_run(tmp_path / "run", [classification("tmp/sent", golds, golds, spec=spec)], model="org/model")
    out = tmp_path / "card"
    result = main("publish", "model-card", str(run), "--output", str(out), "--tasks-dir", str(run / "specs"))
    assert result.returncode == 0, result.stderr
    [entry] = _entries(out / ".eval_results" / "tmp_sent.yaml")
    assert (entry.dataset_id, entry.task_id, entry.value) == ("org/sentiment", "en", 100.0)
    assert "read from a local copy" in entry.notes
    (run / "specs" / "tmp" / "sent.yaml").write_text(spec.replace("split: test", "split: train"))
    changed = main("publish", "model-card", str(run), "--output", str(tmp_path / "card2"), "--tasks-dir", str(run / "specs"))
    assert changed.returncode == 2 and "tmp/sent: no Hub dataset id is known" in changed.stderr


def test_existing_card_keeps_its_text_and_other_results_and_republishing_replaces_ours(main, tmp_path):
    from huggingface_hub import ModelCard

    out = tmp_path / "card"
    out.mkdir()
    (out / "README.md").write_text(
        "---\nlicense: mit\nmodel-index:\n- name: org/model\n  results:\n  - task: {type: text-classification}\n"
        "    dataset: {name: Other, type: other/benchmark}\n    metrics:\n    - {type: f1, value: 0.5, name: f1}\n---\n\n"
        "# My model\n\nHand-written description.\n"
    )
    run = _run(tmp_path)
    for _ in range(2):
        result = main("publish", "model-card", str(run), "--output", str(out), "--dataset", "glue/sst2=nyu-mll/glue:sst2")
        assert result.returncode == 0, result.stderr
    card = ModelCard.load(out / "README.md")
    assert card.data.license == "mit" and "Hand-written description." in card.text
    assert sorted((r.dataset_type, r.metric_value) for r in card.data.eval_results) == [("nyu-mll/glue", 91.25), ("other/benchmark", 0.5)]
    assert card.text.count("## Evaluation results") == 1 and "| Other | other/benchmark | f1 | 0.5 |" in card.text


def test_unreadable_existing_card_is_refused_and_left_untouched(main, tmp_path):
    out = tmp_path / "card"
    out.mkdir()
    broken = "---\nmodel-index: [{name: x, results: [{metrics: 3}]}]\n---\ntext\n"
    (out / "README.md").write_text(broken)
    result = main("publish", "model-card", str(_run(tmp_path)), "--output", str(out), "--dataset", "glue/sst2=nyu-mll/glue:sst2")
    assert result.returncode == 2 and f"{out / 'README.md'}: existing model card cannot be read" in result.stderr
    assert (out / "README.md").read_text() == broken


def test_push_offline_writes_the_files_then_exits_2_saying_nothing_was_pushed(cli, tmp_path):
    out = tmp_path / "card"
    result = cli("publish", "model-card", str(_run(tmp_path)), "--output", str(out), "--dataset", "glue/sst2=nyu-mll/glue:sst2",
                 "--repo-id", "org/model", "--push", env={"HF_HUB_OFFLINE": "1"}, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "not pushed to org/model: the Hub is unreachable (HF_HUB_OFFLINE=1)" in result.stderr
    assert "hf upload org/model" in result.stderr and "--create-pr" in result.stderr
    assert (out / "README.md").is_file() and (out / ".eval_results" / "glue_sst2.yaml").is_file()


def test_push_without_a_repo_id_and_unknown_task_or_metric_options_are_refused(main, tmp_path):
    run = _run(tmp_path)
    out = str(tmp_path / "card")
    push = main("publish", "model-card", str(run), "--output", out, "--push")
    assert push.returncode == 2 and "--push needs --repo-id" in push.stderr
    typo = main("publish", "model-card", str(run), "--output", out, "--dataset", "glue/sst=nyu-mll/glue")
    assert typo.returncode == 2 and "--dataset: the run has no task 'glue/sst'; did you mean 'glue/sst2'?" in typo.stderr
    metric_typo = main("publish", "model-card", str(run), "--output", out, "--dataset", "glue/sst2=nyu-mll/glue", "--metric", "glue/sst2=acc")
    assert metric_typo.returncode == 2 and "the task has no metric 'acc'; did you mean 'accuracy'?" in metric_typo.stderr
    assert not Path(out).exists()


def test_hostile_task_names_cannot_write_outside_the_eval_results_folder(main, tmp_path):
    hostile = "../../../escaped"
    run = _run(tmp_path, **{hostile: task({"accuracy": metric(60.0)}), "a/b": task({"accuracy": metric(61.0)}),
                            "a_b": task({"accuracy": metric(62.0)})})
    out = tmp_path / "card"
    args = ["--dataset", f"{hostile}=org/x", "--dataset", "a/b=org/y", "--dataset", "a_b=org/z"]
    result = main("publish", "model-card", str(run), "--output", str(out), *args)
    assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in (out / ".eval_results").iterdir())
    assert len(files) == 3 and all(p.parent == out / ".eval_results" for p in (out / ".eval_results").iterdir())
    assert not (tmp_path / "escaped.yaml").exists() and not list(tmp_path.parent.glob("escaped*"))
    values = sorted(_entries(out / ".eval_results" / name)[0].value for name in files)
    assert values == [60.0, 61.0, 62.0]
