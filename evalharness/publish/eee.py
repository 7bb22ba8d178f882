"""A run as Every Eval Ever records: an aggregate JSON with uncertainty and instance JSONL.

Every Eval Ever (the ``every-eval-ever`` package, schema 0.3.0) stores one evaluation run as
``data/<collection>/<developer>/<model>/<uuid>.json`` plus ``<uuid>_samples.jsonl`` beside it.
Each recorded metric becomes an ``evaluation_results`` entry (value, standard error, interval
with its method, n, bounds and signature); each per-example score becomes one instance line
pointing at its aggregate result (``evaluation_result_id``). Undefined values are left out
and listed, never written as numbers; so are instance lines whose correctness cannot be
told. The file name is a UUID derived from the run, so exporting the same run again replaces
its files instead of adding a duplicate. The export is checked with :mod:`.eee_check` (the
package's cross-file rules) before the command succeeds.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from evalharness.errors import EvalHarnessError, UsageError
from evalharness.jsonvalues import JSONArray, JSONObject, JsonValue, finite_number
from evalharness.metrics.base import package_version
from evalharness.publish.common import (
    PublishError,
    hub_dataset,
    json_text,
    partial_reasons,
    sha256_file,
    string_map,
)
from evalharness.records.record import (
    RunRecord,
    TaskEntry,
    atomic_write_text,
    load_record,
    read_samples,
    row_scores,
)
from evalharness.types import MetricResult, signature_text

__all__ = ["EEE_SCHEMA_VERSION", "EeeOptions", "EeeResult", "export_eee"]

EEE_SCHEMA_VERSION = "0.3.0"
RELATIONSHIPS = ("first_party", "third_party", "collaborative", "other")
AVAILABILITY = ("open_weights", "closed_weights", "unknown")
_BAD_COMPONENT = re.compile(r'[<>:"\\|?*\x00-\x1f]')
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


@dataclass(frozen=True)
class EeeOptions:
    output: Path  # the datastore root; files go under output/data/...
    collection: str = "evalharness"
    model_id: str | None = None  # Hugging Face form, ORG/NAME
    developer: str | None = None  # needed when the id has no ORG/ prefix
    organization: str = "unknown"  # who provides the data (source_metadata)
    relationship: str = "other"  # evaluator's relationship to the model
    availability: str = "unknown"
    instances: bool = True
    tasks_dirs: Sequence[str | Path] = ()
    now: float | None = None  # retrieval time (tests pin it)


@dataclass(frozen=True)
class EeeResult:
    aggregate: Path
    samples: Path | None
    n_results: int
    n_instances: int
    omitted: dict[str, str]


def _component(value: str, what: str) -> str:
    """One portable path component of the datastore (the package refuses the rest)."""
    value = value.strip().replace(":", "_")
    if (not value or value.lower() == "unknown" or value in {".", "..", "data"} or _BAD_COMPONENT.search(value)
            or value.endswith((".", " ")) or value.split(".", 1)[0].upper() in _RESERVED):
        raise UsageError(f"{what} '{value}' cannot name a datastore folder (Every Eval Ever needs a known, portable name)")
    return value


def _identity(record: RunRecord, options: EeeOptions) -> tuple[str, str, str, str]:
    """(model id, collection folder, developer folder, model folder), as the datastore files them:
    the developer is the id's ORG/ prefix (``--developer`` only for a flat id)."""
    model_id = (options.model_id or record.model.name).strip()
    parts = model_id.split("/")
    if any(not part for part in parts):
        raise UsageError(f"model id '{model_id}' is not of the form ORG/NAME; pass --model-id")
    if len(parts) == 1 and not options.developer:
        raise UsageError(
            f"model '{model_id}' has no ORG/ prefix; pass --model-id ORG/NAME (its Hub id) or --developer NAME"
        )
    developer, names = (parts[0], parts[1:]) if len(parts) > 1 else (options.developer or "", parts)
    collection = "_".join(_component(part, "--collection") for part in options.collection.split("/"))
    model_folder = "_".join(_component(name, "model name") for name in names)
    return model_id, collection, _component(developer, "developer"), model_folder


