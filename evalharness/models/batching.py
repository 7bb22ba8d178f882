"""Length-sorted batching: similar lengths share a batch so little compute goes to padding."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["sorted_batches"]


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Index batches, longest first (an out-of-memory error shows up on the first batch).

    Ties keep their original order, so batching is deterministic.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
