"""Structured metric signatures and the one ``Direction`` type (issue 15.4)."""

from __future__ import annotations

import json

import pytest

from evalharness.metrics import build_metric, metric_names
from evalharness.types import Direction, MetricResult, Signature, signature_identity, signature_text


def _entry(signature: Signature | str) -> MetricResult:
    return MetricResult(metric="accuracy", settings={}, value=50.0, ci=(40.0, 60.0), stderr=5.0, n=100,
                       higher_is_better=True, signature=signature, ci_method="wilson-0.95")


def test_signature_is_stored_as_fields_and_read_back_equal():
    signature = build_metric("chrf").signature()
    stored = json.loads(json.dumps(signature.model_dump(mode="json")))
    assert stored["metric"] == "chrf" and stored["text"] == signature.format()
    assert Signature.model_validate(stored) == signature  # the display text is derived, never read back


def _buildable_without_settings() -> list[str]:
    names = []
    for name in metric_names():
        try:
            build_metric(name)
        except ValueError:  # needs settings (f1's positive label, ...): test_metric_invariance builds those
            continue
        names.append(name)
    return names


@pytest.mark.parametrize("name", _buildable_without_settings())
def test_every_metric_signature_formats_its_fields(name):
    signature = build_metric(name).signature()
    text = signature.format()
    assert text.startswith(signature.metric) and f"|impl:{signature.implementation}|" in text and f"|ci:{signature.interval}" in text


def test_a_reworded_version_does_not_change_what_makes_values_comparable():
    signature = build_metric("accuracy").signature()
    newer = signature.model_copy(update={"evalharness": "99.0.0", "n": 5, "seed": 3, "resamples": 1000})
    assert signature_identity(signature) == signature_identity(newer) and newer != signature
    other = signature.model_copy(update={"interval": "bootstrap"})
    assert signature_identity(other) != signature_identity(signature)


def test_records_written_with_text_signatures_still_load_and_compare():
    text = "accuracy|impl:sklearn.metrics.accuracy_score==1.9.1|ci:wilson|evalharness:0.1.0"
    entry = _entry(text)
    assert signature_text(entry.signature) == text
    assert signature_identity(text) == signature_identity(text.replace("0.1.0", "0.2.0"))


@pytest.mark.parametrize(
    ("direction", "better", "worse"),
    [(Direction(True), 2.0, 1.0), (Direction(False), 1.0, 2.0), (Direction(True, ideal=0.0), -0.5, 1.0), (Direction(False, ideal=50.0), 52.0, 40.0)],
)
def test_direction_orders_values_the_same_way_everywhere(direction, better, worse):
    assert direction.goodness(better) > direction.goodness(worse)
    # a change of the compared quantity (the distance from an ideal, where there is one)
    compared = (lambda v: abs(v - direction.ideal)) if direction.ideal is not None else (lambda v: v)
    assert direction.worsening(compared(worse) - compared(better)) > 0


def test_an_ideal_wins_over_the_flag_in_every_label():
    direction = Direction(True, ideal=0.0)
    assert (direction.name, direction.short, direction.label, direction.lower_change_is_better) == ("ideal", "ideal 0", "closest to 0", True)
    assert (Direction(False).name, Direction(False).label) == ("lower", "lower is better")
    assert _entry("x").direction == Direction(True, None)


def test_a_nan_of_another_float_type_is_undefined_not_a_number():
    # finite_or_none tested only Python floats: numpy's float32 NaN passed through as a value
    import numpy as np

    from evalharness.types import finite_or_none

    assert finite_or_none(np.float32("nan")) is None and finite_or_none(np.float32("inf")) is None
    assert finite_or_none(np.float32(2.5)) == 2.5 and finite_or_none(3) == 3.0 and finite_or_none(None) is None
