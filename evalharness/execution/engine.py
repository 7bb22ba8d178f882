"""The engine: requests in, responses out, with the cache, batching and OOM back-off between.

For one task's flat list of requests the engine

1. computes each request's content address (``cache.request_key``) and merges duplicates
   (multiple-choice requests repeated across examples are answered once);
2. plans *chunks* over the unique requests, longest first in tokens (the adapter's
   ``token_lengths``), one batch per rank each: ``batch_size`` requests, or for the kinds
   whose sequences adapters pack (log-likelihoods, classification) the requests that fill
   ``batch_size`` rows as wide as the chunk's longest request, a context shared by several
   requests counted once — the plan depends only on the requests and the run's arguments,
   so a resumed run recomputes a missing chunk exactly as the uninterrupted run did;
3. looks every key up in the cache and sends only the chunks' misses to the adapter
   (:meth:`Engine.compute`), persisting each chunk as soon as it is answered;
4. restores the original order.

:meth:`Engine.compute` is the one place that calls the model: it takes a list of requests
and returns their responses (the unit to shard across processes). On an out-of-memory error
it halves the batch size and retries the chunk; the smaller size is kept for the rest of the
task and recorded.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass

from evalharness.errors import ModelError
from evalharness.execution import distributed
from evalharness.execution.cache import PredictionCache, model_key, request_key
from evalharness.jsonvalues import JSONObject
from evalharness.models.batching import (
    BatchStats,
    batching_scope,
    packing_enabled,
    token_memo,
)
from evalharness.models.packing import ROW_FACTOR, row_width
from evalharness.models.protocols import REQUEST_CALLS, LoadedModel
from evalharness.types import LoglikelihoodRequest, Request, RequestKind, RequestOptions, Response

__all__ = ["Engine", "EngineStats", "is_out_of_memory"]

AUTO_BATCH_SIZE = {"cuda": 256, "cpu": 32}  # starting sizes for --batch-size auto
DETERMINISM_SAMPLE = 32
# Kinds whose sequences in-process adapters pack into rows: a chunk is cut by tokens, so that
# its requests fill a batch of rows however many of them share a row.
PACKED_KINDS = frozenset({RequestKind.LOGLIKELIHOOD, RequestKind.LOGLIKELIHOOD_ROLLING, RequestKind.CLASSIFY})

ChunkCallback = Callable[[int], None]  # number of requests just answered (progress)


def is_out_of_memory(exc: BaseException) -> bool:
    """``torch.cuda.OutOfMemoryError`` or a RuntimeError saying 'out of memory' (MPS, XPU...)."""
    return type(exc).__name__ == "OutOfMemoryError" or (isinstance(exc, RuntimeError) and "out of memory" in str(exc))


def _free_accelerator_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def _chunk_order(request: Request, length: int) -> tuple[int, str, int]:
    """Longest first; requests that share a context (the options of a multiple-choice
    question) stay adjacent, so they land in one chunk and can share its forward passes."""
    if isinstance(request, LoglikelihoodRequest):
        return (-len(request.context), request.context, -length)
    return (-length, "", 0)


def _token_chunks(order: list[int], requests: Sequence[Request], lengths: Sequence[int], rows: int, row_limit: int | None) -> list[list[int]]:
    """Requests in ``order`` cut into chunks of about ``rows`` packed rows (``row_width`` of
    each chunk's longest request, at most ``row_limit``: longer texts are windowed). A
    request with the context of the one before it costs only what it adds, and is never cut
    from it."""
    chunks: list[list[int]] = []
    current: list[int] = []
    spent = width = 0
    context: str | None = None
    context_length = 0
    for index in order:
        request, length = requests[index], lengths[index]
        same = isinstance(request, LoglikelihoodRequest) and request.context == context
        cost = max(1, length - context_length) if same else length
        longest = min(length, row_limit) if row_limit else length
        wide = row_width(longest, row_limit or ROW_FACTOR * longest)
        if current and not same and spent + cost > rows * max(width, wide):
            chunks.append(current)
            current, spent, width = [], 0, 0
        current.append(index)
        spent, width = spent + cost, max(width, wide)
        if not same:
            context = request.context if isinstance(request, LoglikelihoodRequest) else None
            context_length = length - 1
    if current:
        chunks.append(current)
    return chunks


@dataclass
class EngineStats:
    """What the engine did for one task (written to the record's ``execution`` entry)."""

    requests: int = 0
    unique: int = 0
    hits: int = 0
    misses: int = 0
    batch_size_start: int = 0
    batch_size_final: int = 0
    oom_backoffs: int = 0
    seconds: float = 0.0
    tokens: BatchStats = field(default_factory=BatchStats)
    determinism: JSONObject | None = None

    def to_record(self) -> JSONObject:
        efficiency = self.tokens.efficiency
        entry: JSONObject = {
            "requests": self.requests,
            "unique_requests": self.unique,
            "cache": {"hits": self.hits, "misses": self.misses},
            "batch_size": {"start": self.batch_size_start, "final": self.batch_size_final, "oom_backoffs": self.oom_backoffs},
            "batches": self.tokens.batches,
            "tokens": self.tokens.real,
            "padded_tokens": self.tokens.padded,
            "padding_efficiency": round(efficiency, 4) if efficiency is not None else None,
            "shared_prefix_tokens": self.tokens.shared,
            "seconds": round(self.seconds, 3),
        }
        if self.determinism is not None:
            entry["determinism"] = self.determinism
        return entry


class Engine:
    """Answers requests for one loaded adapter, through the prediction cache."""

    def __init__(
        self,
        adapter: LoadedModel,
        *,
        batch_size: int | str = 32,
        max_batch_tokens: int | None = None,
        cache: PredictionCache | None = None,
        fresh: bool = False,
        packing: bool = True,
        context: distributed.DistributedContext = distributed.SINGLE_PROCESS,
    ) -> None:
        """``packing=False``: every batch in the adapters' reference layout (a padded row per
        sequence; ``--no-packing``)."""
        self.adapter = adapter
        self.context = context  # data parallel: requests are sharded over its ranks
        device = str(adapter.info.device)
        auto = AUTO_BATCH_SIZE["cuda" if device.startswith("cuda") else "cpu"]
        self.start_batch_size = auto if batch_size == "auto" else int(batch_size)
        if self.start_batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.max_batch_tokens = max_batch_tokens
        self.cache = cache
        self.fresh = fresh
        self.packing = packing
        self.model_key = model_key(adapter.info)

    # -- the model ---------------------------------------------------------------------
    def compute(
        self,
        kind: RequestKind,
        requests: Sequence[Request],
        options: RequestOptions | None,
        *,
        stats: EngineStats,
        batch_size: int | None = None,
        packing: bool = True,
    ) -> list[Response]:
        """Responses to ``requests`` from the model (no cache), backing off on OOM;
        ``packing=False`` (or the engine's, or an enclosing ``batching_scope(packing=False)``):
        the adapters' reference layout (a padded row per sequence)."""
        if not requests:
            return []
        call = REQUEST_CALLS[kind]
        size = batch_size or stats.batch_size_final or self.start_batch_size
        while True:
            attempt = BatchStats()
            try:
                with batching_scope(max_tokens=self.max_batch_tokens, stats=attempt, packing=packing and self.packing and packing_enabled()):
                    responses = call.call(self.adapter, list(requests), size, options)
                break
            except Exception as exc:  # noqa: BLE001 - only out-of-memory errors are retried
                if not is_out_of_memory(exc):
                    raise
                _free_accelerator_memory()
                if size == 1:
                    raise ModelError(
                        f"{self.adapter.info.name}: out of memory even at batch size 1 "
                        f"({call.method} on inputs of up to {max(map(distributed.request_cost, requests))} characters); "
                        "lower --max-batch-tokens, use a smaller --dtype or a larger device"
                    ) from None
                size = max(1, size // 2)
                stats.oom_backoffs += 1
        if len(responses) != len(requests):
            raise AssertionError(f"{call.method} returned {len(responses)} for {len(requests)} requests")
        if batch_size is None:
            stats.batch_size_final = size
            stats.tokens.merge(attempt)
        return list(responses)

    # -- cache, chunks and order ------------------------------------------------------------
    def plan_chunks(self, requests: Sequence[Request], kind: RequestKind | None = None) -> list[list[int]]:
        """Chunks of request indices, longest (in tokens) first; deterministic for given requests."""
        lengths = self.adapter.token_lengths(requests)
        order = sorted(range(len(requests)), key=lambda i: (*_chunk_order(requests[i], lengths[i]), i))
        size = self.start_batch_size * self.context.world_size  # a batch per rank
        if kind in PACKED_KINDS:
            return _token_chunks(order, requests, lengths, size, self.adapter.max_length)
        return [order[start : start + size] for start in range(0, len(order), size)]

    def run(
        self,
        kind: RequestKind,
        requests: Sequence[Request],
        options: RequestOptions | None,
        *,
        on_progress: ChunkCallback | None = None,
    ) -> tuple[list[Response], EngineStats]:
        """Responses to ``requests`` in their order, from the cache where possible."""
        started = time.perf_counter()
        stats = EngineStats(requests=len(requests), batch_size_start=self.start_batch_size, batch_size_final=self.start_batch_size)
        keys = [request_key(self.model_key, kind.value, request, options) for request in requests]
        first: dict[str, int] = {}
        for index, key in enumerate(keys):
            first.setdefault(key, index)
        unique_keys = list(first)
        stats.unique = len(unique_keys)
        # Data parallel: only rank 0 holds the cache; every rank must agree on the misses.
        known = distributed.broadcast_from_primary(
            {} if self.fresh or self.cache is None else self.cache.get_many(unique_keys), context=self.context
        )
        stats.hits = len(known)
        stats.misses = stats.unique - stats.hits
        answers: dict[str, Response] = dict(known)
        unique_requests = [requests[first[key]] for key in unique_keys]
        if on_progress and known:
            on_progress(sum(1 for key in keys if key in known))
        counts = Counter(keys)
        # Plan over every unique request, not just the misses: a resumed run must form the
        # same chunks (hence the same batches and bits) as an uninterrupted one.
        with token_memo():
            for chunk in self.plan_chunks(unique_requests, kind) if stats.misses else []:
                missing = [i for i in chunk if unique_keys[i] not in answers]
                if not missing:
                    continue
                todo = [unique_requests[i] for i in missing]
                responses = distributed.compute_sharded(
                    todo, distributed.request_costs(todo, options), lambda shard: self.compute(kind, shard, options, stats=stats),
                    context=self.context,
                )
                fresh = [(unique_keys[i], kind.value, response) for i, response in zip(missing, responses)]
                if self.cache is not None:
                    self.cache.put_many(fresh)
                answers.update((key, response) for key, _, response in fresh)
                if on_progress:
                    on_progress(sum(counts[key] for key, _, _ in fresh))
        stats.seconds = time.perf_counter() - started
        return [answers[key] for key in keys], stats

    # -- --check-determinism ---------------------------------------------------------------
    def check_determinism(
        self, kind: RequestKind, requests: Sequence[Request], responses: Sequence[Response], options: RequestOptions | None, stats: EngineStats
    ) -> JSONObject:
        """Recompute a sample (no cache) at another batch size through the adapters'
        reference layout (every sequence in a padded row of its own, no shared prefixes) and
        compare numbers: the packed layouts that answered the run are checked against it."""
        step = max(1, len(requests) // DETERMINISM_SAMPLE)
        sample = list(range(len(requests)))[::step][:DETERMINISM_SAMPLE]
        used = stats.batch_size_final or self.start_batch_size
        other = used // 2 if used > 1 else 2
        again = self.compute(kind, [requests[i] for i in sample], options, stats=EngineStats(), batch_size=other, packing=False)
        largest, mismatched = 0.0, 0
        for index, response in zip(sample, again):
            difference, same = compare_responses(responses[index], response)
            largest = max(largest, difference)
            mismatched += not same
        result: JSONObject = {
            "sample": len(sample),
            "batch_size": other,
            "layout": "reference (padded rows, no shared prefixes)",
            "max_abs_diff": largest if math.isfinite(largest) else None,  # None: a number became non-finite
            "non_numeric_mismatches": mismatched,
        }
        stats.determinism = result
        return result


def _numbers_and_rest(value: object) -> tuple[list[float], list[object]]:
    numbers: list[float] = []
    rest: list[object] = []

    def walk(item: object) -> None:
        if is_dataclass(item) and not isinstance(item, type):  # an instance, not a dataclass itself
            item = asdict(item)
        if isinstance(item, dict):
            for key in sorted(item):
                walk(item[key])
        elif isinstance(item, (list, tuple)):
            for part in item:
                walk(part)
        elif isinstance(item, float):
            numbers.append(item)
        else:
            rest.append(item)

    walk(value)
    return numbers, rest


def compare_responses(a: object, b: object) -> tuple[float, bool]:
    """(largest absolute difference of the float fields, whether everything else is equal)."""
    numbers_a, rest_a = _numbers_and_rest(a)
    numbers_b, rest_b = _numbers_and_rest(b)
    if len(numbers_a) != len(numbers_b):
        return math.inf, False
    largest = 0.0
    for x, y in zip(numbers_a, numbers_b):
        if math.isnan(x) and math.isnan(y):
            continue
        largest = max(largest, abs(x - y)) if math.isfinite(x) and math.isfinite(y) else (0.0 if x == y else math.inf)
    return largest, rest_a == rest_b
