"""A run's results as Hugging Face model-card metadata, ready to upload to the model repo.

Two forms, both built with ``huggingface_hub``'s own card utilities and read back with its
parsers before the command succeeds:

- ``.eval_results/<task>.yaml``: the Hub's current results format (one benchmark result per
  file: dataset id, task id, value, date, source, notes); see the Hub's "Evaluation Results"
  documentation and ``huggingface_hub.EvalResultEntry``.
- the legacy ``model-index`` block in ``README.md``'s YAML header (``EvalResult``).

A result needs a Hub dataset id, which comes from ``--dataset TASK=ID[:TASK_ID]`` or from the
task spec's ``data.hub`` when the spec is unchanged since the run. One value per task is
published (the task's first metric, or ``--metric TASK=KEY``); its interval, n, method and
signature go into the notes. Undefined values are never published; tasks evaluated on part
of their data are refused unless ``--allow-partial``, which says so in the notes. An
existing ``README.md`` keeps its text and other results: ours are merged into its header.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from evalharness.errors import UsageError, did_you_mean
from evalharness.metrics.base import package_version
from evalharness.publish.common import (
    PublishError,
    check_task_names,
    file_names,
    hub_dataset,
    partial_reasons,
)
from evalharness.records.record import (
    RunRecord,
    TaskEntry,
    atomic_write_text,
    load_record,
)
from evalharness.types import MetricResult, signature_text

if TYPE_CHECKING:
    from huggingface_hub import EvalResult, EvalResultEntry, ModelCard, ModelCardData

__all__ = ["CardOptions", "CardResult", "CardRow", "publish_model_card"]

# Hub pipeline tags for our task kinds (model-index ``task.type``).
HUB_TASK_TYPES = {
    "classification": "text-classification",
    "regression": "text-classification",
    "extractive_qa": "question-answering",
    "generation": "text-generation",
    "language_modeling": "text-generation",
    "multiple_choice": "multiple-choice",
    "stereotype_pairs": "fill-mask",
}


@dataclass(frozen=True)
class CardOptions:
    """What ``publish model-card`` was asked for (see the module docstring)."""

    output: Path
    model_name: str | None = None
    datasets: Mapping[str, str] = field(default_factory=dict)  # task -> "ID[:TASK_ID]"
    metrics: Mapping[str, str] = field(default_factory=dict)  # task -> metric key
    source_url: str | None = None
    source_name: str | None = None
    allow_partial: bool = False
    tasks_dirs: Sequence[str | Path] = ()


@dataclass(frozen=True)
class CardRow:
    """One published value and where it went."""

    task: str
    metric: str
    value: float
    dataset_id: str
    task_id: str
    notes: str
    file: str


@dataclass(frozen=True)
class CardResult:
    run_id: str
    output: Path
    files: list[Path]
    rows: list[CardRow]
    skipped: dict[str, str]


@dataclass(frozen=True)
class _Row:
    """A value chosen for publishing, with what the card's two forms say about it."""

    task: str
    key: str
    value: float
    entry: MetricResult
    task_entry: TaskEntry
    dataset_id: str
    task_id: str
    config: str | None
    split: str | None
    revision: str | None
    notes: str


def _dataset(task_name: str, task: TaskEntry, options: CardOptions) -> tuple[str, str, str | None, str | None, str | None, str | None]:
    """(dataset id, task id, config, split, revision, note), or a UsageError-free skip (id '')."""
    given = options.datasets.get(task_name)
    if given is not None:
        dataset_id, _, task_id = given.partition(":")
        if not dataset_id.strip():
            raise UsageError(f"--dataset {task_name}={given}: expected a Hub dataset id, e.g. nyu-mll/glue:sst2")
        return dataset_id.strip(), task_id.strip() or "default", None, None, None, None
    hub = hub_dataset(task_name, task, options.tasks_dirs)
    if hub is None:
        return "", "", None, None, None, None
    return hub.id, hub.config or "default", hub.config, hub.split, hub.revision, hub.note


def _format(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.6g}"


def _notes(task_name: str, key: str, task: TaskEntry, record: RunRecord, extra: Sequence[str]) -> str:
    entry = task.metrics[key]
    low, high = entry.ci
    parts = [
        f"evalharness {package_version('evalharness')} task {task_name} v{task.version}, metric {key} ({entry.metric})",
        f"CI [{_format(low)}, {_format(high)}] ({entry.ci_method}), n={entry.n}",
        f"signature {signature_text(entry.signature)}",
        f"run {record.run_id}, model fingerprint {record.model.fingerprint}",
    ]
    if record.model.source != "checkpoint":
        parts.append(f"scored from {record.model.source} (not run by evalharness on the checkpoint)")
    return "; ".join(parts + list(extra))


