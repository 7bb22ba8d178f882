"""GLUE metrics against their reference implementations on real GLUE dev labels.

Provenance: gold labels are the real dev sets in ../shared/data (CoLA = the two original
cola_public dev files, 1,043; MRPC dev.tsv, 408; STS-B sts-dev.csv, 1,500) read through the
built-in tasks; predictions are deterministic synthetic corruptions of them (seeded). The
expected values come from scikit-learn (``matthews_corrcoef``, ``f1_score``,
``accuracy_score``) and scipy (``pearsonr``, ``spearmanr``), times 100.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from evalharness.spec.catalog import TaskCatalog, check_task
from evalharness.data import load_examples
from evalharness.errors import MetricInputError, SpecError
from evalharness.metrics import build_metric
from evalharness.spec import load_task

RNG = np.random.default_rng


def gold_labels(shared_data, name):
    return [example["label"] for example in load_examples(TaskCatalog().load(name), shared_data).examples]


def flip(labels, share, labelset, seed):
    """Replace a seeded share of labels by a different label from ``labelset``."""
    rng = RNG(seed)
    out = list(labels)
    for index in rng.choice(len(out), int(share * len(out)), replace=False):
        others = [label for label in labelset if label != out[index]]
        out[index] = others[int(rng.integers(len(others)))]
    return out


@pytest.mark.shared_data
def test_mcc_equals_sklearn_on_cola_dev(shared_data):
    gold = gold_labels(shared_data, "glue/cola")
    assert len(gold) == 1043
    labelset = ["unacceptable", "acceptable"]
    for seed, share in [(0, 0.1), (1, 0.3), (2, 0.5)]:
        pred = flip(gold, share, labelset, seed)
        result = build_metric("mcc").compute(pred, gold, rng=RNG(seed))
        assert result.value == pytest.approx(100 * matthews_corrcoef(gold, pred), abs=1e-9)
        assert result.ci[0] < result.value < result.ci[1]


@pytest.mark.shared_data
def test_f1_and_accuracy_equal_sklearn_on_mrpc_dev(shared_data):
    gold = gold_labels(shared_data, "glue/mrpc")
    assert len(gold) == 408
    pred = flip(gold, 0.25, ["not_equivalent", "equivalent"], 3)
    f1 = build_metric("f1", {"positive_label": "equivalent"}).compute(pred, gold, rng=RNG(0))
    assert f1.value == pytest.approx(100 * f1_score(gold, pred, pos_label="equivalent"), abs=1e-9)
    negative = build_metric("f1", {"positive_label": "not_equivalent"}).compute(pred, gold, rng=RNG(0))
    assert negative.value == pytest.approx(100 * f1_score(gold, pred, pos_label="not_equivalent"), abs=1e-9)
    accuracy = build_metric("accuracy").compute(pred, gold, rng=RNG(0))
    assert accuracy.value == pytest.approx(100 * accuracy_score(gold, pred), abs=1e-9)


@pytest.mark.shared_data
def test_pearson_and_spearman_equal_scipy_on_stsb_dev(shared_data):
    gold = gold_labels(shared_data, "glue/stsb")
    assert len(gold) == 1500 and min(gold) == 0.0 and max(gold) == 5.0
    rng = RNG(4)
    pred = list(np.clip(np.asarray(gold) + rng.normal(0, 1.2, len(gold)), 0, 5))  # ties at 0 and 5
    pearson = build_metric("pearson").compute(pred, gold, rng=RNG(0))
    spearman = build_metric("spearman").compute(pred, gold, rng=RNG(0), n_resamples=300)
    assert pearson.value == pytest.approx(100 * stats.pearsonr(pred, gold).statistic, abs=1e-9)
    assert spearman.value == pytest.approx(100 * stats.spearmanr(pred, gold).statistic, abs=1e-9)
    # A far-off constant shift and scale change nothing (statistics are centred).
    shifted = [1e6 + 3 * p for p in pred]
    assert build_metric("pearson").compute(shifted, gold, rng=RNG(0)).value == pytest.approx(pearson.value, abs=1e-7)


def test_mcc_multiclass_and_missing_predictions_match_sklearn():
    rng = RNG(5)
    labels = ["entailment", "neutral", "contradiction"]
    gold = list(rng.choice(labels, 400))
    pred = list(rng.choice(labels, 400))
    for index in rng.choice(400, 30, replace=False):
        pred[index] = None
    result = build_metric("mcc").compute(pred, gold, rng=RNG(0))
    as_label = ["<none>" if p is None else p for p in pred]  # a missing answer is its own (wrong) class
    assert result.value == pytest.approx(100 * matthews_corrcoef(gold, as_label), abs=1e-9)


def test_additive_bootstrap_equals_the_generic_one():
    """Column-sum aggregation (one matrix product) must agree with re-scoring resamples."""
    from evalharness.stats import bootstrap_interval

    rng = RNG(6)
    gold = list(rng.choice(["a", "b"], 300))
    pred = flip(gold, 0.3, ["a", "b"], 7)
    for name, settings in [("mcc", {}), ("f1", {"positive_label": "a"})]:
        metric = build_metric(name, settings)
        stats_ = metric.example_stats(pred, gold)
        common = dict(aggregate=metric.aggregate, n_resamples=200)
        fast = bootstrap_interval(stats_, aggregate_sums=metric.aggregate_sums, rng=RNG(8), **common)
        slow = bootstrap_interval(stats_, aggregate_sums=None, rng=RNG(8), **common)
        assert (fast.low, fast.high, fast.stderr) == pytest.approx((slow.low, slow.high, slow.stderr))


def test_undefined_scores_follow_the_zero_division_policy():
    gold, pred = ["no"] * 5, ["no"] * 5  # no positive anywhere: F1 is 0/0; one class: MCC is 0/0
    rng = RNG(0)
    assert build_metric("f1", {"positive_label": "yes"}).compute(pred, gold, rng=rng).value is None
    assert build_metric("f1", {"positive_label": "yes", "zero_division": 0}).compute(pred, gold, rng=rng).value == 0.0
    assert f1_score(gold, pred, pos_label="yes", zero_division=0) == 0.0
    constant = ["yes"] * 5
    mixed = ["yes", "no", "yes", "no", "no"]
    assert build_metric("mcc").compute(constant, mixed, rng=rng).value == 100 * matthews_corrcoef(mixed, constant) == 0.0
    assert build_metric("mcc", {"zero_division": "nan"}).compute(constant, mixed, rng=rng).value is None
    # scipy: a constant input has no correlation (NaN), never a made-up number.
    assert build_metric("pearson").compute([1.0] * 5, [1.0, 2, 3, 4, 5], rng=rng).value is None


def test_bad_inputs_name_the_example():
    rng = RNG(0)
    with pytest.raises(MetricInputError, match="reference 1 is missing"):
        build_metric("f1", {"positive_label": "a"}).compute(["a", "a"], ["a", None], rng=rng)
    with pytest.raises(MetricInputError, match="prediction 2 is missing"):
        build_metric("pearson").compute([1.0, 2.0, None], [1.0, 2.0, 3.0], rng=rng)
    with pytest.raises(MetricInputError, match="reference 0 is missing"):
        build_metric("spearman").compute([1.0, 2.0], [float("nan"), 2.0], rng=rng)
    with pytest.raises(MetricInputError, match="prediction 1 is inf, not a finite number"):
        build_metric("spearman").compute([1.0, float("inf")], [1.0, 2.0], rng=rng)
    with pytest.raises(MetricInputError, match="prediction 0 is 'high', not a number"):
        build_metric("pearson").compute(["high", 2.0], [1.0, 2.0], rng=rng)


SPEC = """\
version: 1
kind: {kind}
data:
  local: {{files: [x.tsv], format: tsv}}
{labels}metrics:
  - {metric}
