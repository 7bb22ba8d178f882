"""The one range of seeds every command accepts.

numpy's legacy ``RandomState``, ``random.seed`` consumers and most libraries take a 32-bit
unsigned seed, and ``numpy.random.default_rng`` refuses negative ones; a seed outside
``[0, 2**32 - 1]`` is refused when it is given, not after the forward passes when the first
interval is drawn.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from evalharness.errors import UsageError

__all__ = ["MAX_SEED", "Seed", "check_seed"]

MAX_SEED = 2**32 - 1

Seed = Annotated[int, Field(ge=0, le=MAX_SEED, description="an integer between 0 and 2**32 - 1")]


def check_seed(value: object, *, name: str = "--seed") -> int:
    """``value`` as a seed, or a ``UsageError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise UsageError(f"{name} {value!r} is not an integer between 0 and {MAX_SEED} (2**32 - 1)")
    return value
