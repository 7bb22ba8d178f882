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

from evalharness.types import (
    ClassifyRequest,
    ClassifyResponse,
    GenerateResponse,
    GenerationOptions,
    LoglikelihoodRequest,
    LoglikelihoodResponse,
    PseudoLoglikelihoodRequest,
    PseudoLoglikelihoodResponse,
    RequestKind,
    RollingLoglikelihoodResponse,
    RollingOptions,
    SpanOptions,
    SpanRequest,
    SpanResponse,
)

__all__ = [
    "REQUEST_CALLS",
    "AnswersSpans",
    "Classifies",
    "Generates",
    "RequestCall",
    "ScoresLoglikelihood",
    "ScoresPseudoLoglikelihood",
    "ScoresRolling",
]


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