def _select(record: RunRecord, options: CardOptions) -> tuple[list[_Row], dict[str, str]]:
    """The rows to publish and, per other task, why it is not published."""
    check_task_names(options.datasets, record, "--dataset")
    check_task_names(options.metrics, record, "--metric")
    rows: list[_Row] = []
    skipped: dict[str, str] = {}
    partial: list[str] = []
    for task_name, task in record.tasks.items():
        key = options.metrics.get(task_name) or next(iter(task.metrics), None)
        if key is None:
            skipped[task_name] = "the task recorded no metric"
            continue
        if key not in task.metrics:
            raise UsageError(f"--metric {task_name}={key}: the task has no metric '{key}'{did_you_mean(key, task.metrics)}")
        entry = task.metrics[key]
        if entry.value is None:
            skipped[task_name] = f"{key} is undefined in the run (recorded as null), so there is no number to publish"
            continue
        reasons = partial_reasons(task)
        if reasons and not options.allow_partial:
            partial.append(f"{task_name}: {'; '.join(reasons)}")
            continue
        dataset_id, task_id, config, split, revision, note = _dataset(task_name, task, options)
        if not dataset_id:
            skipped[task_name] = f"no Hub dataset id is known for it; pass --dataset {task_name}=ORG/NAME[:TASK_ID]"
            continue
        extra = ([f"partial: {'; '.join(reasons)}"] if reasons else []) + ([note] if note else [])
        rows.append(_Row(task_name, key, entry.value, entry, task, dataset_id, task_id, config, split, revision,
                         _notes(task_name, key, task, record, extra)))
    if partial:
        raise UsageError(
            "these tasks were evaluated on part of their data, and a model card would present the numbers "
            "as the benchmark's:\n  " + "\n  ".join(partial) + "\n(pass --allow-partial to publish them with a note saying so)"
        )
    if not rows:
        why = "; ".join(f"{name}: {reason}" for name, reason in skipped.items()) or "the run has no tasks"
        raise PublishError(f"nothing to publish from run {record.run_id}: {why}")
    return rows, skipped


def _entries(rows: list[_Row], record: RunRecord, options: CardOptions) -> list[EvalResultEntry]:
    from huggingface_hub import EvalResultEntry

    return [
        EvalResultEntry(
            dataset_id=row.dataset_id,
            task_id=row.task_id,
            value=row.value,
            dataset_revision=row.revision,
            date=record.created,
            source_url=options.source_url,
            source_name=options.source_name if options.source_url else None,
            notes=row.notes,
        )
        for row in rows
    ]


def _model_index(rows: list[_Row], options: CardOptions) -> list[EvalResult]:
    from huggingface_hub import EvalResult

    return [
        EvalResult(
            task_type=HUB_TASK_TYPES.get(row.task_entry.kind, "text-generation"),
            dataset_type=row.dataset_id,
            dataset_name=row.task,
            dataset_config=row.config,
            dataset_split=row.split,
            dataset_revision=row.revision,
            metric_type=row.entry.metric,
            metric_name=row.key,
            metric_value=row.value,
            source_name=(options.source_name or "evalharness") if options.source_url else None,
            source_url=options.source_url,
        )
        for row in rows
    ]


def _load_card(path: Path) -> ModelCard:
    from huggingface_hub import ModelCard

    try:
        return ModelCard.load(path)
    except ValueError as exc:  # an invalid model-index or YAML header
        raise PublishError(f"{path}: existing model card cannot be read ({exc}); fix or move it, then publish again") from None


def _card_data(card: ModelCard) -> ModelCardData:
    from huggingface_hub import ModelCardData

    data = card.data
    assert isinstance(data, ModelCardData)  # a ModelCard parses its header as ModelCardData
    return data


def _merge(card: ModelCard, ours: list[EvalResult], model_name: str) -> None:
    """Replace the card's results for the same dataset and metric; keep every other one."""
    data = _card_data(card)
    existing = list(data.eval_results or [])
    kept = [old for old in existing if not any(
        old.unique_identifier == new.unique_identifier and (old.metric_type, old.metric_name) == (new.metric_type, new.metric_name)
        for new in ours
    )]
    data.eval_results = kept + ours
    data.model_name = data.model_name or model_name


