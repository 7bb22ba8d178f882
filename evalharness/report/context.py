"""What a report shows, gathered from run records (``results.json`` and samples files).

Two outputs: a context for the template (metadata, score tables, SVG charts) and plain data
for the page's script (the per-example rows and, with a baseline, the examples whose
outcome changed). Samples are read with ``records.read_samples``; a task whose samples are
missing or damaged still gets its scores, with the problem stated in its section.

Against a baseline, a difference is labelled "better" or "worse" only when the paired test
of ``evalharness compare`` (Holm-corrected across every compared metric) finds it
significant; otherwise it is "no significant change", or "not tested" with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from markupsafe import Markup

from evalharness.errors import EvalHarnessError, RecordError
from evalharness.jsonvalues import JSONArray, JSONObject, finite_number
from evalharness.leaderboard.metadata import record_badges
from evalharness.records.record import (
    RunRecord,
    TaskEntry,
    load_record,
    read_samples,
    row_scores,
)
from evalharness.report.charts import Bar, BarGroup, bar_chart
from evalharness.report.examples import changed_rows, task_data
from evalharness.report.render import slugify
from evalharness.types import MetricResult, signature_text

if TYPE_CHECKING:
    from evalharness.comparison.compare import Comparison

__all__ = ["RunView", "build_report", "load_run_view"]


@dataclass
class RunView:
    """A loaded run: its record and, per task, its samples or why they could not be read."""

    run_dir: Path
    record: RunRecord
    samples: dict[str, list[JSONObject]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


def load_run_view(run_dir: str | Path, *, with_samples: bool = True) -> RunView:
    run_dir = Path(run_dir)
    view = RunView(run_dir, load_record(run_dir))
    if with_samples:
        for name in view.record.tasks:
            try:
                rows = read_samples(run_dir, name)
                for index, row in enumerate(rows):  # scores the browsers read: checked once, here
                    row_scores(row, f"{name} samples, row {index}")
                view.samples[name] = rows
            except RecordError as exc:
                view.problems[name] = str(exc)
    return view


def _text(value: object) -> str:
    """How an input, prediction or gold value reads in the example browser."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


# -- metadata ---------------------------------------------------------------------------


def _model_facts(record: RunRecord) -> list[tuple[str, str]]:
    model = record.model
    facts = [
        ("model", model.name),
        ("kind", model.kind),
        ("source", model.source),
        ("path", model.path),
        ("fingerprint", model.fingerprint),
        ("architecture", model.architecture or "–"),
        ("parameters", f"{model.num_parameters:,}" if model.num_parameters else "–"),
        ("revision", model.revision or "–"),
        ("device / dtype", f"{model.device or '–'} / {model.dtype or '–'}"),
    ]
    facts += [(f"note: {key}", _text(value)) for key, value in model.notes.items()]
    return facts


def _run_facts(view: RunView) -> list[tuple[str, str]]:
    record = view.record
    environment = record.environment
    return [
        ("run id", record.run_id),
        ("created", record.created),
        ("run directory", str(view.run_dir)),
        ("total time", f"{record.seconds:.1f} s"),
        ("evalharness revision", _text(environment.get("evalharness_revision")) or "–"),
        ("python", _text(environment.get("python")) or "–"),
        ("platform", _text(environment.get("platform")) or "–"),
    ]


def _packages(record: RunRecord) -> list[tuple[str, str]]:
    packages = record.environment.get("packages") or {}
    return sorted((str(k), _text(v)) for k, v in packages.items()) if isinstance(packages, Mapping) else []


# -- scores -----------------------------------------------------------------------------


# How the paired test's verdict reads in the report, and the class that colours it.
_VERDICT_LABELS = {
    "improved": ("better", "better"),
    "regressed": ("worse", "worse"),
    "no significant change": ("no significant change", "same"),
    "undefined": ("not tested: the difference or its test is undefined", "untested"),
}


