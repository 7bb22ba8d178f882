"""``evalharness import lm-eval``: lm-evaluation-harness results (and samples) as a run record.

The fixture files are written here in the layout of lm-eval 0.4's ``EvaluationTracker``
(``results_<date>.json`` with ``results``/``configs``/``versions``/``n-shot``/
``higher_is_better``/``n-samples``/``task_hashes``, and ``samples_<task>_<date>.jsonl`` whose
``task_hashes`` entry is sha256 over each line's doc, prompt and target hashes).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from evalharness.comparison.compare import compare_runs
from evalharness.records.record import load_record, read_samples
from tests.inprocess import main  # noqa: F401 - pytest fixture

DATE = "2026-01-02T03-04-05.678901"


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def write_lm_eval(folder: Path, acc: list[int], *, date: str = DATE, with_samples: bool = True, model: str = "org/llm") -> Path:
    """A two-task lm-eval output: arc_easy (mean metrics, samples) and wikitext (perplexity)."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(acc)
    norm = [1 - a if i % 3 == 0 else a for i, a in enumerate(acc)]
    samples = []
    for i, (a, b) in enumerate(zip(acc, norm)):
        doc = {"question": f"Which one {i}?", "choices": {"text": ["red", "blue"]}, "answerKey": "A"}
        prompt = f"Question: Which one {i}?\nAnswer:"
        samples.append({
            "doc_id": i, "doc": doc, "target": 0, "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": " red"}},
            "resps": [[[-1.5, bool(a)]], [[-2.5, False]]], "filtered_resps": [[-1.5, bool(a)], [-2.5, False]],
            "filter": "none", "metrics": ["acc", "acc_norm"],
            "doc_hash": _hash(json.dumps(doc, indent=2)), "prompt_hash": _hash(prompt), "target_hash": _hash("0"),
            "acc": float(a), "acc_norm": float(b),
        })
    task_hash = _hash("".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"] for s in samples))
    results = {
        "results": {
            "mini": {"alias": "mini", "acc,none": float(np.mean(acc)), "acc_stderr,none": 0.1},
            "arc_easy": {"alias": " - arc_easy", "acc,none": float(np.mean(acc)), "acc_stderr,none": float(np.std(acc, ddof=1) / np.sqrt(n)),
                         "acc_norm,none": float(np.mean(norm)), "acc_norm_stderr,none": 0.05},
            "wikitext": {"alias": " - wikitext", "word_perplexity,none": 31.25, "word_perplexity_stderr,none": "N/A",
                         "bits_per_byte,none": 0.81, "bits_per_byte_stderr,none": "N/A"},
        },
        "groups": {"mini": {"alias": "mini", "acc,none": float(np.mean(acc)), "acc_stderr,none": 0.1}},
        "group_subtasks": {"mini": ["arc_easy", "wikitext"]},
        "configs": {
            "arc_easy": {"task": "arc_easy", "dataset_path": "allenai/ai2_arc", "dataset_name": "ARC-Easy", "test_split": "test",
                         "output_type": "multiple_choice", "num_fewshot": 0,
                         "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                                         {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}],
                         "metadata": {"version": 1.0}},
            "wikitext": {"task": "wikitext", "dataset_path": "EleutherAI/wikitext_document_level", "test_split": "test",
                         "output_type": "loglikelihood_rolling",
                         "metric_list": [{"metric": "word_perplexity"}, {"metric": "bits_per_byte"}], "metadata": {"version": 2.0}},
        },
        "versions": {"arc_easy": 1.0, "wikitext": 2.0, "mini": "N/A"},
        "n-shot": {"arc_easy": 0, "wikitext": 0},
        "higher_is_better": {"arc_easy": {"acc": True, "acc_norm": True}, "wikitext": {"word_perplexity": False, "bits_per_byte": False},
                             "mini": {"acc": True}},
        "n-samples": {"arc_easy": {"original": n, "effective": n}, "wikitext": {"original": 62, "effective": 62}},
        "config": {"model": "hf", "model_args": f"pretrained={model},dtype=bfloat16", "model_num_parameters": 124439808,
                   "model_dtype": "torch.bfloat16", "model_revision": "main", "model_sha": "a" * 40, "batch_size": "8",
                   "limit": None, "bootstrap_iters": 100000, "gen_kwargs": None, "random_seed": 0, "fewshot_seed": 1234},
        "git_hash": "4f8c2e1", "date": 1767323045.678901, "transformers_version": "4.57.1", "lm_eval_version": "0.4.9.1",
        "task_hashes": {"arc_easy": task_hash, "wikitext": ""},
        "model_source": "hf", "model_name": model, "model_name_sanitized": model.replace("/", "__"),
        "total_evaluation_time_seconds": "41.5",
    }
    path = folder / f"results_{date}.json"
    path.write_text(json.dumps(results, indent=2))
    if with_samples:
        (folder / f"samples_arc_easy_{date}.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    return path


ACC_A = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0]
ACC_B = [1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1]


def test_import_maps_metrics_and_provenance_honestly(main, tmp_path):
    results = write_lm_eval(tmp_path / "lm", ACC_A)
    run = tmp_path / "run"
    out = main("import", "lm-eval", str(results), "--run-dir", str(run))
    assert out.returncode == 0, out.stderr
    record = load_record(run)
    assert record.model.source == "lm-eval" and record.model.name == "org/llm"
    assert record.model.notes["lm_eval_version"] == "0.4.9.1" and record.model.notes["git_hash"] == "4f8c2e1"
    assert record.model.notes["model_args"] == "pretrained=org/llm,dtype=bfloat16"
    assert set(record.model.notes["task_config_sha256"]) == {"arc_easy", "wikitext"}
    assert set(record.tasks) == {"lm-eval/arc_easy", "lm-eval/wikitext"}
    assert "lm-eval/mini" in record.skipped and "its subtasks are imported" in record.skipped["lm-eval/mini"]
    acc = record.tasks["lm-eval/arc_easy"].metrics["acc"]
    assert acc.value == pytest.approx(np.mean(ACC_A)) and acc.metric == "external_mean" and acc.n == 12
    assert acc.stderr == pytest.approx(np.std(ACC_A, ddof=1) / np.sqrt(12))  # lm-eval's, as reported
    assert acc.ci[0] < acc.value < acc.ci[1] and "evalharness bootstrap-percentile" in acc.ci_method
    assert acc.signature.startswith("lm-eval:acc|filter:none|aggregation:mean|task_version:1.0|n-shot:0|lm_eval:0.4.9.1")
    ppl = record.tasks["lm-eval/wikitext"].metrics["word_perplexity"]
    assert (ppl.value, ppl.ci, ppl.stderr, ppl.higher_is_better) == (31.25, (None, None), None, False)
    assert any("word_perplexity: value and stderr as lm-eval reported them; no interval and not re-aggregatable" in n
               for n in record.tasks["lm-eval/wikitext"].notes)
    rows = read_samples(run, "lm-eval/arc_easy")
    assert [row["scores"]["acc"] for row in rows] == [float(a) for a in ACC_A] and rows[0]["stats"]["acc"] == [1.0, 1.0]


def test_compare_pairs_two_imported_runs_document_by_document(main, tmp_path):
    for name, acc in (("a", ACC_A), ("b", ACC_B)):
        results = write_lm_eval(tmp_path / f"lm-{name}", acc)
        assert main("import", "lm-eval", str(results), "--run-dir", str(tmp_path / name)).returncode == 0
    comparison = compare_runs(tmp_path / "a", tmp_path / "b", tasks=["lm-eval/arc_easy"])
    compared = comparison.get("lm-eval/arc_easy", "acc")
    assert compared is not None and compared.test == "paired-permutation"
    assert compared.difference == pytest.approx(np.mean(ACC_B) - np.mean(ACC_A)) and compared.n == 12


def test_samples_of_another_run_are_refused(main, tmp_path):
    results = write_lm_eval(tmp_path / "lm", ACC_A)
    other = write_lm_eval(tmp_path / "other", [1 - a for a in ACC_A], date="2026-01-05T00-00-00.000001")
    # a run with other prompts (say 5-shot), renamed to sit beside these results: its prompt hashes differ
    moved = tmp_path / "lm" / f"samples_arc_easy_{DATE}.jsonl"
    lines = [json.loads(line) for line in moved.read_text().splitlines()]
    lines[3]["prompt_hash"] = _hash("five-shot prompt")
    moved.write_text("".join(json.dumps(line) + "\n" for line in lines))
    refused = main("import", "lm-eval", str(results), "--run-dir", str(tmp_path / "run"))
    assert refused.returncode == 2 and f"{moved}: these samples do not hash to the results file's task_hashes entry" in refused.stderr
    wrong_date = main("import", "lm-eval", str(results), "--run-dir", str(tmp_path / "run"),
                      "--samples", str(other.parent / "samples_arc_easy_2026-01-05T00-00-00.000001.jsonl"))
    assert wrong_date.returncode == 2 and "written by the lm-eval run of 2026-01-05T00-00-00.000001" in wrong_date.stderr
    assert not (tmp_path / "run" / "results.json").exists()


def test_samples_whose_mean_is_not_the_reported_value_are_refused(main, tmp_path):
    results = write_lm_eval(tmp_path / "lm", ACC_A)
    data = json.loads(results.read_text())
    data["task_hashes"]["arc_easy"] = ""  # no hash to catch it: the values themselves must agree
    data["results"]["arc_easy"]["acc,none"] = 0.99
    results.write_text(json.dumps(data))
    refused = main("import", "lm-eval", str(results), "--run-dir", str(tmp_path / "run"))
    assert refused.returncode == 2
    assert "lm-eval task 'arc_easy': acc,none is 0.99 in the results but the samples average 0.666667" in refused.stderr


def test_without_samples_values_are_kept_but_never_reaggregated(main, tmp_path):
    results = write_lm_eval(tmp_path / "lm", ACC_A, with_samples=False)
    assert main("import", "lm-eval", str(results), "--run-dir", str(tmp_path / "run")).returncode == 0
    task = load_record(tmp_path / "run").tasks["lm-eval/arc_easy"]
    acc = task.metrics["acc"]
    assert acc.metric == "lm-eval:acc" and acc.ci == (None, None) and acc.value == pytest.approx(np.mean(ACC_A))
    assert any("lm-eval ran without --log_samples" in note for note in task.notes)
    with pytest.raises(Exception, match="samples file missing"):
        read_samples(tmp_path / "run", "lm-eval/arc_easy")


def test_files_that_are_not_lm_eval_results_and_existing_run_dirs_are_refused(main, tmp_path):
    bogus = tmp_path / "results_x.json"
    bogus.write_text(json.dumps({"accuracy": 0.5}))
    result = main("import", "lm-eval", str(bogus), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2 and "not an lm-evaluation-harness results file (no 'results' mapping of tasks)" in result.stderr
    results = write_lm_eval(tmp_path / "lm", ACC_A)
    assert main("import", "lm-eval", str(results), "--run-dir", str(tmp_path / "run")).returncode == 0
    again = main("import", "lm-eval", str(results), "--run-dir", str(tmp_path / "run"))
    assert again.returncode == 2 and "already holds a run record; import into a new folder" in again.stderr


def test_imported_and_native_runs_share_one_leaderboard_with_their_provenance(main, tmp_path):
    from tests.record_factory import metric, task, write_run

    results = write_lm_eval(tmp_path / "lm", ACC_A)
    assert main("import", "lm-eval", str(results), "--run-dir", str(tmp_path / "runs" / "lm-eval")).returncode == 0
    write_run(tmp_path / "runs" / "native", model="org/llm", tasks={"glue/sst2": task({"accuracy": metric(80.0)})})
    board = main("leaderboard", str(tmp_path / "runs"), "--format", "markdown")
    assert board.returncode == 0, board.stderr
    assert "lm-eval/arc\\_easy" in board.stdout and "glue/sst2" in board.stdout
    assert "0.67" in board.stdout and "80.00" in board.stdout
    rows = [line for line in board.stdout.splitlines() if line.startswith("|") and "org/llm@" in line]
    assert len(rows) == 2  # different provenance (weights vs lm-eval model args): never merged into one row


def _import_edited(main, tmp_path, edit):
    """Import the fixture's results after ``edit(results)`` changed them (task hash left out)."""
    results = write_lm_eval(tmp_path / "lm", ACC_A)
    data = json.loads(results.read_text())
    data["task_hashes"]["arc_easy"] = ""
    edit(data)
    results.write_text(json.dumps(data))
    return main("import", "lm-eval", str(results), "--run-dir", str(tmp_path / "run"))


def test_a_results_section_that_is_not_an_object_is_refused_naming_the_field(main, tmp_path):
    refused = _import_edited(main, tmp_path, lambda data: data.update({"configs": ["arc_easy"]}))
    assert refused.returncode == 2 and "configs: expected an object, got an array" in refused.stderr
    assert not (tmp_path / "run" / "results.json").exists()


def test_a_task_result_that_is_not_an_object_is_refused_naming_the_task(main, tmp_path):
    refused = _import_edited(main, tmp_path, lambda data: data["results"].update({"wikitext": None}))
    assert refused.returncode == 2 and "results.wikitext: expected an object, got null" in refused.stderr


def test_an_n_samples_count_that_is_not_a_number_is_refused_naming_the_field(main, tmp_path):
    refused = _import_edited(main, tmp_path, lambda data: data["n-samples"]["wikitext"].update({"effective": "all"}))
    assert refused.returncode == 2 and "n-samples.wikitext.effective: expected a count, got 'all'" in refused.stderr


def test_a_model_revision_that_is_not_text_is_refused_naming_the_field(main, tmp_path):
    refused = _import_edited(main, tmp_path, lambda data: data["config"].update({"model_revision": 3}))
    assert refused.returncode == 2 and "config.model_revision: expected a string, got a number" in refused.stderr


def test_a_sample_whose_doc_id_is_not_an_integer_is_refused_naming_the_line(main, tmp_path):
    results = write_lm_eval(tmp_path / "lm", ACC_A)
    samples = tmp_path / "lm" / f"samples_arc_easy_{DATE}.jsonl"
    lines = [json.loads(line) for line in samples.read_text().splitlines()]
    lines[2]["doc_id"] = [2]
    samples.write_text("".join(json.dumps(line) + "\n" for line in lines))
    refused = main("import", "lm-eval", str(results), "--run-dir", str(tmp_path / "run"))
    assert refused.returncode == 2 and f"{samples}:3: doc_id: expected an integer, got an array" in refused.stderr


@pytest.mark.parametrize("count", [12.7, True, -5, "62"])
def test_an_n_samples_count_that_is_fractional_boolean_negative_or_text_is_refused(main, tmp_path, count):
    # int() made 12.7 a count of 12 and true a count of 1, recorded with exit 0
    refused = _import_edited(main, tmp_path, lambda data: data["n-samples"]["wikitext"].update({"effective": count}))
    assert refused.returncode == 2 and f"n-samples.wikitext.effective: expected a count, got {count!r}" in refused.stderr
