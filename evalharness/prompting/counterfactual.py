"""The counterfactual perturbation probe: any task, any model kind (HELM's fairness
perturbations, with the swap lists declared in the task, not in code).

A task with a ``counterfactual:`` section is answered by whatever formulation the model kind
would use for the base task (a classifier head, a QA head, choice log-likelihoods,
generation...), wrapped here: every example is asked once as written and once per swap
group whose terms occur in its ``fields`` (the same swaps applied to the gold answers when
they are among the fields, so extractive answers stay in the context). The prediction is

    {"original": <base prediction>, "perturbed": {group: <base prediction>},
     "flipped": {group: bool}, "gold": {group: <perturbed gold>}}

which the ``flip_rate`` and ``counterfactual_score_change`` metrics consume. A QA answer
counts as flipped when it differs (after SQuAD normalisation) from the original answer with
the same swaps applied, so "he" -> "she" in the answer itself is not a flip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic

from evalharness.errors import SpecError
from evalharness.jsonvalues import JSONObject, JsonValue
from evalharness.prompting.base import (
    Decoded,
    Formulation,
    FormulationOptions,
    ResponseT,
    SettingsT,
    SomeFormulation,
    StateT,
    erased,
)
from evalharness.prompting.chat import PromptFormat
from evalharness.prompting.swaps import Swapper
from evalharness.spec.kinds import TASK_KINDS
from evalharness.spec.loader import Task
from evalharness.types import (
    CounterfactualPrediction,
    Example,
    Prediction,
    Request,
    RequestOptions,
    SpanPrediction,
    TextPrediction,
)

if TYPE_CHECKING:  # a type only: this module also reads metrics (SQuAD normalisation), and only the runner knows both
    from evalharness.models.protocols import LoadedModel

__all__ = ["Counterfactual", "load_swapper", "perturb", "wrap_counterfactual"]


def _read_groups_file(task: Task, name: str) -> dict[str, list[list[str]]]:
    path = (task.path.parent / name).resolve()
    if not path.is_file():
        raise SpecError(f"{task.path}: counterfactual.groups_file: {path} not found")
    groups: dict[str, list[list[str]]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = [part.strip() for part in line.split("\t")]
        if len(parts) != 3:
            raise SpecError(f"{path}:{number}: expected 'group<TAB>term<TAB>term', got {line!r}")
        groups.setdefault(parts[0], []).append(parts[1:])
    return groups


def load_swapper(task: Task) -> Swapper:
    """The task's swap groups (inline groups first, then the file's)."""
    spec = task.spec.counterfactual
    if spec is None:
        raise SpecError(f"{task.path}: no counterfactual section")
    groups = {name: list(pairs) for name, pairs in spec.groups.items()}
    if spec.groups_file is not None:
        for name, pairs in _read_groups_file(task, spec.groups_file).items():
            groups.setdefault(name, []).extend(pairs)
    try:
        return Swapper(groups)
    except ValueError as exc:
        raise SpecError(f"{task.path}: counterfactual: {exc}") from None


def _swap_value(swapper: Swapper, group: str, value: JsonValue) -> tuple[JsonValue, int]:
    if isinstance(value, str):
        return swapper.apply(group, value)
    if isinstance(value, list):
        texts = [item for item in value if isinstance(item, str)]
        if len(texts) == len(value):  # a list of texts
            swapped = [swapper.apply(group, item) for item in texts]
            return [text for text, _ in swapped], sum(count for _, count in swapped)
    return value, 0


def perturb(task: Task, example: Example, swapper: Swapper, group: str) -> Example | None:
    """The example with ``group``'s swaps applied to the declared fields; None if unchanged."""
    spec = task.spec.counterfactual
    assert spec is not None
    fields = dict(example.fields)
    total = 0
    for name in spec.fields:
        if name in fields:
            fields[name], count = _swap_value(swapper, group, fields[name])
            total += count
    return Example(example.id, fields) if total else None


def _answer_text(prediction: Prediction) -> str:
    if not isinstance(prediction, SpanPrediction | TextPrediction):  # the kinds FLIP_RULES reads text of
        raise TypeError(f"expected a text prediction, got {type(prediction).__name__}")
    return prediction.text


def _text_flip(swapper: Swapper, group: str, original: Prediction, perturbed: Prediction) -> bool:
    from evalharness.metrics.squad import normalize_answer

    expected, _ = swapper.apply(group, _answer_text(original))
    return normalize_answer(expected) != normalize_answer(_answer_text(perturbed))


def _same_flip(swapper: Swapper, group: str, original: Prediction, perturbed: Prediction) -> bool:
    return original != perturbed


# Task kind -> whether a perturbed prediction differs from the original one.
FLIP_RULES: dict[str, Callable[[Swapper, str, Prediction, Prediction], bool]] = {
    "extractive_qa": _text_flip,
    "generation": _text_flip,
}


@dataclass(frozen=True)
class _State(Generic[StateT]):
    base_state: StateT  # the wrapped formulation's state
    swapper: Swapper


