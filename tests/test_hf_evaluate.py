"""The ``hf_evaluate`` interop metric runs an ``evaluate`` module loaded by local path.

Provenance: the reference is the module itself, called directly through ``evaluate.load`` +
``compute``; the module is a tiny F1-style metric this test writes (corpus-level, so it is not
a mean over examples). Nothing is loaded from the Hub (HF_HUB_OFFLINE=1 in conftest).
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from evalharness.spec.catalog import check_task
from evalharness.errors import MetricInputError, SpecError
from evalharness.metrics import build_metric
from evalharness.spec import load_task

MODULE = '''
import datasets
import evaluate


class PositiveF1(evaluate.Metric):
    """F1 of the label 'pos' (corpus-level)."""

    def _info(self):
        return evaluate.MetricInfo(
            description="F1 of 'pos'", citation="", inputs_description="",
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references, beta=1.0):
        tp = sum(p == r == "pos" for p, r in zip(predictions, references))
        fp = sum(p == "pos" != r for p, r in zip(predictions, references))
        fn = sum(r == "pos" != p for p, r in zip(predictions, references))
        return {"f1": (1 + beta**2) * tp / ((1 + beta**2) * tp + beta**2 * fn + fp), "n": len(references)}
'''


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("modules") / "positive_f1"
    folder.mkdir()
    (folder / "positive_f1.py").write_text(MODULE, encoding="utf-8")
    return folder


GOLD = ["pos", "neg", "pos", "pos", "neg", "neg", "pos", "neg", "pos", "neg"] * 3
PRED = ["pos", "pos", "neg", "pos", "neg", "neg", "pos", "pos", "pos", "neg"] * 3


def test_corpus_score_equals_the_module_called_directly(module_dir):
    import evaluate

    expected = evaluate.load(str(module_dir / "positive_f1.py")).compute(predictions=PRED, references=GOLD)["f1"]
    metric = build_metric("hf_evaluate", {"path": str(module_dir), "result_key": "f1", "scale": 100, "max_resamples": 30})
    result = metric.compute(PRED, GOLD, rng=np.random.default_rng(0))
    assert result.value == pytest.approx(100 * expected)
    assert result.ci_method == "bootstrap-percentile-0.95-B30"
    assert result.ci[0] <= result.value <= result.ci[1]
    assert np.isnan(metric.example_scores(metric.example_stats(PRED, GOLD))).all()  # no per-example F1


def test_signature_names_evaluate_version_and_the_script_hash(module_dir):
    import hashlib
    from importlib.metadata import version

    metric = build_metric("hf_evaluate", {"path": str(module_dir), "result_key": "f1"})
    digest = hashlib.sha256((module_dir / "positive_f1.py").read_bytes()).hexdigest()[:16]
    assert f"impl:evaluate.load[positive_f1@sha256:{digest}]=={version('evaluate')}" in metric.signature()


def test_compute_kwargs_and_result_key_are_used(module_dir):
    settings = {"path": str(module_dir / "positive_f1.py"), "result_key": "f1", "compute_kwargs": {"beta": 2.0}, "max_resamples": 0}
    result = build_metric("hf_evaluate", settings).compute(PRED, GOLD, rng=np.random.default_rng(0))
    tp, fp, fn = 12, 6, 3
    assert result.value == pytest.approx(5 * tp / (5 * tp + 4 * fn + fp))
    assert result.ci[0] is None and result.ci_method == "none"
    with pytest.raises(MetricInputError, match=r"returned \['f1', 'n'\]; set 'result_key'"):
        build_metric("hf_evaluate", {"path": str(module_dir)}).compute(PRED, GOLD, rng=np.random.default_rng(0))


def test_corpus_scores_cannot_be_reaggregated_from_stored_statistics(module_dir):
    settings = {"path": str(module_dir), "result_key": "f1"}
    stats = build_metric("hf_evaluate", settings).example_stats(PRED, GOLD)
    with pytest.raises(MetricInputError, match="cannot be re-aggregated from stored statistics"):
        build_metric("hf_evaluate", settings).aggregate(stats)


def test_hub_names_are_refused_with_file_and_field(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent("""\
        version: 1
        kind: classification
        data: {local: {files: [x.tsv], format: tsv}}
        labels: [neg, pos]
        metrics:
          - {name: hf_evaluate, settings: {path: accuracy}}
        """), encoding="utf-8")
    with pytest.raises(SpecError, match=r"metrics\[0\]\.settings\.path: 'accuracy' is not a local evaluate module.*never from the Hugging Face Hub"):
        check_task(load_task(path, "t"))
