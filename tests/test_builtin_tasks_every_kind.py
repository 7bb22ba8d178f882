"""Every built-in task that a checkpoint kind supports runs end to end on a small sample.

One tiny checkpoint per kind (built by the fixtures, random init) runs every built-in group
with local data in ``../shared/data``; each task either produces a valid scored entry or is
skipped with the reason (data not available offline, or the kind cannot answer it).
"""

from __future__ import annotations

import pytest

from evalharness.records.record import load_record, read_samples
from evalharness.evaluation.runner import RunConfig, run_evaluation

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

GROUPS = ["glue", "squad", "lm", "translation", "summarization"]
HUB_ONLY = {"glue/qqp", "glue/mnli_matched", "glue/mnli_mismatched", "glue/rte", "glue/wnli", "summarization/xsum"}
TRANSLATION = {"translation/wmt21_de_en", "translation/wmt21_en_de", "translation/wmt23_de_en", "translation/wmt23_en_de"}
PROMPTED_CLASSIFICATION = {"glue/cola", "glue/mrpc", "glue/qnli", "glue/sst2"}  # STS-B has no prompt

EXPECTED = {
    # The tiny classifier's labels are negative/positive: only SST-2's labels match by name.
    "tiny_classifier": {"glue/sst2"},
    "tiny_regressor": {"glue/stsb"},
    "tiny_qa_model": {"squad/v1", "squad/v2"},
    "tiny_t5": TRANSLATION | {"summarization/cnn_dailymail", "squad/v1", "squad/v2"},
    "tiny_causal_lm": PROMPTED_CLASSIFICATION | TRANSLATION | {"summarization/cnn_dailymail", "squad/v1", "squad/v2", "lm/wikitext2", "lm/ptb"},
    "tiny_masked_lm": {"lm/wikitext2", "lm/ptb"},
}


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_every_supported_builtin_task_runs(fixture, request, shared_data, tmp_path):
    checkpoint = request.getfixturevalue(fixture)
    config = RunConfig(
        model=str(checkpoint), tasks=GROUPS, data_dir=shared_data, limit=2, output=tmp_path, batch_size=8,
        generation={"max_new_tokens": 8, "min_new_tokens": 0},  # tiny models have 128 positions; fast
        refuse_unused_options=False,  # one configuration for every kind: recorded as not applied where unused
    )
    record = run_evaluation(config).record
    assert load_record(tmp_path) == record
    assert set(record.tasks) == EXPECTED[fixture]
    for name in HUB_ONLY:
        assert "evaluation data not found" in record.skipped[name]
    for name, reason in record.skipped.items():
        assert reason.strip(), name
    for name, task in record.tasks.items():
        assert task.n_examples == 2 and len(read_samples(tmp_path, name)) == 2
        # n counts the examples that entered each metric: a subset (SQuAD v2 NoAns, a BBQ condition) may hold fewer.
        assert task.metrics and all(0 <= entry.n <= 2 for entry in task.metrics.values())
        # The overall score of every task is defined (subsets such as NoAns may be empty).
        first = next(iter(task.metrics.values()))
        assert first.value is not None, (name, first)


def test_generation_that_cannot_fit_is_refused_before_any_forward_pass(tiny_causal_lm, shared_data, tmp_path):
    # CNN/DailyMail asks for 142 new tokens; the tiny causal LM has 128 positions in all.
    from evalharness.errors import UsageError

    config = RunConfig(model=str(tiny_causal_lm), tasks=["glue/sst2", "summarization/cnn_dailymail"], data_dir=shared_data, limit=1, output=tmp_path)
    with pytest.raises(UsageError, match=r"summarization/cnn_dailymail: max_new_tokens=142 .* 128 positions"):
        run_evaluation(config)
    assert not (tmp_path / "samples").exists()  # nothing ran, not even SST-2
