"""Sequential rules: the simulation study the issue asks for, and the mechanism under it.

Simulation study (seeded, vectorised; each case states what it models): over at least 1,000
simulated comparisons at the boundary of the null, the sequential non-inferiority rule
passes at most alpha + 3 Monte-Carlo standard errors of the time; on a clear-cut comparison
it uses at most half the examples of the full run and agrees with the full-data decision;
repeated fixed-n t tests after every batch, by contrast, exceed alpha. The power of each
case is printed (run pytest with -s to see it) and asserted loosely.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from evalharness.errors import MetricInputError, UsageError
from evalharness.inference import SequentialRule, decide, run_sequential
from evalharness.inference.betting import confidence_bounds, log_capital
from evalharness.inference.sequential import checkpoints, settlement
from evalharness.inference.simulation import simulate_noninferiority, simulate_test_set_minimum

ALPHA = 0.05
RUNS = 1000


def report(result) -> None:
    print(
        f"\n{result.scenario}: pass rate {result.pass_rate:.3f} ± {result.pass_rate_se:.3f} (MC s.e.), full-data "
        f"{result.full_data_pass_rate:.3f}, agreement {result.agreement:.3f}, examples {result.mean_examples_used:.0f}/"
        f"{result.examples_total} ({result.saving:.1f}x fewer)"
    )


# -- the simulation study ------------------------------------------------------------------------


def test_sequential_noninferiority_type_one_error_is_at_most_alpha_over_1000_null_comparisons():
    """Null at its boundary: the candidate is worse by exactly the margin (2 points)."""
    result = simulate_noninferiority(true_difference=-0.02, margin=0.02, n=2000, runs=RUNS, batch_size=100, alpha=ALPHA,
                                     rng=np.random.default_rng(20240601))
    report(result)
    assert result.runs >= 1000
    assert result.pass_rate <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / result.runs)


def test_sequential_noninferiority_uses_at_most_half_the_examples_on_a_clear_cut_comparison():
    """The candidate is 6 points better; margin 2 points; 2,000 examples in batches of 100."""
    result = simulate_noninferiority(true_difference=0.06, margin=0.02, n=2000, runs=RUNS, batch_size=100, alpha=ALPHA,
                                     rng=np.random.default_rng(7))
    report(result)
    assert result.saving >= 2.0
    assert result.full_data_pass_rate == 1.0 and result.agreement >= 0.95


def test_sequential_noninferiority_power_at_no_difference_is_reported():
    """Equal systems, margin 3 points: how often the sequential rule passes (its power) and
    how often the full-data t test does."""
    result = simulate_noninferiority(true_difference=0.0, margin=0.03, n=2000, runs=RUNS, batch_size=100, alpha=ALPHA,
                                     rng=np.random.default_rng(8))
    report(result)
    assert 0.5 < result.pass_rate <= result.full_data_pass_rate + 3 * result.pass_rate_se
    assert result.agreement >= 0.8


def test_repeated_fixed_n_tests_after_every_batch_inflate_the_error_rate():
    """Why the sequential rule is not 'the t test after every batch': at the same null, that
    procedure passes far more often than alpha."""
    rng = np.random.default_rng(20240601)
    gain, loss = 0.14, 0.16  # discordance 0.3, mean difference -0.02 = -margin
    draws = rng.random((RUNS, 2000))
    differences = (draws < gain).astype(float) - ((draws >= gain) & (draws < gain + loss)).astype(float)
    at = checkpoints(2000, 100)
    sums, squares = np.cumsum(differences, axis=1)[:, at - 1], np.cumsum(differences**2, axis=1)[:, at - 1]
    mean = sums / at
    stderr = np.sqrt((squares - at * mean**2) / (at - 1) / at)
    peeking = (mean - scipy_stats.t.ppf(1 - ALPHA, at - 1) * stderr > -0.02).any(axis=1).mean()
    assert peeking > ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / RUNS)


def test_test_set_minimum_disagrees_with_the_full_data_decision_at_most_alpha():
    """The hardest case for a point-estimate rule: accuracy exactly at the minimum, so half
    the test sets pass on all data and half fail."""
    result = simulate_test_set_minimum(accuracy=0.8, minimum=0.8, n=2000, runs=RUNS, batch_size=100, alpha=ALPHA,
                                       rng=np.random.default_rng(3))
    report(result)
    assert 1 - result.agreement <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / RUNS)


def test_test_set_minimum_uses_at_most_half_the_examples_on_a_clear_cut_run():
    result = simulate_test_set_minimum(accuracy=0.86, minimum=0.8, n=2000, runs=RUNS, batch_size=100, alpha=ALPHA,
                                       rng=np.random.default_rng(4))
    report(result)
    assert result.saving >= 2.0 and result.agreement >= 0.99


# -- the confidence sequence -----------------------------------------------------------------------


def test_confidence_sequence_covers_the_mean_at_every_time_simultaneously():
    """Time-uniform coverage: over 1,000 streams of 1,000 Beta draws, the sequence
    excludes the true mean at *some* time in at most 2 alpha of them (each side alpha)."""
    rng = np.random.default_rng(11)
    x = rng.beta(2, 5, size=(RUNS, 1000))
    truth = 2 / 7
    level = math.log(1 / ALPHA)
    missed = (log_capital(x, truth, alpha=ALPHA, side=+1) >= level).any(axis=1) | (
        log_capital(x, truth, alpha=ALPHA, side=-1) >= level).any(axis=1)
    assert missed.mean() <= 2 * ALPHA + 3 * math.sqrt(2 * ALPHA / RUNS)


def test_capital_is_monotone_in_the_candidate_mean_so_the_sequence_is_an_interval():
    x = np.random.default_rng(2).random(300)
    grid = np.linspace(0.01, 0.99, 99)
    for population in (None, 1000):
        plus = np.array([log_capital(x, m, alpha=ALPHA, side=+1, population=population)[-1] for m in grid])
        minus = np.array([log_capital(x, m, alpha=ALPHA, side=-1, population=population)[-1] for m in grid])
        assert np.all(plus[1:] <= plus[:-1] + 1e-12) and np.all(minus[1:] >= minus[:-1] - 1e-12)


def test_without_replacement_sequence_closes_on_the_test_set_mean():
    x = (np.random.default_rng(1).random(500) < 0.7).astype(float)
    low, high = confidence_bounds(x, alpha=ALPHA, population=500)
    assert low <= x.mean() <= high and high - low < 1e-6
    low_iid, high_iid = confidence_bounds(x, alpha=ALPHA)
    assert high_iid - low_iid > 0.05


# -- the decision procedure -------------------------------------------------------------------


def paired_differences(rng: np.random.Generator, n: int, gain: float, loss: float) -> np.ndarray:
    draws = rng.random(n)
    return 100.0 * ((draws < gain).astype(float) - ((draws >= gain) & (draws < gain + loss)).astype(float))


def test_run_sequential_stops_early_and_reports_examples_used_and_saving():
    differences = paired_differences(np.random.default_rng(0), 3000, 0.2, 0.05)
    rule = SequentialRule.noninferiority(margin=2.0, bounds=(0.0, 100.0), alpha=ALPHA, label="squad f1")
    run = run_sequential([(rule, differences)], batch_size=100, rng=np.random.default_rng(1))
    (decision,) = run.decisions
    assert decision.passed and decision.settled and decision.verdict == "passed"
    assert run.examples_used == decision.examples_used < 1500 and run.examples_used % 100 == 0
    assert run.saving == pytest.approx(1 - run.examples_used / 3000)
    assert decision.low > -2.0 and decision.method.startswith("betting-cs-iid|alpha:0.05")
    assert sorted(run.order) == list(range(3000))


def test_decide_on_the_prefix_agrees_with_run_sequential():
    differences = paired_differences(np.random.default_rng(5), 2000, 0.2, 0.06)
    rule = SequentialRule.noninferiority(margin=2.0, bounds=(0.0, 100.0), alpha=ALPHA)
    run = run_sequential([(rule, differences)], batch_size=50, rng=np.random.default_rng(6))
    used = run.examples_used
    prefix = differences[run.order][:used]
    assert decide(rule, prefix, total=2000).verdict == run.decisions[0].verdict
    assert decide(rule, prefix[:-50], total=2000).verdict == "not settled"


def test_every_rule_is_settled_before_the_run_stops():
    rng = np.random.default_rng(3)
    clear = paired_differences(rng, 2000, 0.25, 0.02)
    close = paired_differences(rng, 2000, 0.12, 0.10)
    rules = [
        (SequentialRule.noninferiority(margin=2.0, bounds=(0.0, 100.0), alpha=ALPHA, label="clear"), clear),
        (SequentialRule.noninferiority(margin=2.0, bounds=(0.0, 100.0), alpha=ALPHA, label="close"), close),
    ]
    run = run_sequential(rules, batch_size=100, rng=np.random.default_rng(4))
    clear_decision, close_decision = run.decisions
    assert clear_decision.examples_used <= close_decision.examples_used == run.examples_used


def test_pure_sequential_rule_unsettled_when_the_examples_run_out_fails():
    differences = np.tile([100.0, -100.0, 0.0, 0.0, 0.0], 60)  # mean 0, margin 1: too close to settle in 300
    rule = SequentialRule.noninferiority(margin=1.0, bounds=(0.0, 100.0), alpha=ALPHA, final_share=0.0)
    decision = run_sequential([(rule, differences)], batch_size=100, rng=np.random.default_rng(0)).decisions[0]
    assert decision.verdict == "not settled" and not decision.passed and decision.examples_used == 300


def test_unsettled_rule_falls_back_to_the_full_data_t_test_at_its_share_of_alpha():
    differences = np.tile([100.0, -100.0] + [0.0] * 8, 300)
    differences[np.arange(2, 3000, 100)] = 100.0  # mean 1, margin 1
    rule = SequentialRule.noninferiority(margin=1.0, bounds=(0.0, 100.0), alpha=ALPHA)
    decision = run_sequential([(rule, differences)], batch_size=500, rng=np.random.default_rng(0)).decisions[0]
    reference = scipy_stats.ttest_1samp(differences, -1.0, alternative="greater").pvalue
    assert decision.examples_used == 3000 and decision.method.endswith("|final:t-alpha:0.025")
    assert decision.passed == (reference < ALPHA / 2)
    interval = scipy_stats.ttest_1samp(differences, 0.0).confidence_interval(1 - ALPHA)
    assert (decision.low, decision.high) == pytest.approx((interval.low, interval.high), abs=1e-9)


@pytest.mark.parametrize("inclusive,expected", [(True, True), (False, False)])
def test_test_set_rule_at_the_end_is_exactly_the_full_data_comparison(inclusive, expected):
    scores = np.array([100.0] * 80 + [0.0] * 20)  # mean exactly 80
    rule = SequentialRule(80.0, (0.0, 100.0), ALPHA, target="test-set", inclusive=inclusive)
    decision = decide(rule, scores, total=100)
    assert decision.settled and decision.passed is expected and decision.low == decision.high == 80.0


def test_maximum_rule_passes_when_the_mean_is_shown_below():
    scores = 100.0 * (np.random.default_rng(0).random(4000) < 0.1)
    rule = SequentialRule(20.0, (0.0, 100.0), ALPHA, above=False, target="test-set", label="max bias")
    run = run_sequential([(rule, scores)], batch_size=200, rng=np.random.default_rng(1))
    decision = run.decisions[0]
    assert decision.passed and decision.examples_used < 2000 and decision.high < 20.0


def test_threshold_outside_the_scores_range_is_refused_as_checking_nothing():
    with pytest.raises(UsageError, match="without looking at any example"):
        SequentialRule(0.0, (0.0, 100.0), ALPHA, label="min accuracy")
    with pytest.raises(UsageError, match="without looking at any example"):
        SequentialRule.noninferiority(margin=100.0, bounds=(0.0, 100.0), alpha=ALPHA)


def test_unbounded_scores_are_refused():
    with pytest.raises(UsageError, match="finite bounds"):
        SequentialRule(1.0, (0.0, math.inf), ALPHA, label="perplexity")


def test_score_outside_the_declared_bounds_is_refused_naming_the_example():
    rule = SequentialRule(50.0, (0.0, 100.0), ALPHA, label="accuracy")
    with pytest.raises(MetricInputError, match="example 'b' has score 101"):
        decide(rule, [100.0, 101.0], total=10, ids=["a", "b"])


def test_more_scores_than_the_test_set_is_refused():
    rule = SequentialRule(50.0, (0.0, 100.0), ALPHA, label="accuracy")
    with pytest.raises(MetricInputError, match="test set has 2"):
        decide(rule, [100.0, 0.0, 100.0], total=2)


def test_rules_on_different_numbers_of_examples_are_refused():
    rule = SequentialRule(50.0, (0.0, 100.0), ALPHA)
    with pytest.raises(MetricInputError, match="different lengths"):
        run_sequential([(rule, [1.0, 2.0]), (rule, [1.0])], batch_size=1, rng=np.random.default_rng(0))


@pytest.mark.parametrize("batch_size", [0, -5, 2.5, True])
def test_unusable_batch_size_is_refused(batch_size):
    with pytest.raises(UsageError, match="batch size"):
        checkpoints(100, batch_size)


def test_settlement_only_looks_at_checkpoints():
    x = np.ones((1, 400))
    at = np.array([400])
    first, outcome = settlement(x, 0.5, alpha=ALPHA, at=at)
    assert first[0] == 0 and outcome[0] == 1
