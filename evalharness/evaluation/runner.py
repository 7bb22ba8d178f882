"""The runner: the only module that knows models *and* metrics.

Order of work is chosen so that mistakes surface before the expensive part: task specs and
data are loaded and validated first, then the model, then every task's formulation is
checked against the model's kind, and only then do forward passes start.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from evalharness.backends import BackendRequest, load_backend
from evalharness.data.loader import LoadedData, load_examples, resolve_data_dir
from evalharness.data.subset import select_examples
from evalharness.errors import (
    DataError,
    EvalHarnessError,
    Interrupted,
    RecordError,
    UsageError,
    environment_fault,
)
from evalharness.evaluation import options as run_options
from evalharness.evaluation.scoring import score_task
from evalharness.evaluation.settings import RunSettings
from evalharness.evaluation.subset import subset_record
from evalharness.execution import distributed
from evalharness.execution.cache import PredictionCache
from evalharness.execution.engine import Engine
from evalharness.execution.lock import run_dir_lock
from evalharness.execution.progress import progress_enabled, summary_line, task_progress
from evalharness.metrics.registry import refuse_untrusted_code
from evalharness.models.protocols import LoadedModel
from evalharness.prompting import (
    FormulationOptions,
    SomeFormulation,
    choose_formulation,
)
from evalharness.prompting.lint import lint_notes, lint_prompts
from evalharness.records.environment import capture_environment
from evalharness.records.record import ModelEntry, RunRecord, TaskEntry
from evalharness.records.store import (
    Commit,
    check_mergeable,
    merge_records,
    prepare_run_dir,
    update_record,
)
from evalharness.seeds import check_seed
from evalharness.spec.catalog import TaskCatalog
from evalharness.spec.loader import Task

if TYPE_CHECKING:
    from evalharness.models.base import ModelInfo

__all__ = ["RunConfig", "RunResult", "formulation_options", "load_adapter", "run_evaluation"]

Progress = Callable[[str], None]
_RESUME = (
    "predictions computed so far are kept in the prediction cache; run the same command again to resume "
    "(the run directory still holds its previous record, if any)"
)


RunConfig = RunSettings  # everything ``evalharness run`` was asked (``evaluation.settings``)


def _given_options(config: RunConfig) -> list[run_options.GivenOption]:
    """The formulation-specific options this run was given (see ``evaluation.options``)."""
    prompt = config.prompt
    formats = {name: getattr(prompt, name) for name in ("prompt_format", "system_prompt", "fewshot_as_multiturn", "strip_thinking")}
    return run_options.given_options(prompt.label_map, prompt.num_fewshot, prompt.generation, formats)


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    record: RunRecord  # what results.json holds now: this run's tasks and the ones it kept
    commit: Commit | None = None  # which tasks were added, replaced or kept (rank 0 only)


@dataclass
class _PlannedTask:
    task: Task
    data: LoadedData
    explicit: bool  # named on the command line, not reached through a group
    formulation: SomeFormulation | None = None
    state: object = None  # what the formulation's prepare returned (its StateT), e.g. a label mapping
    settings: dict[str, object] = field(default_factory=dict)  # recorded next to the formulation's
    notes: list[str] = field(default_factory=list)


def formulation_options(config: RunConfig) -> FormulationOptions:
    return FormulationOptions(
        label_map=config.prompt.label_map,
        generation=config.prompt.generation,
        seed=config.seed,
        data_dir=resolve_data_dir(config.data_dir),
        num_fewshot=config.prompt.num_fewshot,
        prompt_format=config.prompt.prompt_format,
        system_prompt=config.prompt.system_prompt,
        fewshot_as_multiturn=config.prompt.fewshot_as_multiturn,
        strip_thinking=config.prompt.strip_thinking,
    )


def _prepare(
    plans: list[_PlannedTask], adapter: LoadedModel, config: RunConfig, skipped: dict[str, str], report: Progress
) -> tuple[list[_PlannedTask], dict[str, run_options.OptionUse]]:
    """Choose and prepare every task's formulation before any forward pass.

    Label mappings and few-shot pools are resolved here, so that a task the checkpoint
    cannot answer stops the run before the expensive part (when named explicitly) or is
    skipped with its reason (when reached through a group). Each formulation gets only the
    run options it declares; an option no chosen formulation uses stops the run here.
    """
    options = formulation_options(config)
    given = _given_options(config)
    runnable = []
    uses: dict[str, run_options.OptionUse] = {}
    for plan in plans:
        try:
            plan.formulation = choose_formulation(plan.task, adapter)
            plan.state = plan.formulation.prepare(plan.task, adapter, plan.formulation.accepted_options(options))
        except EvalHarnessError as exc:
            if plan.explicit:
                raise
            skipped[plan.task.name] = str(exc)
            report(f"skipping {plan.task.name}: {str(exc).splitlines()[0]}")
            continue
        runnable.append(plan)
        uses[plan.task.name] = run_options.use_of(plan.formulation, given)
    if config.refuse_unused_options and runnable:
        run_options.refuse_unused(given, uses)
    for plan in runnable:
        use = uses[plan.task.name]
        if given:
            plan.settings["run_options"] = use.record(given)
        for note in use.notes(given):
            plan.notes.append(note)
            report(f"note: {plan.task.name}: {note}")
    return runnable, uses


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
    if not engine.context.primary:  # data parallel: only rank 0 scores and writes
        return None
    decoded = []
    cursor = 0
    for example, requests in zip(data.examples, per_example):
        chunk = responses[cursor : cursor + len(requests)]
        cursor += len(requests)
        decoded.append(formulation.decode(task, example, chunk, state))
    truncated = sum(bool(getattr(response, "truncated", False)) for response in responses)
    observed_settings, observed_notes = formulation.observed(task, state, decoded)
    notes = [*plan.notes, *observed_notes]
    if truncated:
        notes.append(f"{truncated} of {len(responses)} requests were truncated to fit the model")
    settings: dict[str, object] = {**formulation.settings(task, state), **observed_settings, **plan.settings}
    policy = formulation.prompt_policy(task, state)
    if policy is not None:  # a prompted task: what the model saw, token by token
        lint = settings["prompt_lint"] = lint_prompts(engine.adapter, formulation.request_kind, flat, options, responses, policy)
        notes += [note for note in lint_notes(lint) if "truncated" not in note]
    entry = score_task(
        task,
        data,
        decoded,
        run_dir=run_dir,
        formulation=formulation.name,
        settings=settings,
        notes=notes,
        seed=config.seed,
        n_resamples=config.statistics.n_resamples,
        seconds=time.perf_counter() - started,
    )
    return entry.model_copy(update={"execution": stats.to_record()})


def _plan(config: RunConfig, progress: Progress) -> tuple[list[_PlannedTask], dict[str, str]]:
    catalog = TaskCatalog(config.tasks_dirs)
    data_dir = resolve_data_dir(config.data_dir)
    if config.limit is not None and config.limit < 1:
        raise UsageError("--limit must be at least 1")
    check_seed(config.seed)
    given = _given_options(config)
    plans: list[_PlannedTask] = []
    skipped: dict[str, str] = {}
    tasks = [(catalog.load(name), explicit) for name, explicit in catalog.resolve(config.tasks)]
    refuse_untrusted_code([task for task, _ in tasks], trusted=config.trust_task_code)
    for task, explicit in tasks:
        name = task.name
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
        plan = _PlannedTask(task, data, explicit)
        if config.limit is not None:
            plan.settings["subset"], notes = subset_record(task, data, config.limit, data_dir)
            plan.notes.extend(notes)
            for note in notes:
                progress(f"note: {name}: {note}")
        plans.append(plan)
    if config.refuse_unused_options and plans:  # before the model loads, where the task kinds tell
        run_options.refuse_inapplicable(given, [plan.task for plan in plans])
    return plans, skipped


def default_run_dir(model_name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / model_name.replace("/", "__") / stamp


def _claim_run_dir(config: RunConfig, run_dir: Path, stack: ExitStack) -> PredictionCache:
    """Lock the run directory and open its cache: the faults of the output (a file in the
    way, no write permission, someone else's database as ``--cache``) stop the run here."""
    prepare_run_dir(run_dir)
    stack.enter_context(run_dir_lock(run_dir))
    cache = PredictionCache(config.caching.cache or run_dir / "cache" / "predictions.sqlite")
    stack.callback(cache.close)
    return cache


def _model_entry(info: ModelInfo) -> ModelEntry:
    return ModelEntry(
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
    )


def run_evaluation(config: RunConfig, *, progress: Progress | None = None, adapter: LoadedModel | None = None) -> RunResult:
    """Evaluate one checkpoint on the requested tasks and write the run directory.

    Predictions go to the prediction cache as they are computed, so the same call after a
    crash (same arguments, same ``output``) resumes where the crashed run stopped. The run
    directory is locked for the whole run.

    Under ``torchrun``/``accelerate launch`` every rank calls this: requests are sharded
    across ranks, and rank 0 alone locks the directory, keeps the cache and writes the run
    (see ``evalharness.execution.distributed``). ``adapter``: a model already loaded from
    ``config.model`` (a sequential gate evaluates it batch after batch without reloading).
    """
    with distributed.distributed_session(config.loading.device) as context, ExitStack() as stack:
        if config.loading.device_map and context.enabled:
            raise UsageError("--device-map spreads one model over all GPUs; it cannot be combined with data-parallel ranks (torchrun)")
        report = progress if progress and context.primary else (lambda message: None)
        try:
            return _run_locked(config, stack, report, context, adapter)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM through the CLI's handler
            raise Interrupted.wrap(exc, _RESUME) from None
        except OSError as exc:  # a full disk or a vanished directory while writing samples
            fault = environment_fault(exc)
            if fault is None:
                raise
            raise RecordError(f"{fault}; {_RESUME}") from None


def load_adapter(
    config: RunConfig, report: Progress = lambda message: None, context: distributed.DistributedContext = distributed.SINGLE_PROCESS
) -> LoadedModel:
    """The model adapter of ``config`` (its backend: in process, a server, vLLM)."""
    from evalharness.models.loading import load_model

    report(f"loading model {config.model}")
    loading = config.loading
    in_process = functools.partial(
        load_model,
        loading.model,
        loading.model_kind,
        device=distributed.device_for_rank(loading.device, context),
        dtype=loading.dtype,
        trust_remote_code=loading.trust_remote_code,
        device_map=loading.device_map,
        tokenizer=loading.tokenizer,
        allow_random_weights=loading.allow_random_weights,
        allow_kind_mismatch=loading.allow_kind_mismatch,
        base_model=loading.base_model,
        keep_adapter_unmerged=loading.keep_adapter_unmerged,
        model_args=loading.model_args,
    )
    request = BackendRequest(loading.model, in_process, tokenizer=loading.tokenizer, dtype=loading.dtype, seed=config.seed)
    return load_backend(config.backend, request)


def _run_locked(
    config: RunConfig, stack: ExitStack, report: Progress, context: distributed.DistributedContext, adapter: LoadedModel | None = None
) -> RunResult:
    started = time.perf_counter()
    plans, skipped = _plan(config, report)
    primary = context.primary
    cache = _claim_run_dir(config, Path(config.output), stack) if config.output and primary else None
    if adapter is None:
        adapter = load_adapter(config, report, context)
    runnable, uses = _prepare(plans, adapter, config, skipped, report)
    if not runnable:
        raise UsageError("none of the requested tasks can run:\n" + "\n".join(f"  {k}: {v}" for k, v in skipped.items()))
    settings = run_options.run_settings(config.recorded(), _given_options(config), uses)
    run_dir = distributed.broadcast_from_primary(
        Path(config.output) if config.output else default_run_dir(adapter.info.name), context=context
    )
    model = _model_entry(adapter.info)
    if primary:
        if cache is None:  # no --output: the default directory is named after the model
            cache = _claim_run_dir(config, run_dir, stack)
        # a record that this run could not be merged into stops it before the forward passes
        check_mergeable(run_dir, model, settings, [plan.task.name for plan in runnable])
    engine = Engine(
        adapter,
        batch_size=config.batching.batch_size,
        max_batch_tokens=config.batching.max_batch_tokens,
        # data parallel: rank 0 alone reads and writes the cache and shares what it found
        cache=cache if primary else None,
        fresh=config.caching.fresh,
        packing=config.batching.packing,
        context=context,
    )
    tasks: dict[str, TaskEntry] = {}
    for plan in runnable:
        assert plan.formulation is not None  # a runnable plan has one
        report(f"running {plan.task.name} ({len(plan.data.examples)} examples, {plan.formulation.name})")
        entry = _evaluate_task(plan, engine, config, run_dir)
        if entry is not None:  # None on the ranks that do not score (data parallel)
            tasks[plan.task.name] = entry
    if not primary:  # data parallel: rank 0 writes the record, the others get a copy
        shared: RunRecord | None = distributed.broadcast_from_primary(None, context=context)
        assert shared is not None  # rank 0 sends its record
        return RunResult(run_dir, shared)
    seconds = time.perf_counter() - started
    executions = {name: entry.execution for name, entry in tasks.items() if entry.execution}
    report(summary_line(executions, sum(entry.n_examples for entry in tasks.values()), seconds))
    record = RunRecord(
        run_id=uuid.uuid4().hex[:12],
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        model=model,
        tasks=tasks,
        skipped=skipped,
        settings=settings,
        environment={**capture_environment(model.device), "distributed": context.describe()},
        seconds=round(seconds, 3),
    )
    commit = update_record(run_dir, lambda existing: merge_records(run_dir, existing, record))
    return RunResult(run_dir, distributed.broadcast_from_primary(commit.record, context=context), commit)
