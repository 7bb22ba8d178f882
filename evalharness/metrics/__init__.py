"""Metrics: pure functions from predictions and references to scores with signatures."""

from evalharness.metrics.base import AdditiveMetric, Metric, NoSettings
from evalharness.metrics.registry import (
    METRICS,
    build_metric,
    metric_class,
    metric_names,
)

__all__ = [
    "AdditiveMetric",
    "METRICS",
    "Metric",
    "NoSettings",
    "build_metric",
    "metric_class",
    "metric_names",
]
