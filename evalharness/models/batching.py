"""Length-sorted batching: similar lengths share a batch so little compute goes to padding.

Every adapter cuts its model inputs into batches with :func:`sorted_batches`. The engine
(``evalharness.execution.engine``) can, for the duration of one call, set a token budget (a batch holds
at most ``max_tokens`` padded tokens, as well as at most ``batch_size`` rows), collect
padding statistics and turn packed layouts off (``packing=False``: every sequence in a
padded row of its own, the reference path that ``--check-determinism`` compares against),
through :func:`batching_scope`; outside such a scope batching is plain ``batch_size``
batching with packing on, so the adapters' public API behaves as it always did.

:func:`token_memo` lets the engine tokenize a task's texts once: what an adapter tokenized
to plan the chunks (``token_lengths``) it finds again when it answers them.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "BatchStats",
    "batching_scope",
    "count_shared",
    "encode_once",
    "filled",
    "packing_enabled",
    "sorted_batches",
    "token_memo",
]

T = TypeVar("T")


def filled(slots: Sequence[T | None]) -> list[T]:
    """Responses that batches wrote back by input index, once every slot holds one."""
    done = [slot for slot in slots if slot is not None]
    if len(done) != len(slots):
        raise AssertionError(f"{len(slots) - len(done)} of {len(slots)} responses were never computed")
    return done


@dataclass
class BatchStats:
    """Tokens the model saw: ``real`` are input tokens, ``padded`` include the padding;
    ``shared`` are tokens not computed at all because sequences shared a prefix."""

    batches: int = 0
    real: int = 0
    padded: int = 0
    shared: int = 0

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
        self.shared += other.shared


@dataclass(frozen=True)
class _Scope:
    max_tokens: int | None
    stats: BatchStats | None
    packing: bool = True


_SCOPE: ContextVar[_Scope] = ContextVar("evalharness_batching", default=_Scope(None, None))
_MEMO: ContextVar[dict[tuple[Hashable, str], array[int]] | None] = ContextVar("evalharness_token_memo", default=None)


@contextmanager
def batching_scope(*, max_tokens: int | None = None, stats: BatchStats | None = None, packing: bool = True) -> Iterator[None]:
    """Within the block, batches also respect ``max_tokens`` and are counted into ``stats``;
    ``packing=False`` makes adapters lay every sequence out in a padded row of its own."""
    if max_tokens is not None and max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    token = _SCOPE.set(_Scope(max_tokens, stats, packing))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def packing_enabled() -> bool:
    """Whether adapters may pack sequences (off inside ``batching_scope(packing=False)``)."""
    return _SCOPE.get().packing


def count_shared(tokens: int) -> None:
    """Record ``tokens`` not computed because sequences shared a prefix."""
    stats = _SCOPE.get().stats
    if stats is not None:
        stats.shared += tokens


@contextmanager
def token_memo() -> Iterator[None]:
    """Within the block, a text :func:`encode_once` tokenized is not tokenized again (token
    ids are kept as compact arrays, released when the block ends)."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def encode_once(encode: Callable[[list[str]], list[list[int]]], texts: Sequence[str], *, owner: Hashable) -> list[list[int]]:
    """``encode(texts)``, reusing what ``owner`` (an adapter) encoded earlier in the
    :func:`token_memo` block; outside one, plain ``encode``."""
    memo = _MEMO.get()
    if memo is None:
        return [list(ids) for ids in encode(list(texts))] if texts else []
    missing = [text for text in dict.fromkeys(texts) if (owner, text) not in memo]
    if missing:
        for text, ids in zip(missing, encode(missing)):
            memo[(owner, text)] = array("l", ids)
    return [list(memo[(owner, text)]) for text in texts]


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
