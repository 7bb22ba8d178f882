"""Ranks that do not over-claim: a model's rank is one plus the number of models that are
*clearly* better, i.e. whose whole 95% confidence interval lies above its own.

Models whose intervals overlap therefore share a rank and are shown as ties (``=2``); this
is the convention of Chatbot Arena's "rank (UB)" and of WMT's significance clusters. Where
a model or its rival has no interval (an undefined CI, or an aggregate without one, such
as the mean win rate) the point values decide, with exact equality a tie. Direction is
respected: lower-is-better values are reversed and ideal-valued metrics rank by their
distance from the ideal.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from evalharness.leaderboard.aggregates import goodness, goodness_interval

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["format_rank", "rank_with_ties"]


def rank_with_ties(
    values: pd.Series,
    ci_low: pd.Series | None = None,
    ci_high: pd.Series | None = None,
    *,
    direction: str = "higher",
    ideal: float = math.nan,
) -> pd.DataFrame:
    """Per model: ``rank`` (nullable int; missing values are unranked), ``tied`` and ``order``
    (0-based position in the sorted leaderboard)."""
    import pandas as pd

    models = list(values.index)
    score = goodness(values.to_numpy(dtype=float), direction, ideal)
    if ci_low is None or ci_high is None:
        low = high = np.full(len(models), math.nan)
    else:
        low, high = goodness_interval(
            ci_low.reindex(models).to_numpy(dtype=float), ci_high.reindex(models).to_numpy(dtype=float), direction, ideal
        )
    ranked = np.isfinite(score)
    has_ci = np.isfinite(low) & np.isfinite(high)
    ranks: list[int | None] = []
    for i in range(len(models)):
        if not ranked[i]:
            ranks.append(None)
            continue
        better = 0
        for j in range(len(models)):
            if j == i or not ranked[j]:
                continue
            if has_ci[i] and has_ci[j]:
                better += bool(low[j] > high[i])
            else:
                better += bool(score[j] > score[i])
        ranks.append(1 + better)
    rank = pd.Series(ranks, index=models, dtype="Int64")
    counts = rank.value_counts()
    tied = rank.map(lambda r: bool(pd.notna(r) and counts.get(r, 0) > 1)).astype(bool)
    # Sorted by rank, then the point value (best first), then name; unranked last.
    keys = sorted(
        range(len(models)),
        key=lambda i: (ranks[i] is None, ranks[i] or 0, -score[i] if ranked[i] else 0.0, str(models[i])),
    )
    order = pd.Series(0, index=models, dtype=int)
    for position, i in enumerate(keys):
        order.iloc[i] = position
    return pd.DataFrame({"rank": rank, "tied": tied, "order": order})


def format_rank(rank: object, tied: bool) -> str:
    """``1``, ``=2`` for a shared rank, ``–`` for an unranked model."""
    import pandas as pd

    if rank is None or pd.isna(rank):
        return "–"
    return f"={rank}" if tied else str(rank)