"""


@pytest.mark.parametrize(
    ("kind", "labels", "metric", "message"),
    [
        ("regression", "", "accuracy", "'accuracy' cannot score a 'regression' task: .*pearson/spearman"),
        ("classification", "labels: [neg, pos]\n", "pearson", "'pearson' .* needs a 'regression' task"),
        ("classification", "labels: [neg, pos]\n", "{name: f1, settings: {positive_label: Pos}}",
         r"positive_label 'Pos' is not one of the task's labels \['neg', 'pos'\]"),
        ("classification", "labels: [neg, pos]\n", "squad_f1", "needs an 'extractive_qa' task"),
        ("classification", "labels: [neg, pos]\n", "word_perplexity", "'language_modeling' task"),
    ],
)
def test_task_files_with_a_metric_that_cannot_score_them_are_refused(tmp_path, kind, labels, metric, message):
    path = tmp_path / "t.yaml"
    path.write_text(SPEC.format(kind=kind, labels=labels, metric=metric), encoding="utf-8")
    with pytest.raises(SpecError, match=message) as info:
        check_task(load_task(path, "t"))
    assert str(path) in str(info.value) and "metrics[0]" in str(info.value)


def test_f1_requires_its_positive_label_setting(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(SPEC.format(kind="classification", labels="labels: [neg, pos]\n", metric="f1"), encoding="utf-8")
    with pytest.raises(SpecError, match=r"metrics\[0\]\.settings\.positive_label: required field is missing"):
        check_task(load_task(path, "t"))
