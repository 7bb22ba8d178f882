"""Accuracy as an ``evaluate`` metric module, loaded by path so that no Hub download happens.

The Hub's ``evaluate-metric/accuracy`` wraps ``sklearn.metrics.accuracy_score``; so does this.
Used by ``benchmarks/parity_heads.py`` to drive ``evaluate``'s text-classification evaluator.
"""

import datasets
import evaluate
from sklearn.metrics import accuracy_score


class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Proportion of correct predictions (sklearn.metrics.accuracy_score).",
            citation="",
            inputs_description="predictions and references: label ids",
            features=datasets.Features({"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}),
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        return {"accuracy": float(accuracy_score(references, predictions, normalize=normalize, sample_weight=sample_weight))}