def _file_uuid(record: RunRecord, model_id: str, collection: str) -> str:
    digest = hashlib.sha256(f"{collection}\0{model_id}\0{record.run_id}\0{record.created}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _bounds(entry: MetricResult) -> tuple[float, float]:
    from evalharness.metrics.registry import metric_class

    try:
        return metric_class(entry.metric).bounds
    except EvalHarnessError:  # imported runs name metrics the registry does not have
        return (-math.inf, math.inf)


def _wire_bound(value: float) -> float | str:
    return value if math.isfinite(value) else ("Infinity" if value > 0 else "-Infinity")


def _source_data(task_name: str, task: TaskEntry, options: EeeOptions) -> JSONObject:
    details = {"location": task.data.location, "fingerprint": task.data.fingerprint, "source": task.data.source,
               "n_available": task.data.n_available}
    hub = hub_dataset(task_name, task, options.tasks_dirs)
    if hub is None:
        return {"dataset_name": task_name, "source_type": "other", "additional_details": string_map(details)}
    data: JSONObject = {"dataset_name": task_name, "source_type": "hf_dataset", "hf_repo": hub.id, "samples_number": task.n_examples,
            "additional_details": string_map({**details, "config": hub.config, "revision": hub.revision, "note": hub.note})}
    if hub.split:
        data["hf_split"] = hub.split
    return data


def _uncertainty(entry: MetricResult, n_resamples: object) -> JSONObject:
    uncertainty: JSONObject = {"num_samples": entry.n}
    if finite_number(entry.stderr) is not None:
        uncertainty["standard_error"] = {"value": entry.stderr, "method": entry.ci_method}
    low, high = (finite_number(bound) for bound in entry.ci)
    if low is not None and high is not None:
        uncertainty["confidence_interval"] = {"lower": low, "upper": high, "method": entry.ci_method}
    if "bootstrap" in entry.ci_method and isinstance(n_resamples, int):
        uncertainty["num_bootstrap_samples"] = n_resamples
    return uncertainty


def _metric_config(task: TaskEntry, key: str, entry: MetricResult) -> JSONObject:
    low, high = _bounds(entry)
    parameters: JSONObject = {name: value if isinstance(value, (str, int, float, bool)) or value is None else json_text(value)
                  for name, value in entry.settings.items()}
    return {
        "metric_id": entry.metric,
        "metric_name": key,
        "metric_parameters": parameters,
        "lower_is_better": not entry.higher_is_better,
        "score_type": "continuous",
        "min_score": _wire_bound(low),
        "max_score": _wire_bound(high),
        "additional_details": string_map({"signature": signature_text(entry.signature), "ci_method": entry.ci_method,
                                          "ideal": entry.ideal, "task_version": task.version, "spec_hash": task.spec_hash,
                                          "formulation": task.formulation, "data_fingerprint": task.data.fingerprint}),
    }


def _result(task_name: str, task: TaskEntry, key: str, entry: MetricResult, record: RunRecord, source: JSONObject,
            value: float, uncertainty: JSONObject, suffix: str = "") -> JSONObject:
    details = {"n_examples": task.n_examples, "partial": "; ".join(partial_reasons(task)) or None,
               "notes": "; ".join(task.notes) or None}
    return {
        "evaluation_result_id": f"{task_name}/{key}{suffix}",
        "evaluation_name": task_name + (f" [{suffix.removeprefix('/group:')}]" if suffix else ""),
        "source_data": source,
        "evaluation_timestamp": record.created,
        "metric_config": _metric_config(task, key, entry),
        "score_details": {"score": value, "details": string_map(details), "uncertainty": uncertainty},
        "generation_config": {"additional_details": string_map(task.settings)},
    }


def _results(record: RunRecord, options: EeeOptions, omitted: dict[str, str]) -> list[JSONObject]:
    results: list[JSONObject] = []
    n_resamples = record.settings.get("n_resamples", 1000)
    for task_name, task in record.tasks.items():
        source = _source_data(task_name, task, options)  # reads the task spec once per task
        for key, entry in task.metrics.items():
            value = finite_number(entry.value)
            if value is None:
                omitted[f"{task_name}/{key}"] = "value undefined in the run (null), not exported as a number"
                continue
            results.append(_result(task_name, task, key, entry, record, source, value, _uncertainty(entry, n_resamples)))
            for group, group_entry in entry.groups.items():
                group_value = finite_number(group_entry.value)
                if group_value is None:
                    omitted[f"{task_name}/{key}/group:{group}"] = "group value undefined in the run"
                    continue
                low, high = (finite_number(bound) for bound in group_entry.ci)
                uncertainty: JSONObject = {"num_samples": group_entry.n}
                if low is not None and high is not None:
                    uncertainty["confidence_interval"] = {"lower": low, "upper": high, "method": entry.ci_method}
                results.append(_result(task_name, task, key, entry, record, source, group_value, uncertainty, f"/group:{group}"))
    return results


def _correctness(entry: MetricResult, scores: Sequence[float]) -> float | None:
    """The per-example score that counts as correct: the metric's best bound, or 1 (0 when
    lower is better) for 0/1 scores; None when correctness is not defined for the metric."""
    low, high = _bounds(entry)
    best = high if entry.higher_is_better else low
    if math.isfinite(best):
        return best
    if set(scores) <= {0.0, 1.0}:
        return 1.0 if entry.higher_is_better else 0.0
    return None


def _references(gold: JsonValue) -> JSONArray:
    if gold is None:
        return []
    return [json_text(item) for item in gold] if isinstance(gold, list) else [json_text(gold)]


def _instances(run_dir: Path, record: RunRecord, evaluation_id: str, model_id: str, omitted: dict[str, str]) -> Iterator[JSONObject]:
    for task_name, task in record.tasks.items():
        try:
            rows = read_samples(run_dir, task_name)
        except EvalHarnessError as exc:
            omitted[f"{task_name}/*"] = f"no instance lines: {exc}"
            continue
        by_row = [row_scores(row, f"{task_name} samples, row {index}") for index, row in enumerate(rows)]
        for key, entry in task.metrics.items():
            scores = [finite_number(row.get(key)) for row in by_row]
            known = [score for score in scores if score is not None]
            correct = _correctness(entry, known)
            if finite_number(entry.value) is None:
                omitted[f"{task_name}/{key} instances"] = "no instance lines for an undefined aggregate value"
                continue
            if not known or correct is None:
                omitted[f"{task_name}/{key} instances"] = "no per-example score whose correctness is defined (corpus-level metric)"
                continue
            if len(known) < len(rows):
                omitted[f"{task_name}/{key} instances"] = f"{len(rows) - len(known)} examples have no per-example score"
            for row, score in zip(rows, scores):
                if score is None:
                    continue
                raw, references, prediction = json_text(row.get("input")), _references(row.get("gold")), json_text(row.get("prediction"))
                yield {
                    "schema_version": EEE_SCHEMA_VERSION,
                    "evaluation_id": evaluation_id,
                    "model_id": model_id,
                    "evaluation_name": task_name,
                    "evaluation_result_id": f"{task_name}/{key}",
                    "sample_id": json_text(row.get("id")),
                    "sample_hash": hashlib.sha256(json.dumps([raw, references], ensure_ascii=False).encode()).hexdigest(),
                    "interaction_type": "single_turn",
                    "input": {"raw": raw, "reference": references},
                    "output": {"raw": [prediction]},
                    "messages": None,
                    "answer_attribution": [{"turn_idx": 0, "source": "output.raw", "extracted_value": prediction,
                                            "extraction_method": task.formulation, "is_terminal": True}],
                    "evaluation": {"score": score, "is_correct": score == correct},
                    "metadata": {"task": task_name, "metric": key, "is_correct": f"per-example {key} == {correct:g}"},
                }


def _model_info(record: RunRecord, model_id: str, developer: str, options: EeeOptions) -> JSONObject:
    model = record.model
    deployment = "self_deployed" if model.source == "checkpoint" else "unknown"
    info: JSONObject = {
        "name": model.name,
        "id": model_id,
        "developer": developer,
        "additional_details": string_map({
            "deployment_type": deployment, "model_availability": options.availability, "fingerprint": model.fingerprint,
            "source": model.source, "kind": model.kind, "revision": model.revision, "dtype": model.dtype,
            "device": model.device, "num_parameters": model.num_parameters, "architecture": model.architecture,
        }),
    }
    if model.source == "checkpoint":
        packages = record.environment.get("packages")
        version = packages.get("transformers", "unknown") if isinstance(packages, dict) else "unknown"
        info["inference_engine"] = {"name": "transformers", "version": str(version)}
    return info


def _library(record: RunRecord) -> JSONObject:
    notes = record.model.notes
    if record.model.source == "lm-eval":
        return {"name": "lm_eval", "version": str(notes.get("lm_eval_version") or "unknown"),
                "additional_details": {"imported_by": f"evalharness {package_version('evalharness')}"}}
    return {"name": "evalharness", "version": package_version("evalharness"),
            "additional_details": string_map({"revision": record.environment.get("evalharness_revision")})}


def _check_options(options: EeeOptions) -> None:
    for value, allowed, option in ((options.relationship, RELATIONSHIPS, "--relationship"),
                                   (options.availability, AVAILABILITY, "--availability")):
        if value not in allowed:
            raise UsageError(f"{option} '{value}': expected one of {', '.join(allowed)}")


def export_eee(run_dir: str | Path, options: EeeOptions) -> EeeResult:
    """Write the run's aggregate JSON and instance JSONL under ``options.output``."""
    from evalharness.publish.eee_check import check_export

    _check_options(options)
    run_dir = Path(run_dir)
    record = load_record(run_dir)
    model_id, collection, developer, model_folder = _identity(record, options)
    now = options.now if options.now is not None else time.time()
    evaluation_id = f"{collection}/{model_id}/{int(now)}"
    file_id = _file_uuid(record, model_id, collection)
    folder = options.output / "data" / collection / developer / model_folder
    omitted: dict[str, str] = {}
    results = _results(record, options, omitted)
    if not results:
        raise PublishError(f"{run_dir}: no defined metric value to export ({'; '.join(omitted.values()) or 'no tasks'})")
    instances = list(_instances(run_dir, record, evaluation_id, model_id, omitted)) if options.instances else []
    samples_path = folder / f"{file_id}_samples.jsonl"
    aggregate: JSONObject = {
        "schema_version": EEE_SCHEMA_VERSION,
        "evaluation_id": evaluation_id,
        "evaluation_timestamp": record.created,
        "retrieved_timestamp": str(int(now)),
        "source_metadata": {
            "source_name": "evalharness",
            "source_type": "evaluation_run" if instances else "documentation",
            "source_organization_name": options.organization,
            "evaluator_relationship": options.relationship,
            "additional_details": string_map({"run_id": record.run_id, "run_settings": record.settings,
                                              "skipped_tasks": record.skipped or None, "omitted": omitted or None}),
        },
        "eval_library": _library(record),
        "model_info": _model_info(record, model_id, developer, options),
        "evaluation_results": [*results],
    }
    if instances:
        text = "".join(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n" for row in instances)
        atomic_write_text(samples_path, text)
        aggregate["detailed_evaluation_results"] = {
            "format": "jsonl", "file_path": samples_path.relative_to(options.output).as_posix(),
            "hash_algorithm": "sha256", "checksum": sha256_file(samples_path), "total_rows": len(instances),
        }
    else:
        samples_path.unlink(missing_ok=True)  # a stale companion from an earlier export would not match
    aggregate_path = folder / f"{file_id}.json"
    atomic_write_text(aggregate_path, json.dumps(aggregate, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    problems = check_export(options.output, aggregate_path)
    if problems:
        raise PublishError(f"{aggregate_path}: the export breaks Every Eval Ever's rules: " + "; ".join(problems[:5]))
    return EeeResult(aggregate_path, samples_path if instances else None, len(results), len(instances), omitted)


def summary(result: EeeResult) -> Mapping[str, JsonValue]:
    return {"aggregate": str(result.aggregate), "samples": str(result.samples) if result.samples else None,
            "results": result.n_results, "instances": result.n_instances, "omitted": {**result.omitted}}
