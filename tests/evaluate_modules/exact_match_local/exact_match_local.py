"""A tiny `evaluate` module for tests: share of predictions equal to their reference (0-1).

Loaded by local path only (`evaluate.load("tests/evaluate_modules/exact_match_local")`).
"""

import datasets
import evaluate


class ExactMatchLocal(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Exact string match, for evalharness tests.",
            citation="",
            inputs_description="predictions and references: lists of strings",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):
        matches = sum(p == r for p, r in zip(predictions, references))
        return {"exact_match": matches / len(references)}