_START, _END = "<!-- evalharness:results:start -->", "<!-- evalharness:results:end -->"


def _results_section(results: Sequence[EvalResult], record: RunRecord) -> str:
    """A table of every result in the card's header, so the text never disagrees with it."""
    from evalharness.leaderboard.output import markdown_escape

    lines = [_START, "## Evaluation results", "", "| Task | Dataset | Metric | Value |", "| --- | --- | --- | --- |"]
    for result in results:
        cells = [result.dataset_name, result.dataset_type, result.metric_name or result.metric_type, result.metric_value]
        lines.append("| " + " | ".join(markdown_escape(cell) for cell in cells) + " |")
    lines += ["", f"Latest results from evalharness run {markdown_escape(record.run_id)} ({markdown_escape(record.created)}); "
              "each result's notes in `.eval_results/` carry its interval, n, signature and provenance.", _END]
    return "\n".join(lines)


def _with_section(text: str, section: str) -> str:
    if _START in text and _END in text.split(_START, 1)[1]:
        before, rest = text.split(_START, 1)
        return before + section + rest.split(_END, 1)[1]
    return text.rstrip("\n") + "\n\n" + section + "\n"


def _build_card(base: ModelCard | None, record: RunRecord, model_name: str, results: list[EvalResult]) -> ModelCard:
    from huggingface_hub import ModelCard, ModelCardData

    from evalharness.leaderboard.output import markdown_escape

    if base is None:
        data = ModelCardData(model_name=model_name, eval_results=[])
        base = ModelCard(f"---\n{data.to_yaml()}\n---\n\n# {markdown_escape(model_name)}\n")
    _merge(base, results, model_name)
    base.text = _with_section(base.text, _results_section(_card_data(base).eval_results or [], record))
    return base


def _check_round_trip(readme: Path, yaml_files: Mapping[Path, EvalResultEntry], results: list[EvalResult]) -> None:
    """Read everything back with huggingface_hub's parsers; any difference is a refusal."""
    from huggingface_hub import ModelCard
    from huggingface_hub._eval_results import (
        eval_result_entries_to_yaml,
        parse_eval_result_entries,
    )

    parsed = _card_data(ModelCard.load(readme)).eval_results or []
    for result in results:
        if not any(p == result for p in parsed):
            raise PublishError(f"{readme}: the model-index does not read back {result.dataset_type} {result.metric_name} = {result.metric_value}")
    for path, entry in yaml_files.items():
        back = parse_eval_result_entries(yaml.safe_load(path.read_text(encoding="utf-8")))
        if eval_result_entries_to_yaml(back) != eval_result_entries_to_yaml([entry]):
            raise PublishError(f"{path}: does not read back as written")


def publish_model_card(run_dir: str | Path, options: CardOptions, *, base_card: ModelCard | None = None) -> CardResult:
    """Write ``README.md`` and ``.eval_results/*.yaml`` for the run into ``options.output``.

    ``base_card`` (a ``ModelCard``, e.g. the model repo's) receives our results; by default an
    existing ``README.md`` in the output folder does, else a new card is made.
    """
    from huggingface_hub._eval_results import eval_result_entries_to_yaml

    record = load_record(run_dir)
    rows, skipped = _select(record, options)
    model_name = options.model_name or record.model.name
    entries, results = _entries(rows, record, options), _model_index(rows, options)
    output = options.output
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output}: not a folder")
    readme = output / "README.md"
    if base_card is None and readme.is_file():
        base_card = _load_card(readme)
    card = _build_card(base_card, record, model_name, results)
    stems = file_names(row.task for row in rows)
    yaml_files: dict[Path, EvalResultEntry] = {}
    for row, entry in zip(rows, entries):
        path = output / ".eval_results" / f"{stems[row.task]}.yaml"
        text = yaml.safe_dump(eval_result_entries_to_yaml([entry]), sort_keys=False, allow_unicode=True)
        atomic_write_text(path, text)
        yaml_files[path] = entry
    atomic_write_text(readme, str(card))
    _check_round_trip(readme, yaml_files, results)
    published = [
        CardRow(row.task, row.key, row.value, row.dataset_id, row.task_id, row.notes, str(path))
        for row, path in zip(rows, yaml_files)
    ]
    return CardResult(record.run_id, output, [readme, *yaml_files], published, skipped)
