"""One protocol per request kind: what any model backend implements to answer it.

In-process checkpoints (``models.*``), served models (``backends.openai``), vLLM and the
scripted test adapter all implement the same methods, so the engine never needs to know
which one it is talking to. Each method takes its requests in order and returns one
response per request, in the same order; ``batch_size`` is a hint (backends without batches
ignore it); options are one typed object per kind.

:data:`REQUEST_CALLS` is how the engine calls a kind: a typed function per kind that invokes
the protocol method, never a method name looked up in a string table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias, TypedDict, TypeVar, cast, runtime_checkable

from evalharness.errors import ModelError
from evalharness.jsonvalues import JSONObject
from evalharness.models.base import ModelInfo
from evalharness.types import (
    ClassifyRequest,
    ClassifyResponse,
    Decoding,
    GenerateResponse,
    GenerationOptions,
    LoglikelihoodRequest,
    LoglikelihoodResponse,
    PseudoLoglikelihoodRequest,
    PseudoLoglikelihoodResponse,
    Request,
    RequestKind,
    RequestOptions,
    Response,
    RollingLoglikelihoodResponse,
    RollingOptions,
    SpanOptions,
    SpanRequest,
    SpanResponse,
)

__all__ = [
    "REQUEST_CALLS",
    "capability",
    "LoadedModel",
    "ChecksGeneration",
    "DecodesSequences",
    "LabelHead",
    "MaskedPositions",
    "SpanWindows",
    "TextWindows",
    "AnswersSpans",
    "Classifies",
    "Generates",
    "RequestCall",
    "RollingWindows",
    "ScoresLoglikelihood",
    "ScoresPseudoLoglikelihood",
    "ScoresRolling",
]


@runtime_checkable
class LoadedModel(Protocol):
    """What the runner and the formulations know of any adapter, whatever answers it: its kind,
    the request kinds it answers, its provenance and its input limit. What a formulation needs
    beyond that (a label head's labels, a seq2seq model's decoding) is a narrower protocol it
    asks for, so a backend that lacks it is refused by name rather than failing inside."""

    @property
    def kind(self) -> str: ...

    @property
    def answers(self) -> frozenset[RequestKind]: ...

    @property
    def info(self) -> ModelInfo: ...

    @property
    def max_length(self) -> int: ...

    def token_lengths(self, requests: Sequence[Request]) -> list[int]:
        """Tokens in each request's texts, for sorting requests into batches as the model sees them."""
        ...


@runtime_checkable
class Classifies(Protocol):
    def classify(self, requests: Sequence[ClassifyRequest], *, batch_size: int = ...) -> list[ClassifyResponse]: ...


@runtime_checkable
class AnswersSpans(Protocol):
    def answer(
        self, requests: Sequence[SpanRequest], *, batch_size: int = ..., options: SpanOptions | None = ...
    ) -> list[SpanResponse]: ...


@runtime_checkable
class ScoresLoglikelihood(Protocol):
    def loglikelihood(
        self, requests: Sequence[LoglikelihoodRequest], *, batch_size: int = ...
    ) -> list[LoglikelihoodResponse]: ...


@runtime_checkable
class ScoresRolling(Protocol):
    def loglikelihood_rolling(
        self, requests: Sequence[str], *, batch_size: int = ..., options: RollingOptions | None = ...
    ) -> list[RollingLoglikelihoodResponse]: ...


@runtime_checkable
class Generates(Protocol):
    def generate(
        self, requests: Sequence[str], *, batch_size: int = ..., options: GenerationOptions | None = ...
    ) -> list[GenerateResponse]: ...


@runtime_checkable
class ScoresPseudoLoglikelihood(Protocol):
    def pseudo_loglikelihood(
        self, requests: Sequence[PseudoLoglikelihoodRequest], *, batch_size: int = ...
    ) -> list[PseudoLoglikelihoodResponse]: ...


# -- what some formulations need beyond LoadedModel (``capability``) ---------


@runtime_checkable
class LabelHead(Protocol):
    """A classification head: its labels in output order; one output is a regression head."""

    @property
    def labels(self) -> Sequence[str]: ...

    @property
    def is_regression(self) -> bool: ...


class RollingWindows(TypedDict):
    """How ``loglikelihood_rolling`` windows a text on a model, every length resolved."""

    window: str
    max_length: int
    stride: int
    prefix_token_id: int


@runtime_checkable
class TextWindows(Protocol):
    """How ``loglikelihood_rolling`` windows a text on this model (lengths resolved)."""

    def rolling_settings(self, window: str, max_length: int | None, stride: int | None) -> RollingWindows: ...


