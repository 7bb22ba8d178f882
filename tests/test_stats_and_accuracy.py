"""Accuracy against scikit-learn, and the interval machinery in ``stats``."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score

from evalharness.errors import MetricInputError
from evalharness.metrics import build_metric
from evalharness.stats import bootstrap_interval, resample_counts


def test_accuracy_equals_sklearn_on_label_names():
    rng = np.random.default_rng(0)
    labels = ["negative", "positive", "neutral"]
    gold = list(rng.choice(labels, 500))
    pred = list(rng.choice(labels, 500))
    result = build_metric("accuracy").compute(pred, gold, rng=np.random.default_rng(1))
    assert result.value == pytest.approx(100 * accuracy_score(gold, pred), abs=1e-12)
    assert result.ci[0] < result.value < result.ci[1]
    assert "impl:sklearn.metrics.accuracy_score==" in result.signature


def test_accuracy_interval_is_the_wilson_score_interval():
    from statsmodels.stats.proportion import proportion_confint

    correct = ["a"] * 30 + ["b"] * 10
    result = build_metric("accuracy").compute(correct, ["a"] * 40, rng=np.random.default_rng(0))
    low, high = proportion_confint(30, 40, alpha=0.05, method="wilson")
    assert result.ci == pytest.approx((100 * low, 100 * high))
    assert result.ci_method == "wilson-0.95" and "|ci:wilson|" in result.signature


def test_missing_prediction_counts_as_wrong_and_missing_reference_is_an_error():
    metric = build_metric("accuracy")
    assert metric.compute([None, "a"], ["a", "a"], rng=np.random.default_rng(0)).value == 50.0
    with pytest.raises(MetricInputError, match="reference 1 is missing"):
        metric.compute(["a", "a"], ["a", None], rng=np.random.default_rng(0))


def test_length_mismatch_and_empty_input_are_errors():
    metric = build_metric("accuracy")
    with pytest.raises(MetricInputError, match="2 predictions but 1 references"):
        metric.compute(["a", "b"], ["a"], rng=np.random.default_rng(0))
    with pytest.raises(MetricInputError, match="no examples"):
        metric.compute([], [], rng=np.random.default_rng(0))


def test_resample_counts_draw_n_items_per_resample():
    counts = resample_counts(50, 200, np.random.default_rng(0))
    assert counts.shape == (200, 50) and (counts.sum(axis=1) == 50).all()


def test_bootstrap_stderr_is_the_std_of_replicates_not_divided_by_sqrt_b():
    scores = np.random.default_rng(3).normal(size=(400, 1))
    interval = bootstrap_interval(
        scores, aggregate=lambda s: float(s.mean()), aggregate_sums=None,
        rng=np.random.default_rng(4), n_resamples=2000,
    )
    # The bootstrap standard error of a mean approximates sd/sqrt(n), ~0.05 here.
    assert interval.stderr == pytest.approx(scores.std(ddof=1) / np.sqrt(400), rel=0.1)
    assert interval.low < scores.mean() < interval.high


def test_additive_and_generic_bootstrap_agree():
    metric = build_metric("accuracy")
    stats = metric.example_stats(["a"] * 70 + ["b"] * 30, ["a"] * 100)
    common = dict(aggregate=metric.aggregate, n_resamples=300)
    fast = bootstrap_interval(stats, aggregate_sums=metric.aggregate_sums, rng=np.random.default_rng(7), **common)
    slow = bootstrap_interval(stats, aggregate_sums=None, rng=np.random.default_rng(7), **common)
    assert (fast.low, fast.high, fast.stderr) == pytest.approx((slow.low, slow.high, slow.stderr))


def test_group_breakdown():
    metric = build_metric("accuracy")
    result = metric.compute(["a", "b", "a", "a"], ["a", "a", "a", "a"], rng=np.random.default_rng(0), groups=["x", "x", "y", "y"])
    assert result.groups["x"].value == 50.0 and result.groups["y"].value == 100.0 and result.groups["x"].n == 2
