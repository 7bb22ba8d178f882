"""Formulations: how a checkpoint kind answers a task kind.

A formulation turns examples into requests of one kind and the responses back into
predictions. It knows the task spec and what the adapter can do, but never touches
metrics; the runner glues formulations, adapters and metrics together. The choice of
formulation is a lookup (task kind -> candidates in preference order), not an if-ladder.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Generic, TypeAlias, cast

from typing_extensions import TypeVar

from evalharness.config import StrictModel, validate_model
from evalharness.errors import DataError
from evalharness.jsonvalues import JSONObject, expect_str
from evalharness.models.protocols import LoadedModel
from evalharness.prompting.chat import PromptFormat
from evalharness.spec.loader import Task
from evalharness.types import Decoded, Decoding, Example, Request, RequestKind, RequestOptions, Response

__all__ = [
    "PROMPT_OPTIONS", "Decoded", "Formulation", "FormulationOptions", "NoSettings", "RunOption", "SomeFormulation",
    "erased", "task_decoding", "text_field",
]


class RunOption(str, Enum):
    """A run option that only some formulations use; each value names its field of
    :class:`FormulationOptions`. A formulation lists the ones it uses in ``uses``."""

    LABEL_MAP = "label_map"  # --label-map
    NUM_FEWSHOT = "num_fewshot"  # --num-fewshot
    GENERATION = "generation"  # --max-new-tokens, --num-beams
    PROMPT_FORMAT = "prompt_format"  # --prompt-format
    SYSTEM_PROMPT = "system_prompt"  # --system-prompt
    FEWSHOT_AS_MULTITURN = "fewshot_as_multiturn"  # --fewshot-as-multiturn
    STRIP_THINKING = "strip_thinking"  # --strip-thinking


# The options of every prompted formulation (a prompt to write: in which format, with which system text).
PROMPT_OPTIONS = frozenset({RunOption.NUM_FEWSHOT, RunOption.PROMPT_FORMAT, RunOption.SYSTEM_PROMPT, RunOption.FEWSHOT_AS_MULTITURN})


@dataclass(frozen=True)
class FormulationOptions:
    """Per-run choices that change how requests are built or decoded."""

    label_map: Mapping[str, str] | None = None  # model label -> task label
    generation: Decoding = Decoding()  # the decoding fields this run set: overrides of the task's
    seed: int = 1234
    data_dir: Path | None = None  # where few-shot pools are read from (like the task's data)
    num_fewshot: int | None = None  # overrides prompt.few_shot.n
    prompt_format: str | None = None  # raw | chat; None: chosen per model (prompting.chat)
    system_prompt: str | None = None
    fewshot_as_multiturn: bool = False
    strip_thinking: str | None = None  # the delimiter ending a reasoning trace


def task_decoding(task: Task, options: FormulationOptions) -> Decoding:
    """The task's ``generation:`` section with this run's overrides, checked together."""
    base = task.spec.generation or Decoding()
    where = f"{task.path}: generation (task settings with this run's overrides)"
    return validate_model(Decoding, {**base.model_dump(), **options.generation.given()}, where)


def text_field(task: Task, example: Example, name: str) -> str:
    """The example's text field ``name`` (the data layer made it text, ``spec.kinds``; an
    example built otherwise is refused here, naming the field)."""
    return expect_str(example[name], f"{task.name}: example {example.id}: field '{name}'", error=DataError)


class NoSettings(StrictModel):
    """For formulations without settings: any key given is an error."""


# Settings are only returned (``settings_for``), responses only received (``decode``).
SettingsT = TypeVar("SettingsT", bound=StrictModel, covariant=True)
StateT = TypeVar("StateT")
ResponseT = TypeVar("ResponseT", bound=Response, contravariant=True, default=Response)


class Formulation(ABC, Generic[SettingsT, StateT, ResponseT]):
    """One way of answering a task kind with one request kind.

    Tunable behaviour (window sizes, strides, thresholds, prefixes) is declared as a
    ``Settings`` model; a task sets it under ``formulations: {<name>: {...}}`` and the
    catalog validates it like metric settings; the first type parameter is that model, so
    :meth:`settings_for` is typed, the second the immutable state :meth:`prepare` resolves
    once per (task, model) and every later step receives, the third the response type of its
    request kind that :meth:`decode` reads
    (``class SpanHead(Formulation[SpanHeadSettings, SpanState, SpanResponse])``).

    ``uses`` declares the run options the formulation reads; ``method`` says in a few words
    how it answers, which is the reason recorded when a run option does not apply to it
    (e.g. ``--num-fewshot`` on a classifier head). :meth:`accepted_options` strips the
    others before :meth:`prepare`, so an undeclared option can never change a request.
    """

    # Class constants, not ClassVar: a wrapping formulation (``Counterfactual``) sets them per
    # instance from the formulation it wraps.
    name: str
    request_kind: RequestKind
    Settings: type[StrictModel] = NoSettings
    uses: frozenset[RunOption] = frozenset()
    method: str

    def accepted_options(self, options: FormulationOptions) -> FormulationOptions:
        """``options`` with every run option this formulation does not use at its default."""
        defaults = FormulationOptions()
        return replace(options, **{o.value: getattr(defaults, o.value) for o in RunOption if o not in self.uses})

    def settings_for(self, task: Task) -> SettingsT:
        """This formulation's settings for ``task`` (validated again here for API callers)."""
        # ``Settings`` is the model named by the class's type parameter (a ClassVar cannot be generic).
        return cast(SettingsT, self.Settings.model_validate(task.spec.formulations.get(self.name, {})))

    def unsupported_reason(self, task: Task, adapter: LoadedModel) -> str | None:
        """Why this formulation cannot serve ``task`` with ``adapter`` (None: it can)."""
        if self.request_kind not in adapter.answers:
            because = getattr(adapter, "refusals", {}).get(self.request_kind)  # a backend says why
            return because or f"a {adapter.kind} checkpoint cannot answer '{self.request_kind.value}' requests"
        return None

    @abstractmethod
    def prepare(self, task: Task, adapter: LoadedModel, options: FormulationOptions) -> StateT:
        """Resolve per-(task, model) state once, e.g. a label mapping."""

    def request_options(self, task: Task, state: StateT) -> RequestOptions | None:
        """The request kind's typed options (``types.GenerationOptions``...); None: the kind
        takes none (see ``models.protocols.REQUEST_CALLS``)."""
        return None

    def settings(self, task: Task, state: StateT) -> JSONObject:
        """What to record about how requests were made (written to the run record)."""
        return {}

    def prompt_policy(self, task: Task, state: StateT) -> PromptFormat | None:
        """The prompt format the requests were written in (``prompting.chat.PromptFormat``);
        None for formulations without a prompt. The runner lints prompted requests with it."""
        return None

    def observed(self, task: Task, state: StateT, decoded: Sequence[Decoded]) -> tuple[JSONObject, list[str]]:
        """Settings and notes the record gets from what was decoded (e.g. which swap groups the
        evaluated examples covered); computed from the predictions, never from state kept
        between ``requests`` and ``decode``."""
        return {}, []

    @abstractmethod
    def requests(self, task: Task, examples: Sequence[Example], state: StateT) -> list[list[Request]]:
        """Requests per example (several for multiple choice)."""

    @abstractmethod
    def decode(self, task: Task, example: Example, responses: Sequence[ResponseT], state: StateT) -> Decoded:
        """The example's prediction from its responses."""


# A formulation whatever its settings, state and response types: what the registry
# (``prompting.FORMULATIONS``), a wrapping formulation and the runner hold. Python has no
# existential types to say "some state type", so the state is ``object`` there; it is sound
# because a formulation only ever gets back the state its own ``prepare`` returned (the runner
# keeps the two together) and the responses to its own requests (the engine answers each
# request kind with that kind's response type, ``models.protocols.REQUEST_CALLS``).
SomeFormulation: TypeAlias = "Formulation[StrictModel, object, Response]"

_S = TypeVar("_S", bound=StrictModel)
_T = TypeVar("_T")
_R = TypeVar("_R", bound=Response)


def erased(formulation: Formulation[_S, _T, _R]) -> SomeFormulation:
    """``formulation`` as a :data:`SomeFormulation` (see there why that holds)."""
    return cast(SomeFormulation, formulation)
