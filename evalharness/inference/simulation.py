"""Simulation studies of the sequential rules: error rates, power, and examples saved.

Every run draws a synthetic comparison, decides it sequentially (in batches, exactly as
:func:`evalharness.inference.sequential.run_sequential` does) and with the full-data test,
vectorised over runs so that thousands of comparisons take seconds. The studies report
what the docs and tests quote: the pass rate with its Monte-Carlo standard error (under the
null it is the type I error), the full-data test's pass rate, how often the two decisions
agree, and the mean number of examples the sequential rule used.

Data model (``noninferiority``): paired 0/1 outcomes, so each per-example difference is -1,
0 or +1; ``discordance`` is the fraction of examples where the systems disagree and
``true_difference`` the mean difference (candidate minus baseline, in accuracy units).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evalharness.errors import UsageError
from evalharness.inference.sequential import (
    SequentialRule,
    checkpoints,
    final_test_passes,
    settlement,
)
from evalharness.stats import BoolArray, FloatArray, IntArray

__all__ = ["SimulationResult", "simulate_noninferiority", "simulate_test_set_minimum"]

_CHUNK = 250  # runs per vectorised block: bounds memory at ~ chunk x n x 8 bytes x a few arrays


@dataclass(frozen=True)
class SimulationResult:
    scenario: str
    runs: int
    examples_total: int
    alpha: float
    pass_rate: float
    pass_rate_se: float  # Monte-Carlo standard error of pass_rate
    full_data_pass_rate: float
    agreement: float  # fraction of runs where the sequential and full-data decisions agree
    mean_examples_used: float
    method: str

    @property
    def saving(self) -> float:
        """How many times fewer examples than the full run, on average."""
        return self.examples_total / self.mean_examples_used


def _paired_outcomes(rng: np.random.Generator, shape: tuple[int, int], true_difference: float, discordance: float) -> FloatArray:
    gain, loss = (discordance + true_difference) / 2, (discordance - true_difference) / 2
    if gain < 0 or loss < 0 or discordance > 1:
        raise UsageError(
            f"a mean difference of {true_difference:g} needs a discordance of at least {abs(true_difference):g} (and at most 1), "
            f"got {discordance:g}"
        )
    draws = rng.random(shape)
    return (draws < gain).astype(float) - ((draws >= gain) & (draws < gain + loss)).astype(float)


def _summary(scenario: str, rule: SequentialRule, n: int, passed: BoolArray, full: BoolArray, used: IntArray) -> SimulationResult:
    runs = passed.size
    rate = float(passed.mean())
    return SimulationResult(
        scenario,
        runs,
        n,
        rule.alpha,
        rate,
        math.sqrt(max(rate * (1 - rate), 1e-12) / runs),
        float(full.mean()),
        float((passed == full).mean()),
        float(used.mean()),
        rule.method(),
    )


def _check_runs(runs: int, n: int) -> None:
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1 or isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise UsageError(f"a simulation needs runs >= 1 and n >= 2, got runs={runs!r}, n={n!r}")


def simulate_noninferiority(
    *,
    true_difference: float,
    margin: float,
    n: int,
    runs: int,
    batch_size: int,
    alpha: float,
    rng: np.random.Generator,
    discordance: float = 0.3,
    final_share: float = 0.5,
) -> SimulationResult:
    """The sequential non-inferiority rule (population target) against the full-data paired
    t decision at alpha. With ``true_difference = -margin`` (the boundary of the null) the
    pass rate is the type I error."""
    _check_runs(runs, n)
    rule = SequentialRule.noninferiority(margin=margin, bounds=(0.0, 1.0), alpha=alpha, label="simulated", final_share=final_share)
    at = checkpoints(n, batch_size)
    passed, full, used = [], [], []
    for start in range(0, runs, _CHUNK):
        differences = _paired_outcomes(rng, (min(_CHUNK, runs - start), n), true_difference, discordance)
        first, outcome = settlement(rule.scaled(differences), rule.scaled_threshold, alpha=rule.sequence_alpha, at=at)
        final = final_test_passes(differences, -margin, alpha=rule.final_alpha) if rule.final_alpha else False
        passed.append((outcome == 1) | ((outcome == 0) & final))
        used.append(at[first])
        full.append(final_test_passes(differences, -margin, alpha=alpha))
    scenario = (
        f"non-inferiority: true difference {true_difference:g}, margin {margin:g}, discordance {discordance:g}, "
        f"batches of {batch_size}, final share {final_share:g}"
    )
    return _summary(scenario, rule, n, np.concatenate(passed), np.concatenate(full), np.concatenate(used))


def simulate_test_set_minimum(
    *,
    accuracy: float,
    minimum: float,
    n: int,
    runs: int,
    batch_size: int,
    alpha: float,
    rng: np.random.Generator,
) -> SimulationResult:
    """The sequential ``min`` rule on the test-set mean (sampling without replacement) on
    test sets of ``n`` 0/1 outcomes drawn with probability ``accuracy``; the full-data
    decision is ``mean >= minimum``. Agreement is at least 1 - alpha by construction."""
    _check_runs(runs, n)
    rule = SequentialRule(minimum, (0.0, 1.0), alpha, above=True, target="test-set", inclusive=True, label="simulated")
    at = checkpoints(n, batch_size)
    passed, full, used = [], [], []
    for start in range(0, runs, _CHUNK):
        outcomes = (rng.random((min(_CHUNK, runs - start), n)) < accuracy).astype(float)
        first, outcome = settlement(outcomes, rule.scaled_threshold, alpha=alpha, at=at, population=n)
        truth = outcomes.mean(axis=-1) >= minimum
        # unsettled at the end means the exact full-data decision
        passed.append(np.where(outcome == 0, truth, outcome == 1))
        used.append(at[first])
        full.append(truth)
    scenario = f"test-set minimum: accuracy {accuracy:g}, minimum {minimum:g}, batches of {batch_size}"
    return _summary(scenario, rule, n, np.concatenate(passed), np.concatenate(full), np.concatenate(used))
