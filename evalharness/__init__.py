"""evalharness: evaluate language-model checkpoints on declarative tasks.

The public surface is small; heavy dependencies (torch, transformers) load only when a
model is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalharness.version import __version__

__all__ = ["__version__", "compare_runs", "evaluate_gate", "load_model", "load_record"]

if TYPE_CHECKING:
    from evalharness.comparison.compare import compare_runs
    from evalharness.comparison.gate import evaluate_gate
    from evalharness.models.loading import load_model
    from evalharness.records.record import load_record


# Public name -> the module that defines it, imported on first use.
_LAZY = {
    "compare_runs": "evalharness.comparison.compare",
    "evaluate_gate": "evalharness.comparison.gate",
    "load_model": "evalharness.models.loading",
    "load_record": "evalharness.records.record",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'evalharness' has no attribute '{name}'")