class Counterfactual(Formulation[SettingsT, _State[StateT], ResponseT]):
    """Wraps the base task's formulation: original and perturbed requests per example. Its
    settings and response types are the wrapped formulation's, its state wraps that one's.

    An example's variants (the original, then one per swap group whose terms it contains)
    are a pure function of the example (:meth:`variants`), so ``decode`` rebuilds them
    instead of reading a layout that ``requests`` left behind.
    """

    def __init__(self, base: Formulation[SettingsT, StateT, ResponseT]) -> None:
        self.base = base
        self.name = f"counterfactual:{base.name}"
        self.request_kind = base.request_kind
        self.Settings = base.Settings
        self.uses = base.uses
        self.method = f"{base.method}, asked again with terms swapped"

    def unsupported_reason(self, task: Task, adapter: LoadedModel) -> str | None:
        return self.base.unsupported_reason(task, adapter)

    def prepare(self, task: Task, adapter: LoadedModel, options: FormulationOptions) -> _State[StateT]:
        return _State(self.base.prepare(task, adapter, options), load_swapper(task))

    def request_options(self, task: Task, state: _State[StateT]) -> RequestOptions | None:
        return self.base.request_options(task, state.base_state)

    def prompt_policy(self, task: Task, state: _State[StateT]) -> PromptFormat | None:
        return self.base.prompt_policy(task, state.base_state)

    def settings(self, task: Task, state: _State[StateT]) -> JSONObject:
        spec = task.spec.counterfactual
        assert spec is not None
        base = self.base.settings(task, state.base_state)
        return {
            **({"prompt_format": base["prompt_format"]} if "prompt_format" in base else {}),
            "base_formulation": self.base.name,
            "base": base,
            "fields": list(spec.fields),
            "groups": {name: dict(group.mapping) for name, group in state.swapper.groups.items()},
        }

    def observed(self, task: Task, state: _State[StateT], decoded: Sequence[Decoded]) -> tuple[JSONObject, list[str]]:
        counts = dict.fromkeys(state.swapper.names(), 0)
        for item in decoded:
            for group in _counterfactual(item).perturbed:
                counts[group] += 1
        absent = [name for name, count in counts.items() if count == 0]
        base_settings, notes = self.base.observed(task, state.base_state, _variant_decodes(decoded))
        spec = task.spec.counterfactual
        assert spec is not None
        if absent:
            notes.append(
                f"swap groups {', '.join(absent)}: none of the {len(decoded)} evaluated examples contains their "
                f"terms in {list(spec.fields)}, so these groups are not measured "
                f"({len(counts) - len(absent)} of {len(counts)} groups covered)"
            )
        return {**base_settings, "perturbed_examples": {name: count for name, count in counts.items()}}, notes

    def variants(self, task: Task, example: Example, state: _State[StateT]) -> list[tuple[str, Example]]:
        """``("original", example)``, then each swap group's perturbed example, in group order."""
        found = [("original", example)]
        for group in state.swapper.names():
            changed = perturb(task, example, state.swapper, group)
            if changed is not None:
                found.append((group, changed))
        return found

    def requests(self, task: Task, examples: Sequence[Example], state: _State[StateT]) -> list[list[Request]]:
        grouped = []
        for example in examples:
            variants = [variant for _, variant in self.variants(task, example, state)]
            grouped.append([request for requests in self.base.requests(task, variants, state.base_state) for request in requests])
        return grouped

    def decode(self, task: Task, example: Example, responses: Sequence[ResponseT], state: _State[StateT]) -> Decoded:
        gold_field = TASK_KINDS[task.spec.kind].gold
        flip = FLIP_RULES.get(task.spec.kind, _same_flip)
        variants = self.variants(task, example, state)
        per_variant = self.base.requests(task, [variant for _, variant in variants], state.base_state)
        decoded: dict[str, Decoded] = {}
        golds: dict[str, JsonValue] = {}
        cursor = 0
        for (group, variant), requests in zip(variants, per_variant, strict=True):
            decoded[group] = self.base.decode(task, variant, responses[cursor : cursor + len(requests)], state.base_state)
            golds[group] = variant.fields.get(gold_field) if gold_field else None
            cursor += len(requests)
        original = decoded.pop("original")
        golds.pop("original")
        prediction = CounterfactualPrediction(
            original=original.prediction,
            perturbed={group: item.prediction for group, item in decoded.items()},
            flipped={group: flip(state.swapper, group, original.prediction, item.prediction) for group, item in decoded.items()},
            gold=golds,
        )
        shown = {"original": original.input, **{group: item.input for group, item in decoded.items()}}
        details: JSONObject = {group: dict(item.extra) for group, item in [("original", original), *decoded.items()] if item.extra}
        return Decoded(prediction, shown, {"variants": details} if details else {})


def _counterfactual(item: Decoded) -> CounterfactualPrediction:
    if not isinstance(item.prediction, CounterfactualPrediction):  # decode() above made every one
        raise TypeError(f"expected a counterfactual prediction, got {type(item.prediction).__name__}")
    return item.prediction


def _variant_decodes(decoded: Sequence[Decoded]) -> list[Decoded]:
    """Every evaluated variant as the base formulation decoded it (what its ``observed`` reads)."""
    variants = []
    for item in decoded:
        prediction, details, shown = _counterfactual(item), item.extra.get("variants", {}), item.input
        assert isinstance(details, dict) and isinstance(shown, dict)  # decode() above built both
        for group, answer in [("original", prediction.original), *prediction.perturbed.items()]:
            extra = details.get(group, {})
            assert isinstance(extra, dict)
            variants.append(Decoded(answer, shown[group], extra))
    return variants


def wrap_counterfactual(task: Task, formulation: SomeFormulation) -> SomeFormulation:
    """The formulation to use: wrapped when the task declares a counterfactual probe."""
    return formulation if task.spec.counterfactual is None else erased(Counterfactual(formulation))


