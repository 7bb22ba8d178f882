"""Length-sorted batching: similar lengths share a batch so little compute goes to padding.

Every adapter cuts its model inputs into batches with :func:`sorted_batches`. The engine
(``evalharness.execution.engine``) can, for the duration of one call, set a token budget (a batch holds
at most ``max_tokens`` padded tokens, as well as at most ``batch_size`` rows) and collect
padding statistics, through :func:`batching_scope`; outside such a scope batching is plain
``batch_size`` batching, so the adapters' public API behaves as it always did.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["BatchStats", "batching_scope", "filled", "sorted_batches"]

T = TypeVar("T")


def filled(slots: Sequence[T | None]) -> list[T]:
    """Responses that batches wrote back by input index, once every slot holds one."""
    done = [slot for slot in slots if slot is not None]
    if len(done) != len(slots):
        raise AssertionError(f"{len(slots) - len(done)} of {len(slots)} responses were never computed")
    return done


@dataclass
class BatchStats:
    """Tokens the model saw: ``real`` are input tokens, ``padded`` include the padding."""

    batches: int = 0
    real: int = 0
    padded: int = 0

    @property
    def efficiency(self) -> float | None:
        """Real tokens / padded tokens (1.0: no padding at all); None before any batch."""
        return self.real / self.padded if self.padded else None

    def add(self, lengths: Sequence[int]) -> None:
        self.batches += 1
        self.real += sum(lengths)
        self.padded += len(lengths) * max(lengths, default=0)

    def merge(self, other: BatchStats) -> None:
        self.batches += other.batches
        self.real += other.real
        self.padded += other.padded


@dataclass(frozen=True)
class _Scope:
    max_tokens: int | None
    stats: BatchStats | None


_SCOPE: ContextVar[_Scope] = ContextVar("evalharness_batching", default=_Scope(None, None))


@contextmanager
def batching_scope(*, max_tokens: int | None = None, stats: BatchStats | None = None) -> Iterator[None]:
    """Within the block, batches also respect ``max_tokens`` and are counted into ``stats``."""
    if max_tokens is not None and max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    token = _SCOPE.set(_Scope(max_tokens, stats))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def _cut(order: list[int], lengths: Sequence[int], batch_size: int, max_tokens: int | None) -> list[list[int]]:
    if max_tokens is None:
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:  # longest first: the batch's first row sets its padded width
        width = lengths[current[0]] if current else lengths[index]
        if current and (len(current) >= batch_size or (len(current) + 1) * width > max_tokens):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Index batches, longest first (an out-of-memory error shows up on the first batch).

    Ties keep their original order, so batching is deterministic. Inside a
    :func:`batching_scope` with a token budget a batch is also cut when its padded size
    (rows × longest row) would exceed the budget; a single row longer than the budget still
    forms a batch of its own.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    scope = _SCOPE.get()
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches = _cut(order, lengths, batch_size, scope.max_tokens)
    if scope.stats is not None:
        for batch in batches:
            scope.stats.add([lengths[i] for i in batch])
    return batches
