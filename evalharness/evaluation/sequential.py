"""Sequential gates, the orchestration: evaluate the candidate on growing random batches of
each task's examples and stop as soon as every rule of the policy is settled.

``evalharness gate --sequential --model CHECKPOINT --candidate RUN_DIR --baseline RUN`` loads
the model once, orders each task's examples at random (seeded), and calls the runner with the
examples seen so far; the prediction cache in the candidate's run directory means earlier
examples are never recomputed (and an interrupted gate resumes). After each batch,
:mod:`evalharness.comparison.sequential_gate` checks every unsettled rule's anytime-valid
confidence sequence. The baseline is a recorded full run (evaluate the release once, bless
it); only the candidate is evaluated sequentially. The candidate's record says it covers a
subset: each task's notes, ``data.n_available`` and ``settings.sequential``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from evalharness.comparison.compare import CompareSettings, IncomparableRunsError
from evalharness.comparison.gate import GateReport, load_policy
from evalharness.comparison.gate_policy import LoadedPolicy, validate_policy
from evalharness.comparison.gate_results import FAILED, PASSED, CheckResult, RuleResult
from evalharness.comparison.pairing import refuse_other_prompt_formats, rows_by_id
from evalharness.comparison.sequential_gate import SequentialState, plan_checks
from evalharness.data.loader import (
    fingerprint_examples,
    load_examples,
    resolve_data_dir,
)
from evalharness.errors import RecordError, UsageError
from evalharness.evaluation.runner import RunConfig, load_adapter, run_evaluation
from evalharness.jsonvalues import JSONObject
from evalharness.records.record import (
    RESULTS_FILE,
    RunRecord,
    load_record,
    samples_stats,
)
from evalharness.records.store import update_record

if TYPE_CHECKING:
    from evalharness.spec.catalog import TaskCatalog

__all__ = ["SequentialOptions", "sequential_gate"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SequentialOptions:
    """Examples added per task per batch, the seed of the random order, and the share of
    alpha kept for a final full-data t test of population rules (``noninferior``, ``within``)."""

    batch_examples: int = 100
    order_seed: int = 0
    final_share: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.batch_examples, bool) or not isinstance(self.batch_examples, int) or self.batch_examples < 1:
            raise UsageError(f"--batch-examples must be a positive integer, got {self.batch_examples!r}")
        if not 0 <= self.final_share < 1:
            raise UsageError(f"--final-share must be in [0, 1), got {self.final_share!r}")


def _order(task: str, ids: list[str], seed: int) -> list[str]:
    """A seeded random order per task (independent of the other tasks' sizes)."""
    salt = int.from_bytes(hashlib.sha256(task.encode("utf-8")).digest()[:8], "big")
    permutation = np.random.default_rng([seed, salt]).permutation(len(ids))
    return [ids[i] for i in permutation]


def _task_ids(task: str, catalog: TaskCatalog, config: RunConfig, baseline: Path | None, record: RunRecord | None) -> list[str]:
    """The examples the gate may draw: the baseline's (checked to be the task's data), or
    the task's whole evaluation split."""
    spec = catalog.load(task)
    data = load_examples(spec, resolve_data_dir(config.data_dir))
    if record is None or baseline is None or task not in record.tasks:  # record: the baseline's
        return [example.id for example in data.examples]
    entry = record.tasks[task]
    baseline_ids = set(rows_by_id(baseline, task))
    chosen = [example for example in data.examples if example.id in baseline_ids]
    if len(chosen) != len(baseline_ids) or fingerprint_examples(chosen) != entry.data.fingerprint:
        raise IncomparableRunsError(
            f"{task}: the baseline {baseline} was evaluated on other data ({entry.data.fingerprint}) than {data.location} "
            f"holds for its {len(baseline_ids)} example ids; a sequential comparison would be meaningless"
        )
    return [example.id for example in chosen]


def _baseline_scores(loaded: LoadedPolicy, catalog: TaskCatalog, baseline: Path | None, record: RunRecord | None) -> dict[tuple[str, str], dict[str, float]]:
    """Per-example scores of the baseline for every rule's metric (recomputed from the
    statistics, by the metric the task spec names; a different metric is refused)."""
    from evalharness.metrics.registry import build_metric

    scores: dict[tuple[str, str], dict[str, float]] = {}
    if record is None or baseline is None:  # record: the baseline's
        return scores
    for rule in loaded.policy.rules:
        key = (rule.task, rule.metric)
        if key in scores or rule.task not in record.tasks or rule.metric not in record.tasks[rule.task].metrics:
            continue
        entry = record.tasks[rule.task].metrics[rule.metric]
        spec = next(m for m in catalog.load(rule.task).spec.metrics if m.result_key == rule.metric)
        metric = build_metric(spec.name, spec.settings)
        if (entry.metric, entry.settings) != (metric.name, metric.settings.model_dump(mode="json")):
            raise IncomparableRunsError(f"{rule.task} {rule.metric}: the baseline used {entry.metric} {entry.settings}, the task spec {metric.name}")
        rows = rows_by_id(baseline, rule.task)
        stats = samples_stats(list(rows.values()), rule.metric)
        scores[key] = dict(zip(rows, metric.example_scores(stats).tolist()))
    return scores


def _check_output(output: Path) -> None:
    """Never overwrite a full run with a partial one."""
    if (output / RESULTS_FILE).is_file() and "sequential" not in load_record(output).settings:
        raise UsageError(
            f"{output} holds a run that was not written by a sequential gate; a partial run would replace it. "
            "Give --candidate a new run directory"
        )


def _mark_partial(output: Path, used: Mapping[str, int], totals: Mapping[str, int], options: SequentialOptions, policy: str) -> RunRecord:
    """Say in the candidate's record that its tasks cover a random subset of the examples
    (through the records' one write path)."""

    def change(record: RunRecord | None) -> RunRecord:
        if record is None:
            raise RecordError(f"{output}: the candidate's record vanished during the sequential gate")
        tasks = {}
        for name, entry in record.tasks.items():
            note = (
                f"sequential gate: {used[name]} of {totals[name]} examples in a random order (seed {options.order_seed}, "
                f"batches of {options.batch_examples}); every metric is over these examples only"
            )
            tasks[name] = entry.model_copy(update={"notes": [*entry.notes, note]})
        sequential = {
            "policy": policy,
            "order_seed": options.order_seed,
            "batch_examples": options.batch_examples,
            "final_share": options.final_share,
            "examples": {name: {"used": used[name], "total": totals[name]} for name in record.tasks},
        }
        return record.model_copy(update={"tasks": tasks, "settings": {**record.settings, "sequential": sequential}})

    return update_record(output, change).record


def _refuse_other_prompt_formats(output: Path, baseline: Path | None, record: RunRecord, mark_partial: Callable[[], object]) -> None:
    """The candidate's first batch was prompted as the baseline was (format, system prompt,
    few-shot turns, reasoning stripping), else no rule can compare them. The partial run is
    marked as the gate's before refusing, so a rerun with the right flags may replace it."""
    candidate = load_record(output)
    for task, entry in candidate.tasks.items():
        if task in record.tasks:
            try:
                refuse_other_prompt_formats(task, (output, Path(str(baseline))), (entry, record.tasks[task]))
            except IncomparableRunsError:
                mark_partial()
                raise


def _required(task: str, where: str, record: RunRecord) -> RuleResult:
    present = task in record.tasks
    detail = f"{task} present ({record.tasks[task].n_examples} examples evaluated)" if present else f"task '{task}' is not in the candidate run"
    return RuleResult(f"required task {task}", task, None, where, [CheckResult("required", "task present in the candidate run", PASSED if present else FAILED, detail)])


def sequential_gate(
    policy: LoadedPolicy | str | Path,
    config: RunConfig,
    baseline: Path | None,
    *,
    options: SequentialOptions,
    settings: CompareSettings | None = None,
    progress: Progress | None = None,
) -> GateReport:
    """Evaluate ``config.model`` into ``config.output`` batch by batch until every rule of
    ``policy`` is settled, and return the gate's report (each check with how many examples
    it used)."""
    from evalharness.spec.catalog import TaskCatalog

    report = progress or (lambda message: None)
    loaded = policy if isinstance(policy, LoadedPolicy) else load_policy(policy)
    if config.output is None:
        raise UsageError("--sequential writes the candidate's run: give --candidate a run directory to write")
    output = Path(config.output)
    catalog = TaskCatalog(config.tasks_dirs)
    record = load_record(baseline) if baseline is not None else None
    validate_policy(loaded, catalog, (record,) if record is not None else ())
    tasks = list(dict.fromkeys([rule.task for rule in loaded.policy.rules] + list(loaded.policy.required_tasks)))
    baseline_scores = _baseline_scores(loaded, catalog, baseline, record)
    checks = plan_checks(loaded, catalog, record, baseline_scores, final_share=options.final_share)
    orders = {task: _order(task, _task_ids(task, catalog, config, baseline, record), options.order_seed) for task in tasks}
    _check_output(output)
    state = SequentialState(checks, orders, baseline_scores)
    adapter = load_adapter(config, report)
    used = dict.fromkeys(tasks, 0)
    totals = {task: len(order) for task, order in orders.items()}
    compared = False
    while active := [task for task in tasks if used[task] < len(orders[task]) and (used[task] == 0 or not state.settled(task))]:
        for task in active:
            used[task] = min(used[task] + options.batch_examples, len(orders[task]))
        round_config = config.updated(tasks=tasks, examples={task: orders[task][: used[task]] for task in tasks})
        run_evaluation(round_config, progress=lambda message: None, adapter=adapter)
        if record is not None and not compared:  # the prompt format is known once the candidate was prompted
            _refuse_other_prompt_formats(output, baseline, record, lambda: _mark_partial(output, used, totals, options, str(loaded.path)))
            compared = True
        for task in active:
            state.update(task, used[task], rows_by_id(output, task))
            report(f"{task}: {used[task]} of {len(orders[task])} examples" + (" (settled)" if state.settled(task) else ""))
    candidate = _mark_partial(output, used, totals, options, str(loaded.path))
    rows = {task: rows_by_id(output, task) for task in tasks}
    results = state.results(loaded, rows, order_seed=options.order_seed, batch_size=options.batch_examples)
    results += [_required(task, loaded.where("required_tasks", i), candidate) for i, task in enumerate(loaded.policy.required_tasks)]
    total_used, total = sum(used.values()), sum(len(order) for order in orders.values())
    notes = [
        f"sequential: {used[task]} of {len(orders[task])} {task} examples evaluated ({1 - used[task] / len(orders[task]):.0%} saved)"
        for task in tasks
    ]
    notes.append(f"sequential: {total_used} of {total} examples in all ({1 - total_used / total:.0%} saved); order seed {options.order_seed}")
    info: JSONObject = {"path": str(output), "run_id": candidate.run_id, "model": candidate.model.name, "fingerprint": candidate.model.fingerprint}
    base_info: JSONObject | None = None if record is None else {"path": str(baseline), "run_id": record.run_id, "model": record.model.name, "fingerprint": record.model.fingerprint}
    return GateReport(str(loaded.path), loaded.policy, info, base_info, results, settings or CompareSettings(), notes)