@dataclass(frozen=True)
class _Verdicts:
    """The paired tests of a run against its baseline, or why there are none."""

    comparison: Comparison | None = None
    problem: str = ""

    def label(self, task: str, key: str) -> tuple[str, str]:
        """(label, css class) of one metric's difference."""
        if self.comparison is None:
            return f"not tested: {self.problem}", "untested"
        found = self.comparison.get(task, key)
        if found is None:
            reason = next((n["reason"] for n in self.comparison.not_compared if (n["task"], n["metric"]) == (task, key)), self.problem)
            return f"not tested: {reason or 'examples differ from the baseline'}", "untested"
        label, css = _VERDICT_LABELS[found.verdict]
        if found.p_adjusted is not None:
            label += f", p adj. {found.p_adjusted:.2g}"
        return label, css


def _verdicts(run: RunView, baseline: RunView) -> _Verdicts:
    """Paired tests on the tasks both runs evaluated on the same data."""
    from evalharness.comparison.compare import compare_runs

    shared = [
        name
        for name, task in run.record.tasks.items()
        if name in baseline.record.tasks and baseline.record.tasks[name].data.fingerprint == task.data.fingerprint
    ]
    if not shared:
        return _Verdicts(problem="no task was evaluated on the same data as the baseline")
    try:
        return _Verdicts(compare_runs(baseline.run_dir, run.run_dir, tasks=shared), "examples differ from the baseline")
    except EvalHarnessError as exc:
        return _Verdicts(problem=str(exc).splitlines()[0])


def _metric_row(key: str, entry: MetricResult, base: MetricResult | None, label: tuple[str, str]) -> dict[str, object]:
    """One line of a task's score table (a template context: values are read by Jinja)."""
    row: dict[str, object] = {
        "key": key,
        "metric": entry.metric,
        "value": entry.value,
        "ci": entry.ci,
        "stderr": entry.stderr,
        "n": entry.n,
        "direction": entry.direction.label,
        "ci_method": entry.ci_method,
        "signature": signature_text(entry.signature),
        "settings": _text(entry.settings) if entry.settings else "",
        "baseline": base,
        "delta": None,
        "change": "",
        "change_class": "",
    }
    value, base_value = finite_number(entry.value), finite_number(base.value) if base is not None else None
    if base is not None and value is not None and base_value is not None:
        row["delta"] = value - base_value
        change, css = label
        # Only a significant difference is marked; anything else reads as plain text.
        row["change_class"] = css if css in ("better", "worse") else ""
        if signature_text(base.signature) != signature_text(entry.signature):
            change += " (different metric signature)"
        row["change"] = change
    return row


def _bar(entry: MetricResult | None, series: int) -> Bar:
    if entry is None:
        return Bar(None, series=series)
    return Bar(finite_number(entry.value), finite_number(entry.ci[0]), finite_number(entry.ci[1]), series)


def _task_chart(task: TaskEntry, base_task: TaskEntry | None, series: Sequence[str]) -> Markup:
    groups = []
    for key, entry in task.metrics.items():
        bars = [_bar(entry, 0)]
        if base_task is not None:
            bars.append(_bar(base_task.metrics.get(key), 1))
        groups.append(BarGroup(key, bars))
    ideals = {entry.ideal for entry in task.metrics.values()}
    ideal = next(iter(ideals)) if len(ideals) == 1 else None
    return bar_chart(groups, series=series, reference=ideal, reference_label=f"ideal {ideal:g}" if ideal is not None else "")


