"""Fine-tuned classification and regression heads answer classification/regression tasks.

Model labels are mapped to task labels by name (case, spaces, dashes and underscores
ignored) through ``config.id2label``, or by an explicit ``--label-map``. If they cannot be
matched the run stops with a message saying how to map them: guessing by position is how
MNLI scores silently go wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from evalharness.errors import ModelError, UsageError
from evalharness.jsonvalues import JSONObject, JsonValue
from evalharness.models.protocols import LabelHead, LoadedModel, capability
from evalharness.prompting.base import (
    Decoded,
    Formulation,
    FormulationOptions,
    NoSettings,
    RunOption,
    text_field,
)
from evalharness.spec.loader import Task
from evalharness.spec.schema import label_key
from evalharness.types import (
    ClassifyRequest,
    ClassifyResponse,
    Example,
    LabelPrediction,
    Request,
    RequestKind,
    ScorePrediction,
)

__all__ = ["ClassifierHead", "RegressionHead", "resolve_label_map"]


_normalise = label_key  # the spec refuses task labels that normalise alike


def resolve_label_map(
    model_labels: Sequence[str], task_labels: Sequence[str], override: Mapping[str, str] | None
) -> tuple[str, ...]:
    """The task label for each model label index.

    ``override`` maps model label names (or indices as text) to task labels; several model
    labels may map to one task label. Every model label must end up mapped, and every entry
    of ``override`` must name a model label: an entry that maps nothing is a mistake.
    """
    if override is not None:
        known = {*model_labels, *map(str, range(len(model_labels)))}
        stray = [key for key in override if key not in known]
        if stray:
            raise UsageError(
                f"--label-map: {stray} name no label of the model (its labels, config.id2label: "
                f"{list(model_labels)}, or their indices 0-{len(model_labels) - 1})"
            )
    by_normalised = {_normalise(label): label for label in task_labels}
    mapped: list[str] = []
    unmatched: list[str] = []
    for index, model_label in enumerate(model_labels):
        if override is not None:
            target = override.get(model_label, override.get(str(index)))
            if target is None:
                unmatched.append(model_label)
                continue
            if target not in task_labels:
                raise UsageError(f"--label-map: '{target}' is not a task label {list(task_labels)}")
            mapped.append(target)
        elif _normalise(model_label) in by_normalised:
            mapped.append(by_normalised[_normalise(model_label)])
        else:
            unmatched.append(model_label)
    if unmatched:
        suggestion = ",".join(f"{m}={t}" for m, t in zip(model_labels, task_labels))
        raise ModelError(
            f"cannot map the model's labels {list(model_labels)} (config.id2label) to the task's "
            f"labels {list(task_labels)}: no match for {unmatched}. Pass an explicit mapping, "
            f"e.g. --label-map {suggestion} (check the order against the model card)"
        )
    return tuple(mapped)


def _inputs(task: Task, example: Example) -> ClassifyRequest:
    pair = None if example.fields.get("text_pair") is None else text_field(task, example, "text_pair")
    return ClassifyRequest(text_field(task, example, "text"), pair)


def _shown_input(example: Example) -> JsonValue:
    pair = example.fields.get("text_pair")
    return example["text"] if pair is None else {"text": example["text"], "text_pair": pair}


class ClassifierHead(Formulation[NoSettings, tuple[str, ...], ClassifyResponse]):
    """Argmax over the head's logits, mapped to the task's label names."""

    name = "classifier_head"
    request_kind = RequestKind.CLASSIFY
    uses = frozenset({RunOption.LABEL_MAP})
    method = "classifier head: the text goes straight to the head, no prompt, nothing generated"

    def unsupported_reason(self, task: Task, adapter: LoadedModel) -> str | None:
        reason = super().unsupported_reason(task, adapter)
        if reason is None and isinstance(adapter, LabelHead) and adapter.is_regression:
            return "the checkpoint has a regression head (num_labels=1), the task needs labels"
        return reason

    def prepare(self, task: Task, adapter: LoadedModel, options: FormulationOptions) -> tuple[str, ...]:
        head = capability(adapter, LabelHead, self.name)
        return resolve_label_map(head.labels, task.spec.labels or [], options.label_map)

    def settings(self, task: Task, state: tuple[str, ...]) -> JSONObject:
        return {"label_map": {str(index): label for index, label in enumerate(state)}}

    def requests(self, task: Task, examples: Sequence[Example], state: tuple[str, ...]) -> list[list[Request]]:
        return [[_inputs(task, example)] for example in examples]

    def decode(self, task: Task, example: Example, responses: Sequence[ClassifyResponse], state: tuple[str, ...]) -> Decoded:
        (response,) = responses
        scores = response.scores
        if not all(math.isfinite(score) for score in scores):
            raise ModelError(f"{task.name}: example {example.id}: the model returned non-finite logits {scores}")
        best = max(range(len(scores)), key=scores.__getitem__)
        return Decoded(LabelPrediction(state[best]), _shown_input(example), {"logits": list(scores)})


class RegressionHead(Formulation[NoSettings, None, ClassifyResponse]):
    """The single output of a ``num_labels == 1`` head, as a real-valued prediction."""

    name = "regression_head"
    request_kind = RequestKind.CLASSIFY
    method = "regression head: the text goes straight to the head, no prompt, no labels, nothing generated"

    def unsupported_reason(self, task: Task, adapter: LoadedModel) -> str | None:
        reason = super().unsupported_reason(task, adapter)
        if reason is not None:
            return reason
        if not isinstance(adapter, LabelHead):
            return f"a {adapter.kind} adapter has no classification head to read a value from"
        if not adapter.is_regression:
            return f"the checkpoint's head has {len(adapter.labels)} labels; a regression task needs num_labels=1"
        return None

    def prepare(self, task: Task, adapter: LoadedModel, options: FormulationOptions) -> None:
        return None

    def requests(self, task: Task, examples: Sequence[Example], state: None) -> list[list[Request]]:
        return [[_inputs(task, example)] for example in examples]

    def decode(self, task: Task, example: Example, responses: Sequence[ClassifyResponse], state: None) -> Decoded:
        (response,) = responses
        value = response.scores[0]
        if not math.isfinite(value):
            raise ModelError(f"{task.name}: example {example.id}: the model returned {value}")
        return Decoded(ScorePrediction(value), _shown_input(example))
