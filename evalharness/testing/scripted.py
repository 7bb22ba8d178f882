"""A scripted adapter: answers every request kind from a plain function (inspect_ai's mock
model, for evalharness's request protocols).

Runner, engine and formulation logic can then be tested in milliseconds, with answers chosen
by the test, and tiny real checkpoints are kept for what needs numerics. The adapter
implements the same protocols as every backend (``models.protocols``), records the calls it
received, and is refused nowhere: it is a backend like the others, whose fingerprint is its
name and script version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from evalharness.jsonvalues import JSONObject
from evalharness.models.base import ModelInfo, options_with
from evalharness.models.protocols import RollingWindows
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
    RollingLoglikelihoodResponse,
    RollingOptions,
    SpanOptions,
    SpanRequest,
    SpanResponse,
)

__all__ = ["Call", "ScriptedAdapter", "whitespace_tokens"]


def whitespace_tokens(text: str) -> int:
    """The scripted adapter's "tokenizer": whitespace-separated words."""
    return len(text.split())


def _first_tokens(text: str, budget: int) -> str:
    """The text up to the end of its ``budget``-th whitespace token (whitespace kept as is)."""
    import re

    ends = [match.end() for match in re.finditer(r"\S+", text)]
    return text if len(ends) <= budget else text[: ends[budget - 1]]


@dataclass(frozen=True)
class Call:
    """One batched call the adapter received (what the engine asked, in which batches)."""

    kind: RequestKind
    requests: tuple[Request, ...]
    batch_size: int
    options: RequestOptions | None = None


