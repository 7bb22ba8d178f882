"""lm-evaluation-harness results as an evalharness run record (``evalharness import lm-eval``).

Reads the ``results_<date>.json`` that ``lm_eval --output_path`` writes (format of
``lm_eval/evaluator.py`` and ``lm_eval/loggers/evaluation_tracker.py``, v0.4) and, where
``--log_samples`` was used, the ``samples_<task>_<date>.jsonl`` files beside it. The record says
plainly that it is external (``model.source = "lm-eval"``, tasks named ``lm-eval/<task>``) and
carries lm-eval's provenance: its version and git hash, model arguments, each task's config
hash, n-shot and sample hash.

Metrics are mapped as lm-eval reports them (its scale, its stderr). A metric whose config
declares ``mean`` aggregation and whose per-document values are in the samples is stored as
``external_mean`` with those values as statistics, so ``compare`` can pair runs; its
interval is recomputed from them and the reported value must equal their mean. Other metrics
keep their value and stderr with no interval, and the record says they cannot be
re-aggregated. Samples are checked to belong to the results file (same date id and, when
lm-eval recorded one, the same ``task_hashes`` digest). Group rows (aggregates over subtasks)
are not imported as tasks: their subtasks are.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from evalharness.errors import DataError, RecordError, UsageError
from evalharness.jsonvalues import (
    JSONArray,
    JSONObject,
    JsonValue,
    expect_int,
    expect_object,
    expect_str,
)
from evalharness.metrics.base import package_version
from evalharness.records.environment import capture_environment
from evalharness.records.record import (
    RESULTS_FILE,
    DataEntry,
    ModelEntry,
    RunRecord,
    TaskEntry,
    samples_path,
    write_record,
    write_samples,
)
from evalharness.types import MetricResult, finite_or_none

__all__ = ["import_lm_eval"]

TASK_PREFIX = "lm-eval/"
_SAMPLES_NAME = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[\d\-.]+)\.jsonl$")
_RESULTS_NAME = re.compile(r"^results_(?P<date>\d{4}-\d{2}-\d{2}T[\d\-.]+)\.json$")


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _plain(value: object) -> JsonValue:
    """JSON-safe copy: non-finite floats (lm-eval may write NaN) become null, others text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _object(value: JsonValue, where: str) -> JSONObject:
    """An optional object of an lm-eval file: empty when absent or empty; any other value is
    refused naming where it was read."""
    return expect_object(value, where, error=DataError) if value else {}


