"""Statistical inference for release decisions: paired intervals, non-inferiority and
equivalence, minimum detectable effects, cluster-robust intervals and anytime-valid
sequential rules.

Pure functions of per-example scores (or per-example sufficient statistics and a
:class:`~evalharness.stats.Scorer`); randomness is a seeded ``numpy.random.Generator``
argument; every result carries a ``method`` string for signatures. Nothing here reads run
records or knows models: the gate calls these functions with what the records hold.
"""

from __future__ import annotations

from evalharness.inference.clustered import cluster_bootstrap, cluster_robust_mean
from evalharness.inference.estimate import Estimate
from evalharness.inference.paired import paired_bootstrap_difference, paired_difference
from evalharness.inference.power import (
    DetectableEffect,
    cannot_see,
    detectable_difference,
    detectable_from,
)
from evalharness.inference.rules import (
    Decision,
    Margin,
    confidence_for,
    equivalence,
    noninferiority,
)
from evalharness.inference.sequential import (
    SequentialDecision,
    SequentialRule,
    SequentialRun,
    decide,
    run_sequential,
)

__all__ = [
    "Decision",
    "DetectableEffect",
    "Estimate",
    "Margin",
    "SequentialDecision",
    "SequentialRule",
    "SequentialRun",
    "cannot_see",
    "cluster_bootstrap",
    "cluster_robust_mean",
    "confidence_for",
    "decide",
    "detectable_difference",
    "detectable_from",
    "equivalence",
    "noninferiority",
    "paired_bootstrap_difference",
    "paired_difference",
    "run_sequential",
]