@dataclass
class ScriptedAdapter:
    """Answers from one function per request kind; kinds without a function are not answered.

    ``classify(request) -> scores``, ``loglikelihood(request) -> logprob``,
    ``loglikelihood_rolling(text, options) -> logprob``, ``generate(prompt, options) -> text``,
    ``answer(request, options) -> text``, ``pseudo_loglikelihood(request) -> logprob``.
    Token counts are whitespace words; ``version`` changes the fingerprint (and so the cache
    key) when a test changes the script's answers.
    """

    kind: str = "causal_lm"
    name: str = "scripted"
    version: str = "1"
    labels: tuple[str, ...] = ("negative", "positive")
    max_length: int = 2048
    model_type: str = "scripted"
    classify_fn: Callable[[ClassifyRequest], Sequence[float]] | None = None
    loglikelihood_fn: Callable[[LoglikelihoodRequest], float] | None = None
    rolling_fn: Callable[[str, RollingOptions], float] | None = None
    generate_fn: Callable[[str, GenerationOptions], str] | None = None
    answer_fn: Callable[[SpanRequest, SpanOptions], str] | None = None
    pseudo_fn: Callable[[PseudoLoglikelihoodRequest], float] | None = None
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        functions = {
            RequestKind.CLASSIFY: self.classify_fn,
            RequestKind.LOGLIKELIHOOD: self.loglikelihood_fn,
            RequestKind.LOGLIKELIHOOD_ROLLING: self.rolling_fn,
            RequestKind.GENERATE: self.generate_fn,
            RequestKind.EXTRACT_SPAN: self.answer_fn,
            RequestKind.PSEUDO_LOGLIKELIHOOD: self.pseudo_fn,
        }
        self.answers = frozenset(kind for kind, function in functions.items() if function is not None)
        digest = hashlib.sha256(f"{self.name}\0{self.version}".encode()).hexdigest()[:16]
        self.info = ModelInfo(
            name=self.name,
            path=f"scripted:{self.name}",
            kind=self.kind,
            fingerprint=f"scripted:{digest}",
            architecture="ScriptedAdapter",
            device="cpu",
            dtype="float32",
            num_parameters=0,
        )

    # -- what formulations and the engine ask of any adapter ------------------------------
    @property
    def is_regression(self) -> bool:
        return len(self.labels) == 1

    def token_lengths(self, requests: Sequence[Request]) -> list[int]:
        return [sum(whitespace_tokens(part) for part in (r if isinstance(r, tuple) else (r,)) if isinstance(part, str)) for r in requests]

    def check_generation(self, max_new_tokens: int) -> None:
        """Nothing to check: the script writes whatever it writes."""

    def rolling_settings(self, window: str, max_length: int | None, stride: int | None) -> RollingWindows:
        length = max_length or self.max_length
        return {"window": window, "max_length": length, "stride": stride or (length // 2 if window == "sliding" else length), "prefix_token_id": 0}

    def windowing(self, max_length: int | None = None, doc_stride: int | None = None) -> tuple[int, int]:
        length = max_length or min(self.max_length, 384)
        return length, doc_stride if doc_stride is not None else min(length // 2, 128)

    def generation_settings(self, decoding: Decoding | None = None, **settings: object) -> JSONObject:
        return dict(sorted(options_with(Decoding, decoding, settings).model_dump().items()))

    def _record(self, kind: RequestKind, requests: Sequence[Request], batch_size: int, options: RequestOptions | None = None) -> None:
        self.calls.append(Call(kind, tuple(requests), batch_size, options))

    # -- the request protocols ----------------------------------------------------------------
    def classify(self, requests: Sequence[ClassifyRequest], *, batch_size: int = 32) -> list[ClassifyResponse]:
        assert self.classify_fn is not None, "no classify function scripted"
        self._record(RequestKind.CLASSIFY, requests, batch_size)
        items = [ClassifyRequest(r) if isinstance(r, str) else ClassifyRequest(*r) for r in requests]
        return [ClassifyResponse(tuple(float(s) for s in self.classify_fn(r))) for r in items]

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], *, batch_size: int = 32) -> list[LoglikelihoodResponse]:
        assert self.loglikelihood_fn is not None, "no loglikelihood function scripted"
        self._record(RequestKind.LOGLIKELIHOOD, requests, batch_size)
        items = [LoglikelihoodRequest(*r) for r in requests]
        return [LoglikelihoodResponse(float(self.loglikelihood_fn(r)), False, max(1, whitespace_tokens(r.continuation))) for r in items]

    def loglikelihood_rolling(
        self, requests: Sequence[str], *, batch_size: int = 32, options: RollingOptions | None = None, **settings: object
    ) -> list[RollingLoglikelihoodResponse]:
        assert self.rolling_fn is not None, "no rolling function scripted"
        chosen = options_with(RollingOptions, options, settings)
        self._record(RequestKind.LOGLIKELIHOOD_ROLLING, requests, batch_size, chosen)
        return [RollingLoglikelihoodResponse(float(self.rolling_fn(text, chosen)), whitespace_tokens(text)) for text in requests]

    def generate(
        self, requests: Sequence[str], *, batch_size: int = 32, options: GenerationOptions | None = None, **settings: object
    ) -> list[GenerateResponse]:
        assert self.generate_fn is not None, "no generate function scripted"
        chosen = options_with(GenerationOptions, options, settings)
        self._record(RequestKind.GENERATE, requests, batch_size, chosen)
        responses = []
        for prompt in requests:
            text = _first_tokens(self.generate_fn(prompt, chosen), chosen.max_new_tokens)
            cuts = [text.find(stop) for stop in chosen.stop if stop in text]
            text = text[: min(cuts)] if cuts else text
            responses.append(GenerateResponse(text, whitespace_tokens(text)))
        return responses

    def answer(
        self, requests: Sequence[SpanRequest], *, batch_size: int = 32, options: SpanOptions | None = None, **settings: object
    ) -> list[SpanResponse]:
        assert self.answer_fn is not None, "no answer function scripted"
        chosen = options_with(SpanOptions, options, settings)
        self._record(RequestKind.EXTRACT_SPAN, requests, batch_size, chosen)
        responses = []
        for request in (SpanRequest(*r) for r in requests):
            text = self.answer_fn(request, chosen)
            start = request.context.find(text) if text else -1
            responses.append(SpanResponse(text, start if start >= 0 else None, 1.0, 0.0 if text else 1.0))
        return responses

    def pseudo_loglikelihood(
        self, requests: Sequence[PseudoLoglikelihoodRequest], *, batch_size: int = 32
    ) -> list[PseudoLoglikelihoodResponse]:
        assert self.pseudo_fn is not None, "no pseudo_loglikelihood function scripted"
        self._record(RequestKind.PSEUDO_LOGLIKELIHOOD, requests, batch_size)
        items = [PseudoLoglikelihoodRequest(r) if isinstance(r, str) else PseudoLoglikelihoodRequest(*r) for r in requests]
        return [PseudoLoglikelihoodResponse(float(self.pseudo_fn(r)), whitespace_tokens(r.text)) for r in items]