def _count(value: JsonValue, where: str, default: int) -> int:
    """A count lm-eval wrote (``n-samples``): ``default`` when absent or 0; anything but a
    non-negative integer (a fraction, text, a boolean) is refused naming where it was read."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DataError(f"{where}: expected a count, got {value!r}")
    return value or default


def _doc_id(row: Mapping[str, JsonValue]) -> int:
    doc_id = row["doc_id"]
    assert isinstance(doc_id, int)  # _read_samples_file refused any other
    return doc_id


def _read_results(path: Path) -> JSONObject:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))  # lm-eval may write NaN: kept, then mapped to null
    except FileNotFoundError:
        raise DataError(f"{path}: no such lm-eval results file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict) or not data["results"]:
        raise DataError(f"{path}: not an lm-evaluation-harness results file (no 'results' mapping of tasks)")
    return expect_object(data, str(path), error=DataError)


def _results(data: Mapping[str, JsonValue]) -> JSONObject:
    results = data["results"]
    assert isinstance(results, dict)  # _read_results refused any other
    return results


def _groups(data: Mapping[str, JsonValue], where: str) -> dict[str, JSONArray]:
    subtasks = _object(data.get("group_subtasks"), f"{where}: group_subtasks")
    return {name: tasks for name, tasks in subtasks.items() if isinstance(tasks, list) and tasks}


def _samples_files(results_path: Path, given: Sequence[Path], tasks: Sequence[str]) -> dict[str, Path]:
    """task -> samples file: the ones given, else those lm-eval wrote beside the results."""
    match = _RESULTS_NAME.match(results_path.name)
    date = match["date"] if match else None
    files: dict[str, Path] = {}
    candidates = list(given) or ([results_path.parent / f"samples_{task}_{date}.jsonl" for task in tasks] if date else [])
    for path in candidates:
        name = _SAMPLES_NAME.match(path.name)
        if name is None or name["task"] not in tasks:
            if given:
                raise UsageError(f"--samples {path}: not a samples_<task>_<date>.jsonl file of a task in {results_path.name} ({', '.join(tasks)})")
            continue
        if date and name["date"] != date:
            raise UsageError(f"--samples {path}: written by the lm-eval run of {name['date']}, not by {results_path.name} ({date})")
        if not path.is_file():
            if given:
                raise UsageError(f"--samples {path}: no such file")
            continue
        files[name["task"]] = path
    return files


def _read_samples_file(path: Path) -> list[JSONObject]:
    rows: list[JSONObject] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise DataError(f"{path}:{number}: not a JSON line (truncated file?)") from None
        if not isinstance(row, dict) or "doc_id" not in row:
            raise DataError(f"{path}:{number}: not an lm-eval sample (no doc_id)")
        expect_int(row["doc_id"], f"{path}:{number}: doc_id", error=DataError)
        rows.append(row)
    return rows


def _check_task_hash(path: Path, rows: Sequence[Mapping[str, JsonValue]], expected: JsonValue) -> None:
    """lm-eval's task hash: sha256 over each sample's doc, prompt and target hashes, in order."""
    if not expected:
        return
    hashes = [row.get(key) for row in rows for key in ("doc_hash", "prompt_hash", "target_hash")]
    texts = [value for value in hashes if isinstance(value, str)]
    if len(texts) != len(hashes):
        raise DataError(f"{path}: samples lack doc_hash/prompt_hash/target_hash, so they cannot be matched to the results")
    actual = _sha256("".join(texts))
    if actual != expected:
        raise DataError(f"{path}: these samples do not hash to the results file's task_hashes entry; they come from another run")


def _metric_specs(config: Mapping[str, JsonValue]) -> dict[str, str]:
    """metric -> aggregation name, as the task config declares it."""
    specs = {}
    items = config.get("metric_list")
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        metric, aggregation = item.get("metric"), item.get("aggregation")
        if isinstance(metric, str):
            specs[metric] = aggregation if isinstance(aggregation, str) else "unknown"
    return specs


def _metric_key(metric: str, filter_name: str) -> str:
    key = metric if filter_name == "none" else f"{metric}.{filter_name}"
    return re.sub(r"[^A-Za-z0-9_.+\-]", "_", key)


def _per_doc(rows: Sequence[Mapping[str, JsonValue]], metric: str, filter_name: str, filters: set[str]) -> list[float] | None:
    """Per-document values of one metric under one filter, in doc order; None if any is not a number."""
    chosen = [row for row in rows if row.get("filter", filter_name if len(filters) <= 1 else None) == filter_name]
    values = []
    for row in sorted(chosen, key=_doc_id):
        value = row.get(metric)
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        values.append(float(value))
    return values


def _task_entry(task: str, data: Mapping[str, JsonValue], rows: list[JSONObject] | None, run_dir: Path, lm_eval: str,
                where: str) -> tuple[TaskEntry, list[JSONObject]]:
    """The task's record entry and its per-document rows (written only once every task passed)."""
    from evalharness.metrics.registry import build_metric

    def section(name: str) -> JSONObject:  # data[name][task], an object (empty when absent)
        return _object(_object(data.get(name), f"{where}: {name}").get(task), f"{where}: {name}.{task}")

    config = section("configs")
    reported = expect_object(_results(data)[task], f"{where}: results.{task}", error=DataError)
    higher = section("higher_is_better")
    aggregations = _metric_specs(config)
    counts = section("n-samples")
    version_raw = _object(data.get("versions"), f"{where}: versions").get(task)
    notes = [f"imported from lm-evaluation-harness {lm_eval}; values on lm-eval's scale"]
    version = int(version_raw) if isinstance(version_raw, (int, float)) and float(version_raw).is_integer() else 0
    if version == 0:
        notes.append(f"lm-eval task version {version_raw!r} is not an integer; recorded as 0")
    metric_keys = [k for k in reported if "," in k and "_stderr," not in k]
    filters = {k.split(",", 1)[1] for k in metric_keys}
    n_docs = len({_doc_id(row) for row in rows}) if rows else None
    n_examples = _count(counts.get("effective"), f"{where}: n-samples.{task}.effective", n_docs or 0)
    n_shot = _object(data.get("n-shot"), f"{where}: n-shot").get(task)
    metrics: dict[str, MetricResult] = {}
    scores: dict[str, list[float]] = {}
    stats: dict[str, list[JSONArray]] = {}
    for raw_key in metric_keys:
        metric, filter_name = raw_key.split(",", 1)
        key = _metric_key(metric, filter_name)
        higher_is_better = higher.get(metric)
        if not isinstance(higher_is_better, bool):
            notes.append(f"metric {raw_key} not imported: the results file does not say whether higher is better")
            continue
        reported_value = reported[raw_key]
        value = reported_value if isinstance(reported_value, (int, float)) else None
        stderr = reported.get(f"{metric}_stderr,{filter_name}")
        aggregation = aggregations.get(metric, "unknown")
        values = _per_doc(rows, metric, filter_name, filters) if rows and aggregation == "mean" else None
        if values is not None and len(values) != n_docs:
            values = None  # this filter did not cover every document: the rows cannot be paired
        signature = f"lm-eval:{metric}|filter:{filter_name}|aggregation:{aggregation}|task_version:{version_raw}|n-shot:{n_shot}|lm_eval:{lm_eval}"
        defined, stderr_defined = finite_or_none(value), finite_or_none(stderr if isinstance(stderr, (int, float)) else None)
        if values:
            mean = float(np.mean(values))
            if value is None or not math.isclose(mean, value, rel_tol=1e-6, abs_tol=1e-9):
                raise DataError(f"lm-eval task '{task}': {raw_key} is {value} in the results but the samples average {mean:.6g}; the files do not belong together")
            settings: JSONObject = {"source": "lm-eval", "metric": metric, "filter": filter_name, "higher_is_better": higher_is_better}
            external = build_metric("external_mean", settings)  # the statistics must be re-aggregatable as recorded
            result = external.result(np.array([[v, 1.0] for v in values]), rng=np.random.default_rng(1234), n_resamples=1000)
            metrics[key] = MetricResult(metric="external_mean", settings=settings, ci=result.ci,
                                       ci_method=f"stderr: lm-eval; ci: evalharness {result.ci_method} over {len(values)} imported per-document values",
                                       n=len(values), value=defined, stderr=stderr_defined,
                                       higher_is_better=higher_is_better, signature=signature)
            scores[key], stats[key] = values, [[v, 1.0] for v in values]
        else:
            why = "no per-document samples" if not rows else f"aggregation '{aggregation}' is not a mean of per-document values"
            notes.append(f"{key}: value and stderr as lm-eval reported them; no interval and not re-aggregatable ({why})")
            metrics[key] = MetricResult(metric=f"lm-eval:{metric}", settings={"filter": filter_name, "aggregation": aggregation},
                                       ci=(None, None), ci_method="none (lm-eval reports a stderr only)",
                                       n=n_examples,
                                       value=defined, stderr=stderr_defined, higher_is_better=higher_is_better, signature=signature)
    docs = _sample_rows(rows, scores, stats, filters) if rows else []
    if rows and len(docs) != n_examples:
        raise DataError(f"lm-eval task '{task}': the samples hold {len(docs)} documents but n-samples says {n_examples}")
    if not rows:
        notes.append("no samples file: per-example rows are not available (lm-eval ran without --log_samples)")
    samples = samples_path(run_dir, TASK_PREFIX + task).relative_to(run_dir).as_posix()
    location = " ".join(str(config.get(k)) for k in ("dataset_path", "dataset_name") if config.get(k)) or task
    split = config.get("test_split") or config.get("validation_split")
    task_hash = _object(data.get("task_hashes"), f"{where}: task_hashes").get(task)
    return TaskEntry(
        version=version,
        kind=f"lm-eval:{config.get('output_type', 'unknown')}",
        spec_hash="sha256:" + _sha256(_canonical(config))[:16],
        formulation=f"lm-eval:{config.get('output_type', 'unknown')}",
        n_examples=n_examples,
        data=DataEntry(source="lm-eval", location=location + (f" split={split}" if split else ""),
                       fingerprint=f"lm-eval-task-hash:{task_hash}" if task_hash else "sha256:" + _sha256(_canonical([location, split, n_examples]))[:16],
                       n_available=_count(counts.get("original"), f"{where}: n-samples.{task}.original", n_examples)),
        metrics=metrics,
        settings={"num_fewshot": n_shot, "lm_eval_config_sha256": _sha256(_canonical(config)),
                  "task_hash": task_hash},
        notes=notes,
        samples=samples,
        seconds=0.0,
    ), docs


