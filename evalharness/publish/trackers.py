"""Logging a run record to an experiment tracker: MLflow, Weights & Biases or Trackio.

``--log-to mlflow[:URI]`` (``run``, ``score``, ``publish log``) logs every metric value with
its interval and standard error as separate metrics (``<task>/<metric>``, ``<task>/<metric>.ci_low``,
``.ci_high``, ``.stderr``, and per group ``.group.<name>``; MLflow's file store keeps a metric
as a file, so no name may be another's folder), the run's settings and
model provenance as params, each metric's signature as a tag, and ``results.json``,
``signatures.json`` and the HTML report as artifacts. Undefined values are not logged as
numbers; they are listed in the ``evalharness.undefined`` tag, and a run evaluated on part of
its data is tagged ``evalharness.partial``. The record is already on disk when logging
starts, so a tracker failure loses nothing: the command says so and exits 2. A record
logged before (same ``results.json`` content) is not logged twice.

MLflow's local ``file:`` store (or a plain folder) is opted into explicitly here, as MLflow 3
asks (``MLFLOW_ALLOW_FILE_STORE``); ``sqlite:///`` stores need the full ``mlflow`` package.
W&B and Trackio are used only when installed; asking for one that is not is an error before
any evaluation starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

from evalharness.jsonvalues import finite_number
from evalharness.publish.common import PublishError, json_text, partial_reasons
from evalharness.publish.targets import Tracker, check_tracker
from evalharness.records.record import RunRecord, load_record
from evalharness.types import signature_text

__all__ = ["TRACKERS", "log_run", "metric_values_for"]

_T = TypeVar("_T")


# -- what is logged, the same for every tracker --------------------------------------------------

_UNSAFE_KEY = re.compile(r"[^/\w.\- ]+")


def _key(*parts: str) -> str:
    """A metric or param name every tracker accepts (MLflow's rule is the strictest)."""
    key = "/".join(_UNSAFE_KEY.sub("_", part).replace("..", "_").strip("/ ") or "_" for part in parts)
    return re.sub(r"/+", "/", key)[:250]


def metric_values_for(record: RunRecord) -> tuple[dict[str, float], dict[str, str], list[str]]:
    """(metric name -> value, metric name -> the record field it comes from, undefined values)."""
    values: dict[str, float] = {}
    origin: dict[str, str] = {}
    undefined: list[str] = []

    def add(name: str, value: float | None, where: str) -> None:
        number = finite_number(value)
        if number is None:
            if value is not None or where.endswith(".value"):
                undefined.append(where)
            return
        if name in origin and origin[name] != where:
            raise PublishError(f"'{origin[name]}' and '{where}' would both be logged as metric '{name}'; rename a task or metric key")
        values[name], origin[name] = number, where

    for task_name, task in record.tasks.items():
        for key, entry in task.metrics.items():
            base, where = _key(task_name, key), f"tasks.{task_name}.metrics.{key}"
            add(base, entry.value, f"{where}.value")
            add(f"{base}.ci_low", entry.ci[0], f"{where}.ci[0]")
            add(f"{base}.ci_high", entry.ci[1], f"{where}.ci[1]")
            add(f"{base}.stderr", entry.stderr, f"{where}.stderr")
            for group, group_entry in entry.groups.items():
                add(f"{base}.group.{_key(group).replace('/', '_')}", group_entry.value, f"{where}.groups.{group}.value")
    return values, origin, undefined


def _params(record: RunRecord) -> dict[str, str]:
    params = {"model/name": record.model.name, "model/fingerprint": record.model.fingerprint,
              "model/source": record.model.source, "model/kind": record.model.kind, "run_id": record.run_id}
    for name, value in record.settings.items():
        params[_key("settings", name)] = json_text(value)
    for task_name, task in record.tasks.items():
        for name, field in {"version": task.version, "spec_hash": task.spec_hash, "data_fingerprint": task.data.fingerprint,
                            "n_examples": task.n_examples, "formulation": task.formulation}.items():
            params[_key("task", task_name, name)] = json_text(field)
    return {key: value for key, value in params.items() if len(value) <= 6000}


def _tags(record: RunRecord, digest: str, undefined: list[str]) -> dict[str, str]:
    tags = {"evalharness.run_id": record.run_id, "evalharness.results_sha256": digest, "evalharness.model": record.model.name}
    partial = {name: "; ".join(partial_reasons(task)) for name, task in record.tasks.items() if partial_reasons(task)}
    if partial or record.skipped:
        tags["evalharness.partial"] = json_text({"partial_tasks": partial, "skipped_tasks": record.skipped})[:8000]
    if undefined:
        tags["evalharness.undefined"] = ", ".join(undefined)[:8000]
    for task_name, task in record.tasks.items():
        for key, entry in task.metrics.items():
            tags[_key("signature", task_name, key)] = signature_text(entry.signature)[:8000]
    return tags


def _artifacts(run_dir: Path, record: RunRecord, origin: Mapping[str, str]) -> dict[str, str]:
    from evalharness.report import render_report

    signatures = {task: {key: signature_text(entry.signature) for key, entry in t.metrics.items()} for task, t in record.tasks.items()}
    return {
        "results.json": (run_dir / "results.json").read_text(encoding="utf-8"),
        "signatures.json": json.dumps({"signatures": signatures, "metric_names": dict(origin)}, indent=2, ensure_ascii=False),
        "report.html": render_report(run_dir),
    }


def _digest(run_dir: Path) -> str:
    return hashlib.sha256((run_dir / "results.json").read_bytes()).hexdigest()


# -- MLflow ----------------------------------------------------------------------------------------


def _mlflow_uri(target: str | None) -> str | None:
    """A plain folder becomes a ``file:`` URI; None leaves MLflow's own default."""
    if target is None or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", target):
        return target
    return Path(target).resolve().as_uri()


@contextlib.contextmanager
def _file_store_opt_in(uri: str | None) -> Iterator[None]:
    """MLflow 3 refuses its file store unless asked; a ``file:`` URI given here is that ask."""
    if uri is None or not uri.startswith("file:"):
        yield
        return
    previous = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = previous


def _chunks(items: list[_T], size: int) -> Iterator[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _log_mlflow(run_dir: Path, record: RunRecord, tracker: Tracker) -> str:
    from mlflow.entities import Metric, Param
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = _mlflow_uri(tracker.target)
    values, origin, undefined = metric_values_for(record)
    digest = _digest(run_dir)
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "evalharness"
    with _file_store_opt_in(uri):
        try:
            client = MlflowClient(tracking_uri=uri)
            found = client.get_experiment_by_name(experiment)
            experiment_id = found.experiment_id if found else client.create_experiment(experiment)
            earlier = client.search_runs([experiment_id], filter_string=f"tags.`evalharness.results_sha256` = '{digest}'")
            done = [run for run in earlier if run.info.status == "FINISHED"]
            if done:
                return f"already logged as MLflow run {done[0].info.run_id} ({client.tracking_uri}); not logged again"
            run = client.create_run(experiment_id, run_name=f"{record.model.name} {record.run_id}", tags=_tags(record, digest, undefined))
        except MlflowException as exc:
            raise PublishError(f"MLflow tracking store {uri or '(MLflow default)'}: {exc.message}") from None
        run_id, now = run.info.run_id, int(time.time() * 1000)
        try:
            for batch in _chunks([Metric(name, value, now, 0) for name, value in values.items()], 1000):
                client.log_batch(run_id, metrics=batch)
            for params in _chunks([Param(name, value) for name, value in _params(record).items()], 100):
                client.log_batch(run_id, params=params)
            for name, text in _artifacts(run_dir, record, origin).items():
                client.log_text(run_id, text, name)
            client.set_terminated(run_id, "FINISHED")
        except (MlflowException, OSError) as exc:
            client.set_terminated(run_id, "FAILED")  # never shown as a complete run
            raise PublishError(f"MLflow run {run_id} marked FAILED: {getattr(exc, 'message', exc)}") from None
    return f"logged to MLflow run {run_id} in experiment '{experiment}' ({client.tracking_uri})"


# -- W&B and Trackio (same calls: init, log, finish) -----------------------------------------------


def _log_wandb(run_dir: Path, record: RunRecord, tracker: Tracker) -> str:
    import wandb

    values, origin, undefined = metric_values_for(record)
    run = wandb.init(project=tracker.target or "evalharness", name=f"{record.model.name} {record.run_id}",
                     config=_params(record), tags=["evalharness"], reinit=True)
    try:
        run.summary.update(values)
        run.summary.update({"evalharness/" + k: v for k, v in _tags(record, _digest(run_dir), undefined).items()})
        artifact = wandb.Artifact(f"evalharness-{record.run_id}", type="evaluation")
        for name, text in _artifacts(run_dir, record, origin).items():
            with artifact.new_file(name, encoding="utf-8") as stream:
                stream.write(text)
        run.log_artifact(artifact)
    finally:
        run.finish()
    return f"logged to W&B run {run.id} (project {tracker.target or 'evalharness'})"


def _log_trackio(run_dir: Path, record: RunRecord, tracker: Tracker) -> str:
    import trackio

    values, _, undefined = metric_values_for(record)
    config = {**_params(record), **_tags(record, _digest(run_dir), undefined)}
    trackio.init(project=tracker.target or "evalharness", name=f"{record.model.name} {record.run_id}", config=config)
    try:
        trackio.log(values)
    finally:
        trackio.finish()
    return f"logged to Trackio project {tracker.target or 'evalharness'} (metrics and settings; artifacts stay in {run_dir})"


TRACKERS: dict[str, Callable[[Path, RunRecord, Tracker], str]] = {
    "mlflow": _log_mlflow,
    "wandb": _log_wandb,
    "trackio": _log_trackio,
}


def log_run(run_dir: str | Path, tracker: Tracker) -> str:
    """Log the run record in ``run_dir``; returns what was done, for the command to print."""
    check_tracker(tracker)
    run_dir = Path(run_dir)
    return TRACKERS[tracker.kind](run_dir, load_record(run_dir), tracker)