def _group_charts(task: TaskEntry, base_task: TaskEntry | None, series: Sequence[str]) -> list[dict[str, object]]:
    charts: list[dict[str, object]] = []
    for key, entry in task.metrics.items():
        if not entry.groups:
            continue
        base = base_task.metrics.get(key) if base_task is not None else None
        groups = []
        for name, group in entry.groups.items():
            bars = [Bar(finite_number(group.value), finite_number(group.ci[0]), finite_number(group.ci[1]), 0)]
            if base is not None and base.groups:
                other = base.groups.get(name)
                bars.append(Bar(*(None, None, None) if other is None else (finite_number(other.value), finite_number(other.ci[0]), finite_number(other.ci[1])), series=1))
            groups.append(BarGroup(f"{name} (n={group.n})", bars))
        chart = bar_chart(
            groups,
            series=series if base is not None and base.groups else series[:1],
            reference=entry.ideal,
            reference_label=f"ideal {entry.ideal:g}" if entry.ideal is not None else "",
        )
        charts.append({"metric": key, "chart": chart, "count": len(entry.groups)})
    return charts


# -- the whole report -------------------------------------------------------------------


def build_report(run: RunView, baseline: RunView | None = None) -> tuple[dict[str, object], JSONObject]:
    """(template context, script data) for one run, optionally against a baseline: the context's
    values are read by the Jinja template, the data is embedded as JSON."""
    record = run.record
    series = [record.model.name]
    if baseline is not None:
        series = [f"{record.model.name} (this run)", f"{baseline.record.model.name} (baseline)"]
    tasks: list[dict[str, object]] = []
    data_tasks: JSONArray = []
    changed_total = 0
    verdicts = _verdicts(run, baseline) if baseline is not None else _Verdicts()
    for name, task in record.tasks.items():
        base_task = baseline.record.tasks.get(name) if baseline is not None else None
        anchor = "task-" + slugify(name)
        rows = run.samples.get(name)
        notes = list(task.notes)
        if base_task is not None and base_task.data.fingerprint != task.data.fingerprint:
            notes.append("the baseline used different data for this task (data fingerprints differ)")
        section: dict[str, object] = {
            "name": name,
            "anchor": anchor,
            "facts": [
                ("kind", task.kind),
                ("task version", str(task.version)),
                ("spec hash", task.spec_hash),
                ("formulation", task.formulation),
                ("examples", f"{task.n_examples:,}"),
                ("data", f"{task.data.source}: {task.data.location}"),
                ("data fingerprint", task.data.fingerprint),
                ("time", f"{task.seconds:.2f} s"),
            ]
            + ([("task settings", _text(task.settings))] if task.settings else []),
            "notes": notes,
            "metrics": [
                _metric_row(key, entry, base_task.metrics.get(key) if base_task else None, verdicts.label(name, key))
                for key, entry in task.metrics.items()
            ],
            "chart": _task_chart(task, base_task, series),
            "group_charts": _group_charts(task, base_task, series),
            "problem": run.problems.get(name),
            "in_baseline": base_task is not None,
        }
        tasks.append(section)
        if rows is None:
            continue
        entry = task_data(name, anchor, task, rows)
        base_rows = baseline.samples.get(name) if baseline is not None else None
        if base_task is not None and base_rows is not None:
            changed, note = changed_rows(task, rows, base_task, base_rows)
            entry["changed"], entry["changed_note"] = changed, note
            changed_total += len(changed)
        data_tasks.append(entry)
    context: dict[str, object] = {
        "badges": record_badges(record),
        "model_facts": _model_facts(record),
        "run_facts": _run_facts(run),
        "packages": _packages(record),
        "settings": json.dumps(record.settings, indent=2, ensure_ascii=False, sort_keys=True, default=str),
        "skipped": sorted(record.skipped.items()),
        "tasks": tasks,
        "series": series,
        "baseline": None,
    }
    if baseline is not None:
        context["baseline"] = {
            "name": baseline.record.model.name,
            "model_facts": _model_facts(baseline.record),
            "run_facts": _run_facts(baseline),
            "only_in_baseline": sorted(set(baseline.record.tasks) - set(record.tasks)),
            "changed_total": changed_total,
        }
    data: JSONObject = {"tasks": data_tasks, "baseline": baseline is not None}
    return context, data
