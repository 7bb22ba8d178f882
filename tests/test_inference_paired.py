"""Paired intervals, non-inferiority and equivalence (``evalharness.inference``) against
their references.

References: ``scipy.stats.ttest_rel(...).confidence_interval`` (paired t interval),
``scipy.stats.ttest_1samp(..., alternative="greater")`` (one-sided non-inferiority p-value),
``statsmodels.stats.weightstats.ttost_paired`` (Schuirmann's TOST), and
``evalharness.stats.paired_bootstrap`` (the paired bootstrap the corpus-metric interval
reuses, draw for draw). Tolerance 1e-6 unless stated.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.weightstats import ttost_paired

from evalharness.errors import EvalHarnessError, MetricInputError, UsageError
from evalharness.inference import (
    Margin,
    confidence_for,
    equivalence,
    noninferiority,
    paired_bootstrap_difference,
    paired_difference,
)
from evalharness.metrics import build_metric
from evalharness.stats import Scorer, mcnemar_exact, paired_bootstrap

TOL = 1e-6


def binary_scores(rng: np.random.Generator, n: int, accuracy: float) -> np.ndarray:
    return 100.0 * (rng.random(n) < accuracy)


@pytest.fixture
def runs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    baseline = binary_scores(rng, 400, 0.80)
    flips = rng.random(400) < 0.12
    candidate = np.where(flips, 100.0 - baseline, baseline)
    return candidate, baseline


# -- agreement with scipy / statsmodels ------------------------------------------------------


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_paired_t_interval_matches_scipy_ttest_rel(runs, confidence):
    candidate, baseline = runs
    estimate = paired_difference(candidate, baseline, confidence=confidence, bounds=(0, 100))
    reference = scipy_stats.ttest_rel(candidate, baseline).confidence_interval(confidence)
    assert estimate.method == "paired-t" and estimate.df == candidate.size - 1
    assert estimate.estimate == pytest.approx(float(np.mean(candidate - baseline)), abs=TOL)
    assert estimate.low == pytest.approx(reference.low, abs=TOL)
    assert estimate.high == pytest.approx(reference.high, abs=TOL)


def test_lower_is_better_metric_interval_is_flipped_so_positive_means_better(runs):
    candidate, baseline = runs
    higher = paired_difference(candidate, baseline, bounds=(0, 100))
    lower = paired_difference(candidate, baseline, bounds=(0, 100), higher_is_better=False)
    assert lower.estimate == pytest.approx(-higher.estimate)
    assert (lower.low, lower.high) == pytest.approx((-higher.high, -higher.low))


def test_noninferiority_pvalue_matches_scipy_one_sided_t(runs):
    candidate, baseline = runs
    alpha, margin = 0.05, 2.0
    decision = noninferiority(paired_difference(candidate, baseline, confidence=confidence_for(alpha)), margin=margin, alpha=alpha)
    reference = scipy_stats.ttest_1samp(candidate - baseline, -margin, alternative="greater").pvalue
    assert decision.p_value == pytest.approx(reference, abs=TOL)
    assert decision.passed == (reference < alpha)


@pytest.mark.parametrize("margin", [1.0, 3.0, 6.0])
def test_equivalence_is_tost_as_statsmodels_ttost_paired(runs, margin):
    candidate, baseline = runs
    alpha = 0.05
    decision = equivalence(paired_difference(candidate, baseline, confidence=confidence_for(alpha)), margin=margin, alpha=alpha)
    p_value, _, _ = ttost_paired(candidate, baseline, -margin, margin)
    assert decision.p_value == pytest.approx(p_value, abs=TOL)
    assert decision.passed == (p_value < alpha)


def test_bootstrap_difference_reuses_paired_bootstrap_draw_for_draw():
    rng = np.random.default_rng(3)
    n = 300
    stats_a = np.column_stack([rng.integers(0, 5, n), rng.integers(5, 10, n)]).astype(float)
    stats_b = np.column_stack([rng.integers(0, 6, n), rng.integers(5, 10, n)]).astype(float)
    scorer = Scorer(lambda s: float(100 * s[:, 0].sum() / s[:, 1].sum()), lambda sums: 100 * sums[:, 0] / sums[:, 1])
    estimate = paired_bootstrap_difference(stats_b, stats_a, scorer, rng=np.random.default_rng(12345), confidence=0.9)
    reference = paired_bootstrap(stats_a, stats_b, scorer, rng=np.random.default_rng(12345), confidence=0.9)
    assert (estimate.low, estimate.high, estimate.stderr) == pytest.approx((reference.ci_low, reference.ci_high, reference.stderr), abs=1e-12)
    assert estimate.estimate == pytest.approx(reference.difference, abs=1e-12)
    assert estimate.method == "paired-bootstrap-percentile-B1000"


# -- the release question ------------------------------------------------------------------


def test_drop_that_is_not_significant_but_crosses_the_margin_fails_noninferiority():
    """The issue's check: the old 'fail only when significant' passes this candidate, the
    non-inferiority rule does not, and the decision shows the interval."""
    baseline = 100.0 * (np.arange(200) < 160)
    candidate = baseline.copy()
    candidate[:6] = 0.0  # 6 questions lost ...
    candidate[160:163] = 100.0  # ... 3 gained: a drop of 1.5 points
    two_sided = scipy_stats.ttest_rel(candidate, baseline).pvalue
    mcnemar = mcnemar_exact(baseline > 0, candidate > 0).p_value  # the test `compare` runs for accuracy
    assert candidate.mean() < baseline.mean() and two_sided > 0.05 and mcnemar > 0.05  # not significant
    decision = noninferiority(paired_difference(candidate, baseline, confidence=0.9, bounds=(0, 100)), margin=1.0, alpha=0.05)
    assert not decision.passed and decision.verdict == "inferiority not ruled out"
    assert f"[{decision.estimate.low:.4g}, {decision.estimate.high:.4g}]" in decision.detail and "margin 1" in decision.detail


def test_clearly_inferior_candidate_is_called_inferior(runs):
    _, baseline = runs
    worse = np.where(baseline == 100, np.where(np.arange(baseline.size) % 3 == 0, 0.0, 100.0), baseline)
    decision = noninferiority(paired_difference(worse, baseline, confidence=0.9), margin=1.0, alpha=0.05)
    assert decision.verdict == "inferior" and not decision.passed


def test_margin_is_exclusive_lower_bound_equal_to_minus_margin_fails():
    from evalharness.inference import Estimate

    at_margin = Estimate(0.0, -1.0, 1.0, 0.9, 0.5, 100, "paired-t", 99.0)
    assert not noninferiority(at_margin, margin=1.0, alpha=0.05).passed
    assert noninferiority(at_margin, margin=1.0 + 1e-9, alpha=0.05).passed


def test_relative_margin_is_a_fraction_of_the_baseline_value():
    assert Margin(0.02, relative=True).absolute(80.0) == pytest.approx(1.6)
    assert Margin(0.02, relative=True).absolute(-50.0) == pytest.approx(1.0)
    assert "= 1.6" in Margin(0.02, relative=True).describe(80.0)


def test_relative_margin_of_a_zero_baseline_is_refused():
    with pytest.raises(UsageError, match="non-zero baseline"):
        Margin(0.05, relative=True).absolute(0.0)


@pytest.mark.parametrize("margin", [-1.0, float("nan"), float("inf"), True, "1"])
def test_unusable_margin_is_refused(margin):
    with pytest.raises(UsageError, match="margin"):
        Margin(margin)


def test_margin_no_candidate_could_exceed_is_refused_as_checking_nothing(runs):
    candidate, baseline = runs
    estimate = paired_difference(candidate, baseline, confidence=0.9)
    with pytest.raises(UsageError, match="would pass any candidate"):
        noninferiority(estimate, margin=100.0, alpha=0.05, largest_difference=100.0)


def test_equivalence_margin_of_zero_is_refused(runs):
    candidate, baseline = runs
    with pytest.raises(UsageError, match="never be shown"):
        equivalence(paired_difference(candidate, baseline, confidence=0.9), margin=0.0, alpha=0.05)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.2, -0.1, float("nan")])
def test_alpha_outside_zero_to_half_is_refused(alpha):
    with pytest.raises(UsageError, match="alpha"):
        confidence_for(alpha)


def test_decision_on_an_interval_of_another_level_is_a_bug_not_a_verdict(runs):
    candidate, baseline = runs
    with pytest.raises(ValueError, match="needs the 0.9 interval"):
        noninferiority(paired_difference(candidate, baseline, confidence=0.95), margin=1.0, alpha=0.05)


# -- degenerate data -------------------------------------------------------------------------


def test_identical_runs_on_few_examples_do_not_pass_on_a_zero_width_interval():
    same = np.array([100.0, 100.0, 0.0, 100.0])
    estimate = paired_difference(same, same, confidence=0.9, bounds=(0, 100))
    assert estimate.method == "paired-betting-cs" and estimate.width > 50
    assert "identical on all 4 examples" in estimate.notes[0]
    assert not noninferiority(estimate, margin=2.0, alpha=0.05).passed


def test_identical_runs_on_many_examples_pass_a_reasonable_margin():
    same = 100.0 * (np.arange(5000) % 4 == 0)
    estimate = paired_difference(same, same, confidence=0.9, bounds=(0, 100))
    assert estimate.low <= 0 <= estimate.high and estimate.width < 2
    assert noninferiority(estimate, margin=2.0, alpha=0.05).passed


def test_identical_runs_without_bounds_are_undetermined_not_passed():
    same = np.linspace(0, 5, 50)
    decision = noninferiority(paired_difference(same, same, confidence=0.9), margin=1.0, alpha=0.05)
    assert decision.verdict == "undetermined" and not decision.passed
    assert "no finite bounds" in decision.detail


def test_float_noise_between_identical_runs_is_not_a_precise_difference():
    base = np.full(100, 100.0 / 3)
    noisy = base + np.where(np.arange(100) % 2 == 0, 1e-14, -1e-14)
    estimate = paired_difference(noisy, base, confidence=0.9, bounds=(0, 100))
    assert estimate.method == "paired-betting-cs"


def test_bootstrap_of_identical_corpus_statistics_is_undetermined():
    metric = build_metric("accuracy")
    stats = np.column_stack([np.arange(50) % 2, np.ones(50)]).astype(float)
    scorer = Scorer(metric.aggregate, metric.aggregate_sums)
    estimate = paired_bootstrap_difference(stats, stats, scorer, rng=np.random.default_rng(0), confidence=0.9)
    assert not estimate.defined and "do not vary" in estimate.notes[0]
    assert noninferiority(estimate, margin=5.0, alpha=0.05).verdict == "undetermined"


def test_bootstrap_with_too_few_resamples_for_the_level_is_refused():
    stats = np.column_stack([np.arange(50) % 2, np.ones(50)]).astype(float)
    scorer = Scorer(lambda s: float(s[:, 0].sum() / s[:, 1].sum()), lambda sums: sums[:, 0] / sums[:, 1])
    with pytest.raises(UsageError, match="use at least 1000"):
        paired_bootstrap_difference(stats, stats[::-1], scorer, rng=np.random.default_rng(0), confidence=0.99, n_resamples=200)


def test_bootstrap_mostly_undefined_resamples_is_undetermined():
    # a ratio whose denominator is zero on most examples: most resamples are 0/0
    stats = np.zeros((40, 2))
    stats[0] = (1.0, 1.0)
    other = stats.copy()
    other[0] = (0.0, 1.0)
    scorer = Scorer(lambda s: float(s[:, 0].sum() / s[:, 1].sum()) if s[:, 1].sum() else float("nan"),
                    lambda sums: np.where(sums[:, 1] > 0, sums[:, 0] / np.maximum(sums[:, 1], 1), np.nan))
    estimate = paired_bootstrap_difference(other, stats, scorer, rng=np.random.default_rng(0), confidence=0.9)
    assert not estimate.defined and "undefined on" in estimate.notes[0]


# -- refusals of unusable scores ---------------------------------------------------------------


def test_single_example_is_refused():
    with pytest.raises(MetricInputError, match="at least 2"):
        paired_difference([100.0], [0.0])


def test_nan_score_is_refused_naming_the_example():
    with pytest.raises(MetricInputError, match="example 'q2'"):
        paired_difference([1.0, 0.0, float("nan")], [1.0, 1.0, 0.0], ids=["q0", "q1", "q2"])


def test_misaligned_runs_are_refused():
    with pytest.raises(MetricInputError, match="same examples"):
        paired_difference([1.0, 0.0, 1.0], [1.0, 1.0])


def test_score_outside_the_metric_range_is_refused_naming_the_example():
    with pytest.raises(MetricInputError, match=r"example #1 has score 1\.5, outside the metric's range \[0, 1\]"):
        paired_difference([1.0, 1.5], [1.0, 0.0], bounds=(0.0, 1.0))


def test_non_numeric_scores_are_refused_as_project_errors():
    with pytest.raises(EvalHarnessError):
        paired_difference(["a", "b"], [1.0, 0.0])


def test_numbers_given_as_strings_are_refused_not_parsed():
    with pytest.raises(MetricInputError, match="must be numbers"):
        paired_difference(["1", "0", "1"], [1.0, 0.0, 0.0])


def test_direction_given_as_a_string_is_refused_since_false_strings_are_truthy(runs):
    candidate, baseline = runs
    with pytest.raises(UsageError, match="higher_is_better must be true or false"):
        paired_difference(candidate, baseline, higher_is_better="false")


@pytest.mark.parametrize("value", [1.0, 5.0])
def test_relative_margin_of_a_whole_baseline_or_more_is_refused_as_checking_nothing(value):
    with pytest.raises(UsageError, match="fraction of the baseline"):
        Margin(value, relative=True)


def test_bootstrap_statistics_with_a_nan_row_are_refused_naming_the_example():
    stats = np.column_stack([np.arange(10) % 2, np.ones(10)]).astype(float)
    broken = stats.copy()
    broken[4, 0] = np.nan
    scorer = Scorer(lambda s: float(s[:, 0].sum() / s[:, 1].sum()), lambda sums: sums[:, 0] / sums[:, 1])
    with pytest.raises(MetricInputError, match="candidate: example 'e4' has non-finite statistics"):
        paired_bootstrap_difference(broken, stats, scorer, rng=np.random.default_rng(0), ids=[f"e{i}" for i in range(10)])
