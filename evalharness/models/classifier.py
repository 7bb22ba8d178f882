"""Sequence-classification heads (``AutoModelForSequenceClassification``).

Returns raw logits in the model's ``id2label`` order; mapping them to a task's label names
is the prompting layer's job (label orders differ between checkpoints, e.g. for MNLI).
A head with ``num_labels == 1`` is a regression head (STS-B) and returns its single value.
"""

from __future__ import annotations

from collections.abc import Sequence

from evalharness.models.batching import filled
from evalharness.models.encoders import EncodedRow, EncoderAdapter
from evalharness.types import ClassifyRequest, ClassifyResponse, RequestKind

__all__ = ["SequenceClassifierAdapter"]

ClassifyInput = str | tuple[str, str | None] | ClassifyRequest


class SequenceClassifierAdapter(EncoderAdapter):
    kind = "sequence_classifier"
    answers = frozenset({RequestKind.CLASSIFY})
    auto_class_name = "AutoModelForSequenceClassification"

    @property
    def labels(self) -> tuple[str, ...]:
        """Label names in logit order, from ``config.id2label``."""
        names = {int(index): str(name) for index, name in (self.model.config.id2label or {}).items()}  # keys are ints once loaded
        return tuple(names[i] for i in range(len(names)))

    @property
    def is_regression(self) -> bool:
        config = self.model.config
        return config.num_labels == 1 or getattr(config, "problem_type", None) == "regression"

    def _encode(self, pairs: list[tuple[str, str | None]]) -> tuple[list[EncodedRow], list[bool]]:
        """Tokenize once without truncation; re-encode only the inputs that are too long."""
        texts = [text for text, _ in pairs]
        seconds = [second for _, second in pairs]
        has_pairs = any(second is not None for second in seconds)
        args = (texts, [s or "" for s in seconds]) if has_pairs else (texts,)
        encoded = self.tokenizer(*args, truncation=False, verbose=False)
        rows = [{key: encoded[key][i] for key in encoded} for i in range(len(texts))]
        limit = self.max_length
        truncated = [len(row["input_ids"]) > limit for row in rows]
        for index in (i for i, cut in enumerate(truncated) if cut):
            text_args = (texts[index], seconds[index]) if has_pairs else (texts[index],)
            rows[index] = dict(self.tokenizer(*text_args, truncation=True, max_length=limit))
        return rows, truncated

    def classify(self, inputs: Sequence[ClassifyInput], *, batch_size: int = 32) -> list[ClassifyResponse]:
        """Logits for single texts or ``(text, text_pair)`` pairs, in input order."""
        pairs = [(item, None) if isinstance(item, str) else (item[0], item[1]) for item in inputs]
        rows, truncated = self._encode(pairs)
        results: list[ClassifyResponse | None] = [None] * len(rows)
        for batch, output in self.batches.run(rows, batch_size):
            for index, row_logits in zip(batch, output["logits"].float().cpu().tolist()):
                results[index] = ClassifyResponse(tuple(row_logits), truncated[index])
        return filled(results)
