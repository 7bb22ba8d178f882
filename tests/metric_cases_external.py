"""Invariance cases for metrics over values another harness computed (``external_mean``).

Per-example values are lm-eval's per-document ``acc`` (1.0 right, 0.0 wrong); perfect values
reach a mean of 1.0, as lm-eval's ``mean`` aggregation does.
"""

_PERFECT = [1.0] * 12
_IMPERFECT = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0]

CASES = {
    "external_mean": {
        "settings": {"source": "lm-eval", "metric": "acc", "filter": "none", "higher_is_better": True},
        "references": [None] * 12,
        "perfect": _PERFECT,
        "imperfect": _IMPERFECT,
        "best": 1.0,
    },
}
