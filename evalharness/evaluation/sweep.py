"""Sweeps: many models × task groups, one job each, locally or on a Ray cluster.

A job is one ``run_evaluation`` of one model on one task group; its run directory lands in
``OUTPUT/<model>/<group>/``. ``OUTPUT`` is a local (or shared) path or any fsspec URL
(``s3://bucket/sweep``, ``gs://...``, ``file:///...``): with a URL, each job writes locally on
its worker and uploads the finished run directory, so a half-written run never appears there.
At the end the driver builds a leaderboard from the runs that finished (``OUTPUT/leaderboard/``).

Executors (a mapping, chosen by the spec): ``local`` runs the jobs one after another in this
process; ``ray`` submits them as Ray tasks (``ray.init(address=...)``, or a local instance with
``local_ray=N`` CPUs), each with ``num_gpus=gpus_per_job`` and ``max_retries`` retries, so a
worker that dies (out of memory, preempted node, ``os._exit``) is run again. Errors a user must
fix (``EvalHarnessError``: a bad checkpoint, missing data) are not retried: the job fails at
once with its message. One failed job never loses the others' results; the sweep reports every
failure and the CLI exits 1. Ray is an optional dependency, imported only by the ``ray`` executor.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TypedDict

from pydantic import Field, field_validator, model_validator

from evalharness.config import StrictModel, load_config
from evalharness.errors import EvalHarnessError, UsageError
from evalharness.evaluation.settings import RunSettings, shared_settings

__all__ = [
    "EXECUTORS",
    "Job",
    "JobOutcome",
    "SweepResult",
    "SweepSpec",
    "load_sweep_spec",
    "plan_jobs",
    "run_job",
    "run_sweep",
]

Progress = Callable[[str], None]
# Called in the worker after a job's evaluation, before its run is delivered (picklable for
# Ray); the tests inject faults here (``evalharness.testing.faults``).
AfterEvaluation = Callable[[], None]


class _Attempt(TypedDict):
    """One attempt of a job, as a plain value (it comes back from a Ray worker)."""

    ok: bool
    location: str
    error: str | None
    seconds: float


class SweepSpec(StrictModel):
    """A sweep: ``models`` × ``tasks`` (each entry one job's task group, e.g. ``glue`` or
    ``glue/sst2``), where to write, and how to schedule."""

    models: list[str] = Field(min_length=1)
    tasks: list[str] = Field(min_length=1)
    output: str
    ray_address: str | None = None  # "auto", "HOST:PORT" or "ray://HOST:10001"
    local_ray: int | None = Field(default=None, ge=1, description="start a local Ray instance with N CPUs")
    gpus_per_job: float = Field(default=0, ge=0)
    cpus_per_job: float = Field(default=1, gt=0)
    max_retries: int = Field(default=2, ge=0)
    resume: bool = False  # skip jobs whose run directory already holds a results.json
    leaderboard: bool = True
    run: dict[str, object] = Field(
        default_factory=dict, description="run settings every job shares (any setting of `evalharness run` but model, tasks, output)"
    )

    @field_validator("run")
    @classmethod
    def _shared_run_settings(cls, values: dict[str, object]) -> dict[str, object]:
        shared_settings(values)
        return values

    @property
    def shared(self) -> RunSettings:
        """The validated settings every job shares."""
        return shared_settings(self.run)

    @field_validator("models", "tasks")
    @classmethod
    def _no_blank_or_repeated(cls, values: list[str]) -> list[str]:
        cleaned = [value.strip() for value in values]
        if any(not value for value in cleaned):
            raise ValueError("names must not be empty")
        repeated = sorted({value for value in cleaned if cleaned.count(value) > 1})
        if repeated:
            raise ValueError(f"listed more than once: {', '.join(repeated)}")
        return cleaned

    @model_validator(mode="after")
    def _one_ray(self) -> SweepSpec:
        if self.ray_address and self.local_ray:
            raise ValueError("give either ray_address or local_ray, not both")
        return self

    @property
    def executor(self) -> str:
        """``ray`` with a cluster address or a local Ray instance, else ``local`` (sequential)."""
        return "ray" if self.ray_address or self.local_ray else "local"


def load_sweep_spec(path: str | os.PathLike[str], **overrides: object) -> SweepSpec:
    """A sweep YAML (safe loading; unknown keys rejected), with command-line overrides."""
    return load_config(path, SweepSpec, what="a sweep file (models, tasks, output, ...)", overrides=overrides).value


def _slug(name: str) -> str:
    """A folder name: ``glue/sst2`` -> ``glue__sst2``, ``org/model`` -> ``org__model``."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", name.replace("/", "__")).strip("._") or "unnamed"


