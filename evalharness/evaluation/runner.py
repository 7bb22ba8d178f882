"""The runner: the only module that knows models *and* metrics.

Order of work is chosen so that mistakes surface before the expensive part: task specs and
data are loaded and validated first, then the model, then every task's formulation is
checked against the model's kind, and only then do forward passes start.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalharness.data.loader import LoadedData, load_examples, resolve_data_dir
from evalharness.data.subset import select_examples
from evalharness.errors import DataError, EvalHarnessError, UsageError
from evalharness.evaluation.scoring import score_task
from evalharness.execution import distributed
from evalharness.execution.cache import PredictionCache
from evalharness.execution.engine import Engine
from evalharness.execution.lock import run_dir_lock
from evalharness.execution.progress import progress_enabled, summary_line, task_progress
from evalharness.prompting import Formulation, FormulationOptions, choose_formulation
from evalharness.records.environment import capture_environment
from evalharness.records.record import ModelEntry, RunRecord, TaskEntry, write_record
from evalharness.spec.catalog import TaskCatalog
from evalharness.spec.loader import Task

__all__ = ["RunConfig", "RunResult", "run_evaluation"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RunConfig:
    """Everything ``evalharness run`` was asked to do."""

    model: str
    tasks: Sequence[str]
    output: Path | None = None
    data_dir: Path | str | None = None
    tasks_dirs: Sequence[Path | str] = ()
    limit: int | None = None
    batch_size: int | str = "auto"  # "auto": 256 on CUDA, 32 on CPU, halved on out-of-memory
    device: str = "auto"
    dtype: str = "auto"
    model_kind: str | None = None
    label_map: Mapping[str, str] | None = None
    trust_remote_code: bool = False
    seed: int = 1234
    n_resamples: int = 1000
    generation: Mapping[str, Any] = field(default_factory=dict)
    num_fewshot: int | None = None  # overrides prompt.few_shot.n of prompted tasks
    max_batch_tokens: int | None = None  # padded tokens per batch, on top of batch_size
    cache: Path | None = None  # prediction cache; default <run_dir>/cache/predictions.sqlite
    fresh: bool = False  # ignore cached predictions (and overwrite them)
    check_determinism: bool = False  # rerun a sample of each task at another batch size
    show_progress: bool = False  # a progress bar per task on stderr
    device_map: str | None = None  # "auto": spread a checkpoint too large for one device (accelerate)
    examples: Mapping[str, Sequence[str]] | None = None  # task -> only these example ids (sequential gates, noise)

    def recorded_settings(self) -> dict[str, Any]:
        return {
            "tasks": list(self.tasks),
            "limit": self.limit,
            "batch_size": self.batch_size,
            "max_batch_tokens": self.max_batch_tokens,
            "device": self.device,
            "dtype": self.dtype,
            "model_kind": self.model_kind,
            "label_map": dict(self.label_map) if self.label_map else None,
            "seed": self.seed,
            "n_resamples": self.n_resamples,
            "generation": dict(self.generation),
            "num_fewshot": self.num_fewshot,
            "data_dir": str(self.data_dir) if self.data_dir else None,
            **({"device_map": self.device_map} if self.device_map else {}),
            **({"examples": {task: len(ids) for task, ids in self.examples.items()}} if self.examples else {}),
        }


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    record: RunRecord


@dataclass
class _PlannedTask:
    task: Task
    data: LoadedData
    explicit: bool  # named on the command line, not reached through a group
    formulation: Formulation | None = None
    state: Any = None  # the formulation's per-(task, model) state, e.g. a label mapping


def _formulation_options(config: RunConfig) -> FormulationOptions:
    return FormulationOptions(
        label_map=config.label_map,
        generation=config.generation,
        seed=config.seed,
        data_dir=resolve_data_dir(config.data_dir),
        num_fewshot=config.num_fewshot,
    )


def _prepare(plans: list[_PlannedTask], adapter: Any, config: RunConfig, skipped: dict[str, str], report: Progress) -> list[_PlannedTask]:
    """Choose and prepare every task's formulation before any forward pass.

    Label mappings and few-shot pools are resolved here, so that a task the checkpoint
    cannot answer stops the run before the expensive part (when named explicitly) or is
    skipped with its reason (when reached through a group).
    """
    options = _formulation_options(config)
    runnable = []
    for plan in plans:
        try:
            plan.formulation = choose_formulation(plan.task, adapter)
            plan.state = plan.formulation.prepare(plan.task, adapter, options)
        except EvalHarnessError as exc:
            if plan.explicit:
                raise
            skipped[plan.task.name] = str(exc)
            report(f"skipping {plan.task.name}: {str(exc).splitlines()[0]}")
            continue
        runnable.append(plan)
    return runnable


def _evaluate_task(plan: _PlannedTask, engine: Engine, config: RunConfig, run_dir: Path) -> TaskEntry | None:
    task, data, formulation, state = plan.task, plan.data, plan.formulation, plan.state
    assert formulation is not None
    started = time.perf_counter()
    per_example = formulation.requests(task, data.examples, state)
    flat = [request for requests in per_example for request in requests]
    options = formulation.request_options(task, state)
    with task_progress(task.name, len(flat), enabled=progress_enabled(config.show_progress)) as advance:
        responses, stats = engine.run(formulation.request_kind, flat, options, on_progress=advance)
    if config.check_determinism:
        engine.check_determinism(formulation.request_kind, flat, responses, options, stats)
    if not distributed.is_primary():  # data parallel: only rank 0 scores and writes
        return None
    decoded = []
    cursor = 0
    for example, requests in zip(data.examples, per_example):
        chunk = responses[cursor : cursor + len(requests)]
        cursor += len(requests)
        decoded.append(formulation.decode(task, example, chunk, state))
    truncated = sum(bool(getattr(response, "truncated", False)) for response in responses)
    notes = [f"{truncated} of {len(responses)} requests were truncated to fit the model"] if truncated else []
    entry = score_task(
        task,
        data,
        decoded,
        run_dir=run_dir,
        formulation=formulation.name,
        settings=formulation.settings(task, state),
        notes=notes,
        seed=config.seed,
        n_resamples=config.n_resamples,
        seconds=time.perf_counter() - started,
    )
    return entry.model_copy(update={"execution": stats.to_record()})


def _plan(config: RunConfig, progress: Progress) -> tuple[list[_PlannedTask], dict[str, str]]:
    catalog = TaskCatalog(config.tasks_dirs)
    data_dir = resolve_data_dir(config.data_dir)
    if config.limit is not None and config.limit < 1:
        raise UsageError("--limit must be at least 1")
    plans: list[_PlannedTask] = []
    skipped: dict[str, str] = {}
    for name, explicit in catalog.resolve(config.tasks):
        task = catalog.load(name)
        try:
            data = load_examples(task, data_dir, limit=config.limit)
            if config.examples is not None and name in config.examples:
                data = select_examples(data, config.examples[name], task=name)
        except DataError as exc:
            if explicit:
                raise
            skipped[name] = str(exc)
            progress(f"skipping {name}: data not available")
            continue
        plans.append(_PlannedTask(task, data, explicit))
    return plans, skipped


def default_run_dir(model_name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / model_name.replace("/", "__") / stamp


def _open_cache(config: RunConfig, run_dir: Path, stack: ExitStack) -> PredictionCache:
    cache = PredictionCache(config.cache or run_dir / "cache" / "predictions.sqlite")
    stack.callback(cache.close)
    return cache


def run_evaluation(config: RunConfig, *, progress: Progress | None = None, adapter: Any = None) -> RunResult:
    """Evaluate one checkpoint on the requested tasks and write the run directory.

    Predictions go to the prediction cache as they are computed, so the same call after a
    crash (same arguments, same ``output``) resumes where the crashed run stopped. The run
    directory is locked for the whole run.

    Under ``torchrun``/``accelerate launch`` every rank calls this: requests are sharded
    across ranks, and rank 0 alone locks the directory, keeps the cache and writes the run
    (see ``evalharness.execution.distributed``). ``adapter``: a model already loaded from
    ``config.model`` (a sequential gate evaluates it batch after batch without reloading).
    """
    with distributed.distributed_session(config.device) as context, ExitStack() as stack:
        if config.device_map and context.enabled:
            raise UsageError("--device-map spreads one model over all GPUs; it cannot be combined with data-parallel ranks (torchrun)")
        report = progress if progress and context.primary else (lambda message: None)
        return _run_locked(config, stack, report, adapter)


def _run_locked(config: RunConfig, stack: ExitStack, report: Progress, adapter: Any = None) -> RunResult:
    from evalharness.models.loading import load_model

    started = time.perf_counter()
    plans, skipped = _plan(config, report)
    if config.output and distributed.is_primary():
        stack.enter_context(run_dir_lock(Path(config.output)))
    if adapter is None:
        report(f"loading model {config.model}")
        adapter = load_model(
            config.model,
            config.model_kind,
            device=distributed.device_for_rank(config.device),
            dtype=config.dtype,
            trust_remote_code=config.trust_remote_code,
            device_map=config.device_map,
        )
    runnable = _prepare(plans, adapter, config, skipped, report)
    if not runnable:
        raise UsageError("none of the requested tasks can run:\n" + "\n".join(f"  {k}: {v}" for k, v in skipped.items()))
    primary = distributed.is_primary()
    run_dir = distributed.broadcast_from_primary(Path(config.output) if config.output else default_run_dir(adapter.info.name))
    if primary and not config.output:
        stack.enter_context(run_dir_lock(run_dir))
    engine = Engine(
        adapter,
        batch_size=config.batch_size,
        max_batch_tokens=config.max_batch_tokens,
        # data parallel: rank 0 alone reads and writes the cache and shares what it found
        cache=_open_cache(config, run_dir, stack) if primary else None,
        fresh=config.fresh,
    )
    tasks: dict[str, TaskEntry | None] = {}
    for plan in runnable:
        report(f"running {plan.task.name} ({len(plan.data.examples)} examples, {plan.formulation.name})")
        tasks[plan.task.name] = _evaluate_task(plan, engine, config, run_dir)
    if not primary:  # data parallel: rank 0 writes the record, the others get a copy
        return RunResult(run_dir, distributed.broadcast_from_primary(None))
    seconds = time.perf_counter() - started
    executions = {name: entry.execution for name, entry in tasks.items() if entry.execution}
    report(summary_line(executions, sum(entry.n_examples for entry in tasks.values()), seconds))
    info = adapter.info
    record = RunRecord(
        run_id=uuid.uuid4().hex[:12],
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        model=ModelEntry(
            name=info.name,
            path=info.path,
            kind=info.kind,
            fingerprint=info.fingerprint,
            architecture=info.architecture,
            device=info.device,
            dtype=info.dtype,
            num_parameters=info.num_parameters,
            revision=info.revision,
            notes=dict(info.notes),
        ),
        tasks=tasks,
        skipped=skipped,
        settings=config.recorded_settings(),
        environment={**capture_environment(info.device), "distributed": distributed.current().describe()},
        seconds=round(seconds, 3),
    )
    write_record(run_dir, record)
    return RunResult(run_dir, distributed.broadcast_from_primary(record))
