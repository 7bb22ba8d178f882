"""One invariance suite over every registered metric (after scikit-learn's
``metrics/tests/test_common.py``).

Inputs come from the ``CASES`` tables in every ``tests/metric_cases_*.py``; a registered
metric without a case fails here, so a new metric cannot skip these checks. Checked for each:
corpus scores do not depend on example order; perfect predictions reach the best score;
empty and misaligned inputs raise ``MetricInputError``; the signature names the metric, its
implementation and versions; the confidence interval contains the point estimate and
narrows when the same data is seen four times over.

A case is ``{"settings": {...}, "references": [...], "perfect": [...], "imperfect": [...]}``
with at least 4 examples (a dozen makes the interval checks meaningful), optionally
``"best"``: the score perfect predictions must reach (default: the metric's ``ideal``).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from evalharness.errors import MetricInputError
from evalharness.metrics import METRICS, build_metric
from evalharness.metrics.base import package_version


def _collect_cases() -> dict[str, dict]:
    cases: dict[str, dict] = {}
    for path in sorted(Path(__file__).resolve().parent.glob("metric_cases_*.py")):
        spec = importlib.util.spec_from_file_location(f"_cases_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name, case in module.CASES.items():
            if name in cases:
                raise AssertionError(f"metric '{name}' has cases in two files ({path.name})")
            cases[name] = case
    return cases


CASES = _collect_cases()
NAMES = sorted(METRICS)


def _case(name: str) -> dict:
    if name not in CASES:
        pytest.fail(f"metric '{name}' is registered but has no entry in any tests/metric_cases_*.py CASES table")
    return CASES[name]


def _score(name: str, predictions, references, *, seed: int = 0, n_resamples: int = 400):
    metric = build_metric(name, _case(name)["settings"])
    return metric, metric.compute(predictions, references, rng=np.random.default_rng(seed), n_resamples=n_resamples)


def test_every_registered_metric_has_a_case():
    missing = sorted(set(METRICS) - set(CASES))
    assert not missing, f"registered metrics without an invariance case: {missing}"
    unknown = sorted(set(CASES) - set(METRICS))
    assert not unknown, f"cases for metrics that are not registered: {unknown}"


@pytest.mark.parametrize("name", NAMES)
def test_case_is_well_formed(name):
    case = _case(name)
    assert {"settings", "perfect", "references", "imperfect"} <= set(case)
    assert len(case["perfect"]) == len(case["references"]) == len(case["imperfect"]) >= 4


@pytest.mark.parametrize("name", NAMES)
def test_corpus_score_is_invariant_to_example_order(name):
    case = _case(name)
    _, original = _score(name, case["imperfect"], case["references"])
    order = np.random.default_rng(42).permutation(len(case["references"]))
    _, shuffled = _score(name, [case["imperfect"][i] for i in order], [case["references"][i] for i in order])
    assert shuffled.value == pytest.approx(original.value, rel=1e-9, abs=1e-9)
    assert shuffled.n == original.n <= len(order)  # a subset metric counts only its examples


@pytest.mark.parametrize("name", NAMES)
def test_perfect_predictions_score_the_best(name):
    case = _case(name)
    metric, perfect = _score(name, case["perfect"], case["references"])
    _, imperfect = _score(name, case["imperfect"], case["references"])
    best = case.get("best", metric.ideal)
    if best is not None:
        assert perfect.value == pytest.approx(best, abs=1e-9)
    if metric.higher_is_better:
        assert perfect.value > imperfect.value
    else:
        assert perfect.value < imperfect.value


@pytest.mark.parametrize("name", NAMES)
def test_empty_input_raises(name):
    metric = build_metric(name, _case(name)["settings"])
    with pytest.raises(MetricInputError, match="no examples"):
        metric.compute([], [], rng=np.random.default_rng(0))


@pytest.mark.parametrize("name", NAMES)
def test_mismatched_lengths_raise(name):
    case = _case(name)
    metric = build_metric(name, case["settings"])
    with pytest.raises(MetricInputError, match="predictions but"):
        metric.compute(case["imperfect"][:-1], case["references"], rng=np.random.default_rng(0))


@pytest.mark.parametrize("name", NAMES)
def test_signature_names_metric_implementation_and_versions(name):
    metric, result = _score(name, _case(name)["imperfect"], _case(name)["references"], n_resamples=50)
    signature = result.signature
    assert signature.identity() == metric.signature().identity() and signature.n == result.n
    assert signature.metric == name and signature.format().split("|")[0] == name
    assert signature.implementation.startswith(metric.reference) and metric.reference
    assert signature.evalharness == package_version("evalharness")
    if metric.reference_package:
        assert signature.implementation.endswith(f"=={package_version(metric.reference_package)}")
    assert signature.settings == metric.settings.model_dump(mode="json")
    for key, value in metric.settings.model_dump(mode="json").items():
        assert f"{key}:{value}" in signature.format()


@pytest.mark.parametrize("name", NAMES)
def test_interval_contains_the_point_estimate(name):
    case = _case(name)
    _, result = _score(name, case["imperfect"], case["references"])
    assert result.value is not None
    assert None not in result.ci, result.ci_method
    assert result.ci[0] <= result.value <= result.ci[1]


@pytest.mark.parametrize("name", NAMES)
def test_interval_narrows_as_n_grows(name):
    case = _case(name)
    _, small = _score(name, case["imperfect"], case["references"])
    _, large = _score(name, case["imperfect"] * 4, case["references"] * 4)
    assert large.value == pytest.approx(small.value, rel=1e-6, abs=1e-9)
    assert large.n == 4 * small.n
    assert (large.ci[1] - large.ci[0]) < (small.ci[1] - small.ci[0])


@pytest.mark.parametrize("name", NAMES)
def test_per_example_statistics_are_sufficient(name):
    """``compare``, ``gate`` and ``rescore`` re-aggregate stored per-example statistics: for any
    subset of the examples, aggregating the subset's rows must give exactly the metric computed
    from scratch on that subset (sacrebleu's sufficient statistics, generalised)."""
    case = _case(name)
    metric = build_metric(name, case["settings"])
    predictions, references = case["imperfect"], case["references"]
    stats = np.asarray(metric.example_stats(predictions, references), dtype=float)
    rng = np.random.default_rng(7)
    for size in (2, len(references) // 2, len(references) - 1):
        subset = np.sort(rng.choice(len(references), size=max(size, 2), replace=False))
        direct = metric.compute([predictions[i] for i in subset], [references[i] for i in subset], rng=np.random.default_rng(0), n_resamples=20)
        aggregated = metric.aggregate(stats[subset])
        if direct.value is None:
            assert math.isnan(aggregated), (name, list(subset))
        else:
            assert aggregated == pytest.approx(direct.value, rel=1e-9, abs=1e-9), (name, list(subset))