def _model_slug(model: str) -> str:
    """A checkpoint directory by its folder name, a hub id by ``org__name``."""
    local = Path(model).expanduser()
    is_path = model.startswith((".", "/", "~")) or local.exists()
    return _slug(local.name if is_path else model)


@dataclass(frozen=True)
class Job:
    model: str
    group: str

    @property
    def key(self) -> str:
        """``<model>/<group>``: the run directory under the sweep's output."""
        return f"{_model_slug(self.model)}/{_slug(self.group)}"


@dataclass(frozen=True)
class JobOutcome:
    job: Job
    ok: bool
    location: str
    error: str | None = None
    attempts: int | None = None
    seconds: float = 0.0


@dataclass
class SweepResult:
    outcomes: list[JobOutcome] = field(default_factory=list)
    leaderboard: str | None = None
    leaderboard_error: str | None = None

    @property
    def failed(self) -> list[JobOutcome]:
        return [outcome for outcome in self.outcomes if not outcome.ok]


def plan_jobs(spec: SweepSpec) -> list[Job]:
    jobs = [Job(model, group) for model in spec.models for group in spec.tasks]
    seen: dict[str, Job] = {}
    for job in jobs:
        if job.key in seen:
            other = seen[job.key]
            raise UsageError(
                f"models '{other.model}' and '{job.model}' (or groups '{other.group}', '{job.group}') "
                f"would share the output folder '{job.key}'; rename one checkpoint folder"
            )
        seen[job.key] = job
    return jobs


# -- output locations: a local path or an fsspec URL --------------------------------------------


def _is_url(output: str) -> bool:
    return "://" in output


def _join(output: str, *parts: str) -> str:
    return "/".join([output.rstrip("/"), *parts]) if _is_url(output) else str(Path(output, *parts))


def _exists(location: str) -> bool:
    if not _is_url(location):
        return Path(location).exists()
    import fsspec

    fs, path = fsspec.core.url_to_fs(location)
    return fs.exists(path)


def _check_output(output: str) -> None:
    """Fail before any job runs when the output URL's filesystem is unknown or not installed."""
    if not _is_url(output):
        return
    import fsspec

    try:
        fsspec.core.url_to_fs(output)
    except (ImportError, ValueError) as exc:
        raise UsageError(f"--output {output}: {exc}") from None


def _upload(local_dir: Path, location: str) -> None:
    import fsspec

    fs, path = fsspec.core.url_to_fs(location)
    if fs.exists(path):
        fs.rm(path, recursive=True)
    # results.json last: a run directory that has one is complete.
    files = sorted((p for p in local_dir.rglob("*") if p.is_file()), key=lambda p: (p.name == "results.json", str(p)))
    for file in files:
        target = f"{path}/{file.relative_to(local_dir).as_posix()}"
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(str(file), target)


def _download_records(output: str, keys: Sequence[str], into: Path) -> list[Path]:
    import fsspec

    fs, base = fsspec.core.url_to_fs(output)
    runs = []
    for key in keys:
        target = into / key
        target.mkdir(parents=True, exist_ok=True)
        fs.get_file(f"{base.rstrip('/')}/{key}/results.json", str(target / "results.json"))
        runs.append(target)
    return runs


# -- one job -------------------------------------------------------------------------------------