def _sample_rows(rows: Sequence[Mapping[str, JsonValue]], scores: Mapping[str, list[float]], stats: Mapping[str, list[JSONArray]],
                 filters: set[str]) -> list[JSONObject]:
    """One row per document: input, prediction(s) per filter, gold and imported scores."""
    by_doc: dict[int, JSONObject] = {}
    predictions: dict[int, JSONObject] = {}
    for row in rows:
        doc_id = _doc_id(row)
        if doc_id not in by_doc:
            by_doc[doc_id] = {"id": str(doc_id), "input": row.get("doc"), "gold": row.get("target"),
                              "details": {"doc_hash": row.get("doc_hash"), "prompt_hash": row.get("prompt_hash")}}
            predictions[doc_id] = {}
        filter_name = row.get("filter", next(iter(filters), "none"))
        # a key that is not text is written as JSON writes an object's key
        predictions[doc_id][filter_name if isinstance(filter_name, str) else json.dumps(filter_name)] = row.get("filtered_resps")
    out = []
    for index, doc_id in enumerate(sorted(by_doc)):
        doc, chosen = by_doc[doc_id], predictions[doc_id]
        doc["prediction"] = next(iter(chosen.values())) if len(chosen) == 1 else chosen
        doc["scores"] = {key: values[index] for key, values in scores.items()}
        doc["stats"] = {key: values[index] for key, values in stats.items()}
        out.append(doc)
    return out


