"""The engine between formulations and adapters: cache, chunks, order, OOM back-off, budgets.

Real adapters on tiny checkpoints throughout; the only stand-ins are subclasses of the real
classifier adapter that fail on purpose (an injected CUDA out-of-memory error, a crash).
"""

from __future__ import annotations

import pytest
import torch

from evalharness.execution.cache import PredictionCache
from evalharness.execution.engine import Engine, compare_responses
from evalharness.models.batching import BatchStats, batching_scope, sorted_batches
from evalharness.models.classifier import SequenceClassifierAdapter
from evalharness.models.loading import load_model
from evalharness.types import ClassifyRequest, LoglikelihoodRequest, RequestKind
from tests.conftest import CORPUS

SENTENCES = [" ".join(CORPUS[i % 8].split()[: 3 + (i * 7) % 9]) for i in range(40)]
REQUESTS = [ClassifyRequest(text) for text in SENTENCES]


@pytest.fixture(scope="module")
def classifier(tiny_classifier):
    return load_model(str(tiny_classifier))


class _Counting(SequenceClassifierAdapter):
    """The real classifier, counting calls and optionally failing on purpose."""

    def __init__(self, base, *, oom_above=None, oom_from_call=1, crash_on_call=None):
        super().__init__(base.model, base.tokenizer, base.info)
        self.calls: list[tuple[int, int]] = []
        self.oom_above, self.oom_from_call, self.crash_on_call = oom_above, oom_from_call, crash_on_call

    def classify(self, inputs, *, batch_size=32):
        self.calls.append((len(inputs), batch_size))
        if self.crash_on_call == len(self.calls):
            raise KeyboardInterrupt("the job was pre-empted")
        too_big = self.oom_above is not None and batch_size > self.oom_above and len(inputs) > self.oom_above
        if too_big and len(self.calls) >= self.oom_from_call:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        return super().classify(inputs, batch_size=batch_size)


def _scores(responses):
    return [r.scores for r in responses]


def test_responses_come_back_in_request_order_not_chunk_order(classifier):
    responses, stats = Engine(classifier, batch_size=8).run(RequestKind.CLASSIFY, REQUESTS, {})
    direct = classifier.classify(REQUESTS, batch_size=1)
    for got, want in zip(responses, direct):
        assert got.scores == pytest.approx(want.scores, abs=1e-5)
    assert stats.requests == 40 and stats.misses == stats.unique and stats.hits == 0


def test_duplicate_requests_are_computed_once(classifier):
    adapter = _Counting(classifier)
    requests = REQUESTS[:5] * 4
    responses, stats = Engine(adapter, batch_size=64).run(RequestKind.CLASSIFY, requests, {})
    assert stats.requests == 20 and stats.unique == 5 and sum(n for n, _ in adapter.calls) == 5
    assert _scores(responses[:5]) == _scores(responses[5:10]) == _scores(responses[15:])


def test_a_second_run_at_another_batch_size_is_served_from_the_cache(classifier, tmp_path):
    with PredictionCache(tmp_path / "c.sqlite") as cache:
        first, _ = Engine(classifier, batch_size=4, cache=cache).run(RequestKind.CLASSIFY, REQUESTS, {})
        adapter = _Counting(classifier)
        second, stats = Engine(adapter, batch_size=16, cache=cache).run(RequestKind.CLASSIFY, REQUESTS, {})
    assert adapter.calls == [] and stats.hits == stats.unique and stats.misses == 0
    assert _scores(second) == _scores(first)  # bit for bit: floats stored exactly


def test_fresh_ignores_the_cache_and_overwrites_it(classifier, tmp_path):
    with PredictionCache(tmp_path / "c.sqlite") as cache:
        Engine(classifier, batch_size=8, cache=cache).run(RequestKind.CLASSIFY, REQUESTS, {})
        adapter = _Counting(classifier)
        _, stats = Engine(adapter, batch_size=8, cache=cache, fresh=True).run(RequestKind.CLASSIFY, REQUESTS, {})
        assert stats.hits == 0 and sum(n for n, _ in adapter.calls) == len(set(REQUESTS))
        assert len(cache) == len(set(REQUESTS))