def run_job(job: Job, spec: SweepSpec, *, progress: Progress | None = None, after_evaluation: AfterEvaluation | None = None) -> str:
    """Run one job and put its run directory at ``OUTPUT/<model>/<group>``; returns that.

    Raises what ``run_evaluation`` raises; a URL output is written only once the run finished.
    """
    from evalharness.evaluation.runner import RunConfig, run_evaluation

    location = _join(spec.output, *job.key.split("/"))
    with tempfile.TemporaryDirectory(prefix="evalharness-sweep-") as scratch:
        local_dir = Path(scratch, "run") if _is_url(spec.output) else Path(location)
        # The settings are shared by every model of the sweep, so one a model's tasks do not use
        # is recorded as not applied, not refused.
        config = RunConfig(**spec.run, model=job.model, tasks=[job.group], output=local_dir, refuse_unused_options=False)
        run_evaluation(config, progress=progress)
        if after_evaluation is not None:
            after_evaluation()
        if _is_url(spec.output):
            _upload(local_dir, location)
    return location


def _attempt(job: Job, spec: SweepSpec, after_evaluation: AfterEvaluation | None = None) -> _Attempt:
    """A job as a result value: project errors are a failed outcome (never retried, retrying
    cannot fix a bad checkpoint); anything else propagates so the executor retries it."""
    started = time.perf_counter()
    try:
        location = run_job(job, spec, after_evaluation=after_evaluation)
    except EvalHarnessError as exc:
        return {"ok": False, "location": "", "error": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - started}
    return {"ok": True, "location": location, "error": None, "seconds": time.perf_counter() - started}


# -- executors -------------------------------------------------------------------------------


class _Tracker:
    """The live progress line: jobs done / running / failed, printed on every change."""

    def __init__(self, total: int, progress: Progress) -> None:
        self.total, self.progress = total, progress
        self.done = self.failed = self.running = 0

    def update(self, message: str) -> None:
        self.progress(
            f"[sweep {self.done + self.failed}/{self.total}] {self.done} done, {self.running} running, "
            f"{self.failed} failed — {message}"
        )


def _run_local(jobs: Sequence[Job], spec: SweepSpec, progress: Progress, after_evaluation: AfterEvaluation | None) -> list[JobOutcome]:
    tracker = _Tracker(len(jobs), progress)
    outcomes = []
    for job in jobs:
        attempts = 0
        while True:
            attempts += 1
            tracker.running = 1
            tracker.update(f"started {job.key} (attempt {attempts})")
            try:
                result = _attempt(job, spec, after_evaluation)
                break
            except Exception as exc:  # a crash worth retrying (OOM, a flaky filesystem...)
                if attempts > spec.max_retries:
                    result = _Attempt(ok=False, location="", error=_short_error(exc), seconds=0.0)
                    break
                progress(f"  {job.key} failed ({type(exc).__name__}: {exc}); retrying")
        outcomes.append(_finish(job, result, tracker, attempts))
    return outcomes


def _finish(job: Job, result: _Attempt, tracker: _Tracker, attempts: int | None) -> JobOutcome:
    outcome = JobOutcome(job, result["ok"], result["location"], result["error"], attempts, round(result["seconds"], 3))
    tracker.running = max(0, tracker.running - 1)
    if outcome.ok:
        tracker.done += 1
        tracker.update(f"finished {job.key} in {outcome.seconds:.1f} s")
    else:
        tracker.failed += 1
        tracker.update(f"FAILED {job.key}: {str(outcome.error).splitlines()[0]}")
    return outcome


def _short_error(exc: BaseException) -> str:
    lines = traceback.format_exception_only(type(exc), exc)
    return "".join(lines).strip().splitlines()[-1][:2000]


def _ray_module() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise UsageError("Ray is not installed: pip install 'evalharness[ray]' (or run the sweep without --ray-address)") from None
    return ray


