"""Property-based tests (Hypothesis): random strings, unicode and empty inputs.

- The task-spec loader and the catalog's cross-checks raise only ``EvalHarnessError``
  subclasses (never a ``KeyError``, ``TypeError``, ``RecursionError``... from deep inside).
- Metric functions stay within their bounds on arbitrary text, give the best score when the
  prediction equals the reference, and reject only with ``MetricInputError``.

Example counts are modest so the file runs in seconds.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalharness.spec.catalog import check_task
from evalharness.errors import EvalHarnessError, MetricInputError
from evalharness.metrics import build_metric
from evalharness.spec import TaskSpec, load_task

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID_TASK = {
    "version": 1,
    "kind": "classification",
    "data": {"local": {"files": ["d.tsv"], "format": "tsv", "columns": {"text": "sentence", "label": "label"}}},
    "labels": ["negative", "positive"],
    "prompt": {"template": "{{ text }}", "choices": [" negative", " positive"]},
    "metrics": ["accuracy"],
}

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                     st.text(max_size=20))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                       max_leaves=12)


def _load_text(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            check_task(load_task(path, "t"))
        except EvalHarnessError as exc:
            assert str(path) in str(exc), str(exc)  # every message names the file


@FAST
@given(st.text(max_size=300))
def test_random_text_as_a_task_file_raises_only_project_errors(text):
    _load_text(text)


@FAST
@given(st.text(alphabet="{}[]:,-'\"!&*|>#%@`?\n\t abc01", max_size=200))
def test_yaml_punctuation_soup_raises_only_project_errors(text):
    _load_text(text)


@FAST
@given(st.sampled_from(sorted(VALID_TASK) + ["data.local", "data.local.columns", "prompt", "metrics"]), _values)
def test_any_value_in_any_field_raises_only_project_errors(field, value):
    """A valid task with one field (top-level or nested) replaced by an arbitrary value."""
    import copy

    task = copy.deepcopy(VALID_TASK)
    target, *rest = field.split(".")
    holder = task
    for part in [target, *rest][:-1]:
        holder = holder[part]
    holder[[target, *rest][-1]] = value
    _load_text(yaml.safe_dump(task, allow_unicode=True))


def _reads_as_number(key: str) -> bool:
    """PyYAML dumps '0E0' unquoted (YAML 1.1), and the YAML 1.2 loader reads it back as a float:
    such a key is refused as a non-string key, not as an unknown one."""
    try:
        float(key)
    except ValueError:
        return False
    return True


@FAST
@given(st.dictionaries(st.text(min_size=1, max_size=15).filter(lambda key: key not in TaskSpec.model_fields and not _reads_as_number(key)), _values,
                       min_size=1, max_size=3))
def test_unknown_extra_keys_are_refused_naming_the_key(extra):
    """Unknown keys are errors (a typo never silently changes an evaluation): loading must fail,
    with a project error naming the file and the key, whatever the key and its value."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.yaml"
        path.write_text(yaml.safe_dump({**VALID_TASK, **extra}, allow_unicode=True), encoding="utf-8", errors="surrogatepass")
        try:
            check_task(load_task(path, "t"))
        except EvalHarnessError as exc:
            assert str(path) in str(exc) and "unknown key" in str(exc), str(exc)
        else:
            raise AssertionError(f"unknown keys {sorted(extra)} were accepted")


# --- metrics ---------------------------------------------------------------------------------

def _compute(name: str, predictions, references, settings_: dict | None = None):
    metric = build_metric(name, settings_ or {})
    return metric.compute(predictions, references, rng=np.random.default_rng(0), n_resamples=20)


def _within(value: float | None, low: float, high: float) -> bool:
    return value is None or math.isnan(value) or low - 1e-9 <= value <= high + 1e-9


_texts = st.text(max_size=40)
_answers = st.lists(st.text(max_size=20), max_size=3)


@FAST
@given(st.lists(st.tuples(_texts, _answers), min_size=1, max_size=8))
def test_squad_scores_stay_in_0_100(pairs):
    predictions = [p for p, _ in pairs]
    references = [a for _, a in pairs]
    for name in ("squad_exact", "squad_f1"):
        result = _compute(name, predictions, references)
        assert 0.0 <= result.value <= 100.0


@FAST
@given(st.lists(_answers, min_size=1, max_size=8))
def test_squad_prediction_equal_to_a_gold_answer_scores_100(references):
    from evalharness.metrics.squad import normalize_answer

    # The official v2.0 script drops gold answers that normalise to nothing; with none left the
    # question is unanswerable and "" (no answer) is the right prediction.
    golds = [[a for a in answers if normalize_answer(a)] for answers in references]
    predictions = [answers[0] if answers else "" for answers in golds]
    for name in ("squad_exact", "squad_f1"):
        assert _compute(name, predictions, references).value == 100.0


_labels = st.sampled_from(["yes", "no", "maybe"])


@FAST
@given(st.lists(st.tuples(_labels, _labels), min_size=1, max_size=20))
def test_label_metrics_stay_in_bounds(pairs):
    predictions = [p for p, _ in pairs]
    references = [r for _, r in pairs]
    assert _within(_compute("accuracy", predictions, references).value, 0, 100)
    assert _within(_compute("f1", predictions, references, {"positive_label": "yes"}).value, 0, 100)
    assert _within(_compute("mcc", predictions, references).value, -100, 100)
    assert _compute("accuracy", references, references).value == 100.0


@FAST
@given(st.lists(st.tuples(_texts, st.lists(_texts, min_size=1, max_size=2)), min_size=1, max_size=6))
def test_generation_metrics_do_not_crash_on_arbitrary_unicode(pairs):
    predictions = [p for p, _ in pairs]
    references = [r for _, r in pairs]
    for name in ("bleu", "chrf", "chrf++", "rouge1", "rougeL"):
        try:
            value = _compute(name, predictions, references).value
        except MetricInputError:
            continue  # a clear refusal is allowed; any other exception is a bug
        assert _within(value, 0, 100), (name, value)
    try:
        ter = _compute("ter", predictions, references).value
    except MetricInputError:
        return
    assert ter is None or math.isnan(ter) or ter >= 0


@FAST
@given(st.lists(st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=30), min_size=1, max_size=6))
def test_chrf_of_identical_text_is_100(texts):
    references = [[text] for text in texts]
    assert _compute("chrf", texts, references).value == 100.0


@FAST
@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=True), st.text(max_size=5), st.lists(st.none(), max_size=2)),
                min_size=1, max_size=5))
def test_malformed_predictions_are_refused_with_metric_input_error(predictions):
    """None, NaN, numbers or lists where text is expected: a value or a clear error, never a crash."""
    references = [["a reference sentence"]] * len(predictions)
    for name in ("bleu", "squad_f1"):
        refs = references if name == "bleu" else [["answer"]] * len(predictions)
        try:
            value = _compute(name, predictions, refs).value
        except MetricInputError:
            continue
        assert _within(value, 0, 100)
