"""Ranks that do not over-claim, by one of two rules.

**Clusters** (:func:`rank_clusters`, the default through ``leaderboard.paired``): the models,
sorted by value, are cut into clusters such that every model of a cluster is significantly
better than every model of every lower cluster; a model's rank is one plus the number of
models in the clusters above, shared (``=2``) within a cluster. This is how WMT publishes its
official rankings (Akhbardeh et al. 2021, "Findings of WMT21", section 3: "systems in a
cluster significantly outperform all others in lower ranking clusters"); "significantly
better" comes from a paired test on the shared examples, corrected across every pair.

**Marginal intervals** (:func:`rank_with_ties`, ``ranks="marginal"``): a model's rank is one
plus the number of models that are *clearly* better, i.e. whose whole 95% confidence
interval lies above its own (Chatbot Arena's "rank (UB)"). Overlapping marginal intervals
ignore that the systems share examples, so this rule ties many pairs a paired test separates.

Where a model or its rival has no interval (an undefined CI, or an aggregate without one,
such as the mean win rate) the point values decide, with exact equality a tie. Direction is
respected: lower-is-better values are reversed and ideal-valued metrics rank by their
distance from the ideal.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from evalharness.leaderboard.aggregates import goodness, goodness_interval

if TYPE_CHECKING:
    import pandas as pd

    from evalharness.stats import FloatArray

__all__ = ["format_rank", "marginal_separation", "rank_clusters", "rank_with_ties"]


def rank_with_ties(
    values: pd.Series[float],
    ci_low: pd.Series[float] | None = None,
    ci_high: pd.Series[float] | None = None,
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


def _goodness_table(values: pd.Series[float], ci_low: pd.Series[float] | None, ci_high: pd.Series[float] | None, direction: str, ideal: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    models = list(values.index)
    score = goodness(values.to_numpy(dtype=float), direction, ideal)
    if ci_low is None or ci_high is None:
        return score, np.full(len(models), math.nan), np.full(len(models), math.nan)
    low, high = goodness_interval(
        ci_low.reindex(models).to_numpy(dtype=float), ci_high.reindex(models).to_numpy(dtype=float), direction, ideal
    )
    return score, low, high


def marginal_separation(
    values: pd.Series[float], ci_low: pd.Series[float] | None = None, ci_high: pd.Series[float] | None = None, *, direction: str = "higher", ideal: float = math.nan
) -> Callable[[str, str], bool]:
    """``separated(a, b)``: is ``a`` clearly better than ``b`` by the marginal rule (its whole
    interval above ``b``'s; the point values when either has no interval)?"""
    score, low, high = _goodness_table(values, ci_low, ci_high, direction, ideal)
    position = {model: i for i, model in enumerate(values.index)}

    def separated(a: str, b: str) -> bool:
        i, j = position[a], position[b]
        if np.isfinite(low[i]) and np.isfinite(high[j]) and np.isfinite(high[i]) and np.isfinite(low[j]):
            return bool(low[i] > high[j])
        return bool(score[i] > score[j])

    return separated


def rank_clusters(
    values: pd.Series[float], separated: Callable[[str, str], bool], *, direction: str = "higher", ideal: float = math.nan
) -> pd.DataFrame:
    """WMT-style clusters: sorted best first, a cut falls between two neighbours only when
    every model above it is ``separated`` from (significantly better than) every model below.
    Per model: ``rank``, ``tied``, ``order`` (as :func:`rank_with_ties`) and ``cluster``
    (1 = the top cluster; missing values are unranked, cluster 0)."""
    import pandas as pd

    models = list(values.index)
    score = goodness(values.to_numpy(dtype=float), direction, ideal)
    ranked = [i for i in sorted(range(len(models)), key=lambda i: (-score[i], str(models[i]))) if np.isfinite(score[i])]
    names = [models[i] for i in ranked]
    clusters: list[list[str]] = []
    for position, model in enumerate(names):
        above, below = names[: position], names[position:]
        if clusters and not all(separated(a, b) for a in above for b in below):
            clusters[-1].append(model)
        else:
            clusters.append([model])
    rank: dict[str, int | None] = {}
    cluster: dict[str, int] = {}
    tied: dict[str, bool] = {}
    count = 0
    for number, members in enumerate(clusters, start=1):
        for model in members:
            rank[model], cluster[model], tied[model] = count + 1, number, len(members) > 1
        count += len(members)
    order_names = names + sorted((m for m in models if m not in rank), key=str)
    return pd.DataFrame(
        {
            "rank": pd.Series([rank.get(m) for m in models], index=models, dtype="Int64"),
            "tied": pd.Series([tied.get(m, False) for m in models], index=models, dtype=bool),
            "order": pd.Series([order_names.index(m) for m in models], index=models, dtype=int),
            "cluster": pd.Series([cluster.get(m, 0) for m in models], index=models, dtype=int),
        }
    )


def format_rank(rank: object, tied: bool) -> str:  # a pandas cell: an int, NaN/NA, or None
    """``1``, ``=2`` for a shared rank, ``–`` for an unranked model."""
    import pandas as pd

    if rank is None or rank is pd.NA or (isinstance(rank, (float, np.floating)) and math.isnan(rank)):
        return "–"
    return f"={rank}" if tied else str(rank)