def _run_ray(jobs: Sequence[Job], spec: SweepSpec, progress: Progress, after_evaluation: AfterEvaluation | None) -> list[JobOutcome]:
    ray = _ray_module()
    started_here = False
    if not ray.is_initialized():
        if spec.ray_address:
            ray.init(address=spec.ray_address, log_to_driver=False)
        else:
            ray.init(num_cpus=spec.local_ray, include_dashboard=False, log_to_driver=False)
        started_here = True
    try:
        remote = ray.remote(
            max_retries=spec.max_retries, retry_exceptions=True, num_gpus=spec.gpus_per_job, num_cpus=spec.cpus_per_job
        )(_attempt)
        pending = {remote.remote(job, spec, after_evaluation): job for job in jobs}
        tracker = _Tracker(len(jobs), progress)
        tracker.running = len(pending)
        tracker.update(f"submitted {len(jobs)} jobs to Ray ({ray.cluster_resources().get('CPU', 0):g} CPUs)")
        outcomes: dict[Job, JobOutcome] = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except Exception as exc:  # retries exhausted: the worker died or the job raised
                result = _Attempt(ok=False, location="", error=_short_error(exc), seconds=0.0)
            outcomes[job] = _finish(job, result, tracker, None)
        return [outcomes[job] for job in jobs]
    finally:
        if started_here:
            ray.shutdown()


EXECUTORS: dict[str, Callable[[Sequence[Job], SweepSpec, Progress, AfterEvaluation | None], list[JobOutcome]]] = {
    "local": _run_local,
    "ray": _run_ray,
}


# -- the sweep -----------------------------------------------------------------------------------


def _build_leaderboard(spec: SweepSpec, outcomes: Sequence[JobOutcome]) -> str:
    from evalharness.leaderboard import build_leaderboard, write_leaderboard

    keys = [outcome.job.key for outcome in outcomes if outcome.ok]
    target = _join(spec.output, "leaderboard")
    with tempfile.TemporaryDirectory(prefix="evalharness-board-") as scratch:
        if _is_url(spec.output):
            runs = _download_records(spec.output, keys, Path(scratch, "runs"))
        else:
            runs = [Path(spec.output, *key.split("/")) for key in keys]
        board = build_leaderboard(runs, title=f"Sweep: {len(spec.models)} models × {len(spec.tasks)} task groups")
        local_board = Path(scratch, "leaderboard") if _is_url(spec.output) else Path(target)
        write_leaderboard(board, local_board)
        if _is_url(spec.output):
            _upload(local_board, target)
    return target


def _check_task_code(spec: SweepSpec) -> None:
    """Refuse code-running task files before any job starts (each job checks again, for
    task folders only its workers can see)."""
    from evalharness.metrics.registry import refuse_untrusted_code
    from evalharness.spec.catalog import TaskCatalog

    try:
        catalog = TaskCatalog(spec.shared.tasks_dirs)
        tasks = [catalog.load(name) for group in spec.tasks for name, _ in catalog.resolve([group])]
    except EvalHarnessError:  # a bad task or folder: the jobs report it, each with its own message
        return
    refuse_untrusted_code(tasks, trusted=spec.shared.trust_task_code)


def run_sweep(spec: SweepSpec, *, progress: Progress | None = None, after_evaluation: AfterEvaluation | None = None) -> SweepResult:
    """Run every (model, task group) job and build the leaderboard of those that finished;
    ``after_evaluation`` runs in the worker after each job's evaluation."""
    report = progress or (lambda message: print(message, file=sys.stderr))
    jobs = plan_jobs(spec)
    _check_output(spec.output)
    _check_task_code(spec)
    done_before = [job for job in jobs if spec.resume and _exists(_join(spec.output, *job.key.split("/"), "results.json"))]
    todo = [job for job in jobs if job not in done_before]
    for job in done_before:
        report(f"[sweep] {job.key}: already in {spec.output} (resume), skipped")
    if not _is_url(spec.output):
        Path(spec.output).mkdir(parents=True, exist_ok=True)
    outcomes = EXECUTORS[spec.executor](todo, spec, report, after_evaluation) if todo else []
    outcomes += [JobOutcome(job, True, _join(spec.output, *job.key.split("/")), attempts=0) for job in done_before]
    result = SweepResult(outcomes)
    if spec.leaderboard and any(outcome.ok for outcome in outcomes):
        try:
            result.leaderboard = _build_leaderboard(spec, outcomes)
        except EvalHarnessError as exc:  # the runs are safe; say why the table could not be built
            result.leaderboard_error = str(exc)
    return result
