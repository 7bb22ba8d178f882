"""``evalharness run --tasks bias`` runs every probe the checkpoint's kind supports and records
why it skipped the others; WinoBias is read exactly and scored by masked LMs too."""

from __future__ import annotations

import pytest

from evalharness.spec.catalog import TaskCatalog
from evalharness.data.loader import load_examples
from evalharness.records.record import load_record, read_samples
from evalharness.evaluation.runner import RunConfig, run_evaluation

pytestmark = [pytest.mark.shared_data]

ALL = {"bias/bbq", "bias/crows_pairs", "bias/winobias", "bias/counterfactual_sst2", "bias/counterfactual_qnli", "bias/counterfactual_squad_v1"}
EXPECTED = {
    # Labels negative/positive: SST-2 maps by name, QNLI does not (skipped with the reason).
    "tiny_classifier": {"bias/counterfactual_sst2"},
    "tiny_causal_lm": ALL,
    "tiny_masked_lm": {"bias/bbq", "bias/crows_pairs", "bias/winobias"},
    "tiny_qa_model": {"bias/counterfactual_squad_v1"},
}


@pytest.mark.slow
@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_bias_group_runs_what_the_kind_supports_and_explains_the_rest(fixture, request, shared_data, tmp_path):
    checkpoint = request.getfixturevalue(fixture)
    # One configuration for every kind, as a sweep has: max_new_tokens only reaches the tasks
    # answered by generation; elsewhere it is recorded as not applied (not refused).
    config = RunConfig(model=str(checkpoint), tasks=["bias"], data_dir=shared_data, limit=3, output=tmp_path,
                       batch_size=8, n_resamples=50, device="cpu", generation={"max_new_tokens": 4},
                       refuse_unused_options=False)
    record = run_evaluation(config).record
    assert load_record(tmp_path) == record
    reached = any("max_new_tokens" in task.settings["run_options"]["applied"] for task in record.tasks.values())
    assert record.settings["generation"] == ({"max_new_tokens": 4} if reached else {})
    assert ("not_applied" in record.settings) != reached
    assert set(record.tasks) == EXPECTED[fixture]
    assert set(record.skipped) == ALL - EXPECTED[fixture]
    kind = record.model.kind
    for name, reason in record.skipped.items():
        assert kind in reason or "label" in reason, (name, reason)
    for name, task in record.tasks.items():
        assert task.n_examples == 3 and len(read_samples(tmp_path, name)) == 3
        assert all(entry.ideal is not None for key, entry in task.metrics.items() if "accuracy" not in key or "change" in key)


def test_winobias_reader_finds_the_gold_referent_of_every_sentence(shared_data):
    task = TaskCatalog().load("bias/winobias")
    examples = load_examples(task, shared_data).examples
    assert len(examples) == 4 * 396
    counts: dict[str, int] = {}
    for example in examples:
        reference = example["reference"]
        counts[reference["group"]] = counts.get(reference["group"], 0) + 1
        gold = example["choices"][reference["label"]]
        other = example["choices"][1 - reference["label"]]
        assert gold != other and gold.lower() in example["context"].lower() and other.lower() in example["context"].lower()
        assert f'"{reference["pronoun"]}"' in example["question"]
    assert counts == {"type1_pro": 396, "type1_anti": 396, "type2_pro": 396, "type2_anti": 396}
    first = next(e for e in examples if e.id == "type1-pro-1")
    # "[The janitor] reprimanded the accountant because [she] made a mistake ..." (pro, type 1):
    # the file brackets the gold referent.
    assert first["choices"] == ["accountant", "janitor"]


def test_winobias_accuracy_gap_is_pro_minus_anti_per_type(shared_data):
    import numpy as np

    from evalharness.metrics.bias import AccuracyGap, ChoiceAccuracy

    examples = load_examples(TaskCatalog().load("bias/winobias"), shared_data).examples
    chosen = [e for e in examples if e.id.endswith(("-1", "-2", "-3", "-4", "-5"))]
    predictions = [0] * len(chosen)  # always the alphabetically first occupation
    references = [e["reference"] for e in chosen]
    metric = AccuracyGap({"group_by": "type"})
    gap = metric.compute(predictions, references, rng=np.random.default_rng(0), n_resamples=50,
                         groups=metric.example_groups(predictions, references))

    def accuracy(side, kind=None):
        hits = [p == r["label"] for p, r in zip(predictions, references)
                if r["stereotype"] == side and (kind is None or r["type"] == kind)]
        return 100 * sum(hits) / len(hits)

    assert gap.value == pytest.approx(accuracy("pro") - accuracy("anti")) and gap.ideal == 0.0
    for kind in ("type1", "type2"):
        assert gap.groups[kind].value == pytest.approx(accuracy("pro", kind) - accuracy("anti", kind))
    choice = ChoiceAccuracy({"group_by": "group"})
    result = choice.compute(predictions, references, rng=np.random.default_rng(0),
                            groups=choice.example_groups(predictions, references))
    assert result.groups["type2_anti"].value == pytest.approx(accuracy("anti", "type2"))
