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
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

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
    RollingLoglikelihoodResponse,
    RollingOptions,
    SpanOptions,
    SpanRequest,
    SpanResponse,
)

__all__ = [
    "REQUEST_CALLS",
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


# -- what some formulations need beyond LoadedModel (``prompting.base.capability``) ---------


@runtime_checkable
class LabelHead(Protocol):
    """A classification head: its labels in output order; one output is a regression head."""

    @property
    def labels(self) -> Sequence[str]: ...

    @property
    def is_regression(self) -> bool: ...


@runtime_checkable
class TextWindows(Protocol):
    """How ``loglikelihood_rolling`` windows a text on this model (lengths resolved)."""

    def rolling_settings(self, window: str, max_length: int | None, stride: int | None) -> dict[str, Any]: ...


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

    def generation_settings(self, decoding: Decoding | None = ..., **settings: Any) -> dict[str, Any]: ...


@runtime_checkable
class ChecksGeneration(Protocol):
    """Refuses decoding settings the model cannot honour before any forward pass."""

    def check_generation(self, max_new_tokens: int) -> None: ...


RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")


@dataclass(frozen=True)
class RequestCall(Generic[RequestT, ResponseT]):
    """How the engine asks one request kind: the protocol the backend must implement, the
    options type the kind takes (``None``: no options) and the call itself."""

    protocol: type[Any]
    options: type[Any] | None
    call: Callable[[Any, list[RequestT], int, Any], list[ResponseT]]
    method: str  # for messages ("classify on inputs of up to N characters")


REQUEST_CALLS: dict[RequestKind, RequestCall[Any, Any]] = {
    RequestKind.CLASSIFY: RequestCall(
        Classifies, None, lambda adapter, requests, size, options: adapter.classify(requests, batch_size=size), "classify"
    ),
    RequestKind.EXTRACT_SPAN: RequestCall(
        AnswersSpans,
        SpanOptions,
        lambda adapter, requests, size, options: adapter.answer(requests, batch_size=size, options=options),
        "answer",
    ),
    RequestKind.LOGLIKELIHOOD: RequestCall(
        ScoresLoglikelihood,
        None,
        lambda adapter, requests, size, options: adapter.loglikelihood(requests, batch_size=size),
        "loglikelihood",
    ),
    RequestKind.LOGLIKELIHOOD_ROLLING: RequestCall(
        ScoresRolling,
        RollingOptions,
        lambda adapter, requests, size, options: adapter.loglikelihood_rolling(requests, batch_size=size, options=options),
        "loglikelihood_rolling",
    ),
    RequestKind.GENERATE: RequestCall(
        Generates,
        GenerationOptions,
        lambda adapter, requests, size, options: adapter.generate(requests, batch_size=size, options=options),
        "generate",
    ),
    RequestKind.PSEUDO_LOGLIKELIHOOD: RequestCall(
        ScoresPseudoLoglikelihood,
        None,
        lambda adapter, requests, size, options: adapter.pseudo_loglikelihood(requests, batch_size=size),
        "pseudo_loglikelihood",
    ),
}
