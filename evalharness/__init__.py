"""evalharness: evaluate language-model checkpoints on declarative tasks.

The public surface is small; heavy dependencies (torch, transformers) load only when a
model is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_model", "load_record"]

if TYPE_CHECKING:
    from evalharness.models.loading import load_model
    from evalharness.records import load_record


def __getattr__(name: str) -> Any:
    if name == "load_model":
        from evalharness.models.loading import load_model

        return load_model
    if name == "load_record":
        from evalharness.records import load_record

        return load_record
    raise AttributeError(f"module 'evalharness' has no attribute '{name}'")