@runtime_checkable
class SpanWindows(Protocol):
    """How an extractive QA head windows long contexts: ``(max_length, doc_stride)``."""

    def windowing(self, max_length: int | None = ..., doc_stride: int | None = ...) -> tuple[int, int]: ...


@runtime_checkable
class MaskedPositions(Protocol):
    """A masked LM's window and the token positions of character spans."""

    @property
    def window_tokens(self) -> int: ...

    def token_positions(self, text: str, char_spans: Sequence[tuple[int, int]]) -> tuple[int, ...]: ...

    def shared_positions(self, text_a: str, text_b: str) -> tuple[tuple[int, ...], tuple[int, ...]]: ...


@runtime_checkable
class DecodesSequences(Protocol):
    """An encoder-decoder: its ``model_type`` (task prefixes) and effective decoding config."""

    @property
    def model_type(self) -> str: ...

    def generation_settings(self, decoding: Decoding | None = ..., **settings: object) -> JSONObject: ...


@runtime_checkable
class ChecksGeneration(Protocol):
    """Refuses decoding settings the model cannot honour before any forward pass."""

    def check_generation(self, max_new_tokens: int) -> None: ...


ProtocolT = TypeVar("ProtocolT")
RequestT = TypeVar("RequestT")
OptionsT = TypeVar("OptionsT", GenerationOptions, RollingOptions, SpanOptions)


def capability(adapter: LoadedModel, protocol: type[ProtocolT], needed_for: str) -> ProtocolT:
    """``adapter`` as the narrower protocol a request kind or formulation needs, or a refusal
    naming what is missing: a backend without it never fails halfway through a run."""
    if not isinstance(adapter, protocol):
        raise ModelError(f"{adapter.info.name}: {needed_for} needs {protocol.__name__}, which this {adapter.kind} adapter lacks")
    return adapter


def _of_kind(requests: list[Request], kind: type[RequestT]) -> list[RequestT]:
    """The requests of one kind: the engine hands a kind only the requests its formulation built
    for it, and moves them as the ``Request`` union without reading them (not checked per request)."""
    return cast("list[RequestT]", requests)


def _options(options: RequestOptions | None, kind: type[OptionsT]) -> OptionsT | None:
    """The kind's own options (``None``: the defaults)."""
    if options is not None and not isinstance(options, kind):
        raise TypeError(f"{kind.__name__} expected, got {type(options).__name__}")
    return options


# How the engine calls a kind: the adapter, the requests, the batch size and the options.
RequestFunction: TypeAlias = Callable[[LoadedModel, list[Request], int, RequestOptions | None], Sequence[Response]]


@dataclass(frozen=True)
class RequestCall:
    """How the engine asks one request kind: the call (which narrows the adapter to the kind's
    protocol and the options to the kind's type) and the method's name."""

    call: RequestFunction
    method: str  # for messages ("classify on inputs of up to N characters")


REQUEST_CALLS: dict[RequestKind, RequestCall] = {
    RequestKind.CLASSIFY: RequestCall(
        lambda adapter, requests, size, options: capability(adapter, Classifies, "classify").classify(
            _of_kind(requests, ClassifyRequest), batch_size=size
        ),
        "classify",
    ),
    RequestKind.EXTRACT_SPAN: RequestCall(
        lambda adapter, requests, size, options: capability(adapter, AnswersSpans, "answer").answer(
            _of_kind(requests, SpanRequest), batch_size=size, options=_options(options, SpanOptions)
        ),
        "answer",
    ),
    RequestKind.LOGLIKELIHOOD: RequestCall(
        lambda adapter, requests, size, options: capability(adapter, ScoresLoglikelihood, "loglikelihood").loglikelihood(
            _of_kind(requests, LoglikelihoodRequest), batch_size=size
        ),
        "loglikelihood",
    ),
    RequestKind.LOGLIKELIHOOD_ROLLING: RequestCall(
        lambda adapter, requests, size, options: capability(adapter, ScoresRolling, "loglikelihood_rolling").loglikelihood_rolling(
            _of_kind(requests, str), batch_size=size, options=_options(options, RollingOptions)
        ),
        "loglikelihood_rolling",
    ),
    RequestKind.GENERATE: RequestCall(
        lambda adapter, requests, size, options: capability(adapter, Generates, "generate").generate(
            _of_kind(requests, str), batch_size=size, options=_options(options, GenerationOptions)
        ),
        "generate",
    ),
    RequestKind.PSEUDO_LOGLIKELIHOOD: RequestCall(
        lambda adapter, requests, size, options: capability(adapter, ScoresPseudoLoglikelihood, "pseudo_loglikelihood").pseudo_loglikelihood(
            _of_kind(requests, PseudoLoglikelihoodRequest), batch_size=size
        ),
        "pseudo_loglikelihood",
    ),
}