def _model(data: Mapping[str, JsonValue], name: str | None, results_path: Path, files: Mapping[str, Path]) -> ModelEntry:
    config = _object(data.get("config"), f"{results_path}: config")
    model_name = name or data.get("model_name") or str(config.get("model_args") or "lm-eval model")
    identity = {k: config.get(k) for k in ("model", "model_args", "model_revision", "model_sha", "model_dtype")}
    notes: JSONObject = {
        "lm_eval_version": data.get("lm_eval_version"), "git_hash": data.get("git_hash"), "date": data.get("date"),
        "model_args": config.get("model_args"), "model_source": data.get("model_source"),
        "results_file": str(results_path), "results_sha256": hashlib.sha256(results_path.read_bytes()).hexdigest(),
        "samples_files": {task: str(path) for task, path in files.items()},
        "transformers_version": data.get("transformers_version"),
        "task_config_sha256": {task: _sha256(_canonical(cfg)) for task, cfg in _object(data.get("configs"), f"{results_path}: configs").items()},
        "settings": {k: config.get(k) for k in ("batch_size", "limit", "bootstrap_iters", "gen_kwargs", "random_seed", "fewshot_seed")},
    }
    revision_key = "model_revision" if config.get("model_revision") else "model_sha"
    revision, num_parameters = config.get(revision_key), config.get("model_num_parameters")
    return ModelEntry(
        name=str(model_name), path=str(config.get("model_args") or model_name), kind=f"lm-eval:{config.get('model', 'unknown')}",
        fingerprint="sha256:" + _sha256(_canonical(identity))[:16], source="lm-eval",
        revision=expect_str(revision, f"{results_path}: config.{revision_key}", error=DataError) if revision else None,
        dtype=str(config["model_dtype"]) if config.get("model_dtype") else None,
        num_parameters=num_parameters if isinstance(num_parameters, int) else None,
        notes=notes,
    )


def _created(data: Mapping[str, JsonValue]) -> str:
    date = data.get("date")
    if isinstance(date, (int, float)) and math.isfinite(date):
        return datetime.fromtimestamp(date, timezone.utc).isoformat(timespec="seconds")
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def import_lm_eval(results: str | Path, *, run_dir: str | Path, samples: Sequence[str | Path] = (), name: str | None = None) -> RunRecord:
    """Write a run record for an lm-eval results file (and its samples) into ``run_dir``."""
    results_path, run_dir = Path(results), Path(run_dir)
    if (run_dir / RESULTS_FILE).exists():
        raise UsageError(f"--run-dir {run_dir} already holds a run record; import into a new folder")
    data = _read_results(results_path)
    groups = _groups(data, str(results_path))
    tasks = [task for task in _results(data) if task not in groups]
    files = _samples_files(results_path, [Path(p) for p in samples], tasks)
    lm_eval = str(data.get("lm_eval_version") or "unknown")
    entries: dict[str, TaskEntry] = {}
    documents: dict[str, list[JSONObject]] = {}
    for task in tasks:  # everything is checked before anything is written
        rows = None
        if task in files:
            rows = _read_samples_file(files[task])
            _check_task_hash(files[task], rows, _object(data.get("task_hashes"), f"{results_path}: task_hashes").get(task))
        entries[TASK_PREFIX + task], documents[TASK_PREFIX + task] = _task_entry(task, data, rows, run_dir, lm_eval, str(results_path))
    if not entries:
        raise DataError(f"{results_path}: no task results to import (only groups: {', '.join(groups)})")
    run_dir.mkdir(parents=True, exist_ok=True)
    for task_name, docs in documents.items():
        if docs:  # samples files are named by their content: the entry names the file written
            entries[task_name] = entries[task_name].model_copy(update={"samples": write_samples(run_dir, task_name, docs)})
    record = RunRecord(
        run_id=uuid.uuid4().hex[:12],
        created=_created(data),
        model=_model(data, name, results_path, files),
        tasks=entries,
        skipped={TASK_PREFIX + group: f"lm-eval group over {len(subtasks)} subtasks ({', '.join(map(str, subtasks[:5]))}); its subtasks are imported, the pooled value is not"
                 for group, subtasks in groups.items() if group in _results(data)},
        settings={"imported_by": f"evalharness {package_version('evalharness')}", "lm_eval_config": _plain(data.get("config") or {})},
        environment=capture_environment(None),
    )
    try:
        write_record(run_dir, record)
    except ValueError as exc:  # NaN/Infinity in lm-eval's settings cannot be written as JSON
        raise RecordError(f"{results_path}: cannot be written as a run record ({exc})") from None
    return record
