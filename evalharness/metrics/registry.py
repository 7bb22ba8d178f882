"""Metric registry: names to import paths, so names are known without importing metric code.

Explicit, with no import side effects: adding a metric is one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from evalharness.errors import SpecError, UsageError, did_you_mean
from evalharness.metrics.base import Metric

if TYPE_CHECKING:
    from evalharness.spec.loader import Task

__all__ = [
    "METRICS",
    "TRUST_TASK_CODE_FLAG",
    "build_metric",
    "metric_class",
    "metric_code_files",
    "metric_names",
    "refuse_untrusted_code",
    "task_code",
]

TRUST_TASK_CODE_FLAG = "--trust-task-code"

METRICS: dict[str, str] = {
    "accuracy": "evalharness.metrics.classification:Accuracy",
    "f1": "evalharness.metrics.classification:F1",
    "mcc": "evalharness.metrics.classification:MCC",
    "pearson": "evalharness.metrics.correlation:Pearson",
    "spearman": "evalharness.metrics.correlation:Spearman",
    "squad_exact": "evalharness.metrics.squad:SquadExact",
    "squad_f1": "evalharness.metrics.squad:SquadF1",
    "squad_best_exact": "evalharness.metrics.squad:SquadBestExact",
    "squad_best_f1": "evalharness.metrics.squad:SquadBestF1",
    "token_perplexity": "evalharness.metrics.perplexity:TokenPerplexity",
    "word_perplexity": "evalharness.metrics.perplexity:WordPerplexity",
    "byte_perplexity": "evalharness.metrics.perplexity:BytePerplexity",
    "bits_per_byte": "evalharness.metrics.perplexity:BitsPerByte",
    "hf_evaluate": "evalharness.metrics.hf_evaluate:HFEvaluate",
    "bleu": "evalharness.metrics.translation:Bleu",
    "chrf": "evalharness.metrics.translation:ChrF",
    "chrf++": "evalharness.metrics.translation:ChrFPlusPlus",
    "ter": "evalharness.metrics.translation:Ter",
    "rouge1": "evalharness.metrics.summarization:Rouge1",
    "rouge2": "evalharness.metrics.summarization:Rouge2",
    "rougeL": "evalharness.metrics.summarization:RougeL",
    "rougeLsum": "evalharness.metrics.summarization:RougeLsum",
    "stereotype_score": "evalharness.metrics.bias:StereotypeScore",
    "stereotype_distance": "evalharness.metrics.bias:StereotypeDistance",
    "likelihood_diff": "evalharness.metrics.bias:LikelihoodDiff",
    "choice_accuracy": "evalharness.metrics.bias:ChoiceAccuracy",
    "accuracy_gap": "evalharness.metrics.bias:AccuracyGap",
    "bbq_accuracy": "evalharness.metrics.bias:BBQAccuracy",
    "bbq_bias_score": "evalharness.metrics.bias:BBQBiasScore",
    "flip_rate": "evalharness.metrics.counterfactual:FlipRate",
    "counterfactual_score_change": "evalharness.metrics.counterfactual:CounterfactualScoreChange",
    "external_mean": "evalharness.metrics.external:ExternalMean",
}


def metric_names() -> list[str]:
    return sorted(METRICS)


def metric_class(name: str) -> type[Metric]:
    """The class registered under ``name``; unknown names get a "did you mean"."""
    try:
        target = METRICS[name]
    except KeyError:
        raise SpecError(f"unknown metric '{name}'{did_you_mean(name, METRICS)}") from None
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def build_metric(name: str, settings: Mapping[str, object] | None = None) -> Metric:
    return metric_class(name)(settings)


def metric_code_files(name: str, settings: Mapping[str, object] | None = None, *, source: str = "", prefix: tuple[str | int, ...] = ()) -> list[str]:
    """Python files the metric ``name`` would load and run with ``settings`` (validated; a
    problem is a ``SpecError`` naming ``source`` and the field)."""
    from evalharness.config import validate_model

    cls = metric_class(name)
    return cls.code_files(validate_model(cls.Settings, settings or {}, source or f"metric '{name}'", prefix=prefix))


def task_code(task: Task) -> list[str]:
    """One line per metric of ``task`` that would run code: which metric, which file."""
    lines = []
    for index, metric in enumerate(task.spec.metrics):
        for path in metric_code_files(metric.name, metric.settings, source=str(task.path), prefix=("metrics", index, "settings")):
            lines.append(f"task '{task.name}' ({task.path}): metrics[{index}] {metric.name} would load and run {path}")
    return lines


def refuse_untrusted_code(tasks: Iterable[Task], *, trusted: bool) -> None:
    """"No Python in YAML": a task whose metrics would run code stops the command before
    anything runs unless the user opted in with ``--trust-task-code``."""
    lines = [line for task in tasks for line in task_code(task)]
    if lines and not trusted:
        raise UsageError(
            "task files would run Python code:\n  " + "\n  ".join(lines) + "\n"
            f"evalharness runs code referenced by task files only when you pass {TRUST_TASK_CODE_FLAG} "
            "(read that code first; the flag is recorded in the run record)"
        )
