"""The typed result every interval in :mod:`evalharness.inference` returns.

One shape for a paired t interval, a cluster-robust interval, a (cluster) bootstrap and a
betting confidence interval, so a rule decides on any of them the same way and a report
prints any of them the same way. ``method`` is the part of a signature that says how the
interval was made; ``notes`` say why a number is partial or missing (never a silent NaN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Estimate"]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a two-sided confidence interval.

    For paired comparisons ``estimate`` is candidate minus baseline *in the metric's better
    direction*: positive means the candidate is better, whatever the metric's direction.
    ``low``/``high`` are NaN when no interval can be stood behind; ``notes`` then says why.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    stderr: float
    n: int
    method: str
    df: float | None = None  # degrees of freedom of a t interval (G - 1 when clustered)
    clusters: int | None = None  # independent units behind the interval, when clustered
    notes: tuple[str, ...] = ()

    @property
    def defined(self) -> bool:
        """Whether the interval exists (finite bounds)."""
        return math.isfinite(self.low) and math.isfinite(self.high)

    @property
    def width(self) -> float:
        return self.high - self.low

    def describe(self, digits: int = 2) -> str:
        """E.g. ``-0.84 [90% CI -1.92, 0.24] (paired-t, n=200)``."""
        level = f"{100 * self.confidence:g}%"
        if not self.defined:
            reason = "; ".join(self.notes) or "undefined"
            return f"{self.estimate:.{digits}f} [{level} CI undefined: {reason}] ({self.method}, n={self.n})"
        return f"{self.estimate:.{digits}f} [{level} CI {self.low:.{digits}f}, {self.high:.{digits}f}] ({self.method}, n={self.n})"
