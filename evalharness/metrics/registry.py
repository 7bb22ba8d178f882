"""Metric registry: names to import paths, so names are known without importing metric code.

Explicit, with no import side effects: adding a metric is one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from evalharness.errors import SpecError, did_you_mean
from evalharness.metrics.base import Metric

__all__ = ["METRICS", "build_metric", "metric_class", "metric_names"]

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


def build_metric(name: str, settings: Mapping[str, Any] | None = None) -> Metric:
    return metric_class(name)(settings)