def test_each_chunk_is_persisted_before_a_crash_and_the_rest_resumes_identically(classifier, tmp_path):
    # batch size 2: chunks of packed kinds are cut by tokens, a few rows' worth each
    uninterrupted, _ = Engine(classifier, batch_size=2).run(RequestKind.CLASSIFY, REQUESTS, {})
    with PredictionCache(tmp_path / "c.sqlite") as cache:
        crashing = _Counting(classifier, crash_on_call=3)
        with pytest.raises(KeyboardInterrupt):
            Engine(crashing, batch_size=2, cache=cache).run(RequestKind.CLASSIFY, REQUESTS, {})
        # the two chunks answered before the crash
        answered = sum(map(len, Engine(classifier, batch_size=2).plan_chunks(list(dict.fromkeys(REQUESTS)), RequestKind.CLASSIFY)[:2]))
        assert 0 < answered < len(REQUESTS) and len(cache) == answered
        resumed, stats = Engine(_Counting(classifier), batch_size=2, cache=cache).run(RequestKind.CLASSIFY, REQUESTS, {})
    assert stats.hits == answered and stats.misses == stats.unique - answered
    assert _scores(resumed) == _scores(uninterrupted)  # same chunks, so bit-identical


def test_out_of_memory_halves_the_batch_and_retries_even_late_in_the_run(classifier):
    requests = [ClassifyRequest(f"{text} , take {n}") for n, text in enumerate(SENTENCES * 3)]  # several chunks at batch size 16
    normal, _ = Engine(classifier, batch_size=16).run(RequestKind.CLASSIFY, requests, {})
    adapter = _Counting(classifier, oom_above=4, oom_from_call=2)  # the first chunk fits, a later one does not
    responses, stats = Engine(adapter, batch_size=16).run(RequestKind.CLASSIFY, requests, {})
    assert stats.oom_backoffs == 2 and stats.batch_size_start == 16 and stats.batch_size_final == 4
    assert stats.to_record()["batch_size"] == {"start": 16, "final": 4, "oom_backoffs": 2}
    for got, want in zip(responses, normal):
        assert got.scores == pytest.approx(want.scores, abs=1e-5)


def test_out_of_memory_at_batch_size_one_is_a_clear_model_error(classifier):
    from evalharness.errors import ModelError

    adapter = _Counting(classifier, oom_above=0)
    with pytest.raises(ModelError, match="out of memory even at batch size 1"):
        Engine(adapter, batch_size=2).run(RequestKind.CLASSIFY, REQUESTS[:3], {})


def test_token_budget_caps_padded_batch_size_and_keeps_scores():
    lengths = [5, 50, 7, 48, 30, 3, 3, 49]
    stats = BatchStats()
    with batching_scope(max_tokens=100, stats=stats):
        batches = sorted_batches(lengths, 32)
    assert sorted(i for b in batches for i in b) == list(range(8))
    assert all(len(b) * max(lengths[i] for i in b) <= 100 for b in batches)
    assert stats.real == sum(lengths) and 0 < stats.efficiency <= 1
    assert sorted_batches(lengths, 32) == [sorted(range(8), key=lambda i: (-lengths[i], i))]  # no scope: plain


def test_token_budget_improves_padding_efficiency_without_changing_results(classifier):
    plain, plain_stats = Engine(classifier, batch_size=40).run(RequestKind.CLASSIFY, REQUESTS, {})
    tight, tight_stats = Engine(classifier, batch_size=40, max_batch_tokens=64).run(RequestKind.CLASSIFY, REQUESTS, {})
    assert tight_stats.tokens.batches > plain_stats.tokens.batches
    assert tight_stats.tokens.efficiency >= plain_stats.tokens.efficiency
    assert tight_stats.tokens.real == plain_stats.tokens.real
    for a, b in zip(plain, tight):
        assert a.scores == pytest.approx(b.scores, abs=1e-5)


def test_check_determinism_reports_a_tiny_difference_at_another_batch_size(tiny_causal_lm):
    adapter = load_model(str(tiny_causal_lm))
    requests = [LoglikelihoodRequest(text, " the") for text in CORPUS[:8]]
    engine = Engine(adapter, batch_size=8)
    responses, stats = engine.run(RequestKind.LOGLIKELIHOOD, requests, {})
    report = engine.check_determinism(RequestKind.LOGLIKELIHOOD, requests, responses, {}, stats)
    assert report["sample"] == 8 and report["batch_size"] == 4
    assert report["max_abs_diff"] is not None and report["max_abs_diff"] < 1e-4
    assert report["non_numeric_mismatches"] == 0 and stats.to_record()["determinism"] == report


def test_compare_responses_flags_changed_text_and_numbers():
    from evalharness.types import GenerateResponse, RollingLoglikelihoodResponse

    assert compare_responses(RollingLoglikelihoodResponse(-3.0, 4), RollingLoglikelihoodResponse(-3.5, 4)) == (0.5, True)
    assert compare_responses(GenerateResponse("a", 1), GenerateResponse("b", 1)) == (0.0, False)
