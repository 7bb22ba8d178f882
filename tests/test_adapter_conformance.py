"""One conformance suite every adapter passes, per request kind it answers (the protocols of
``evalharness.models.protocols``), so a new backend is held to what the engine relies on:

- responses come back in request order (one per request);
- the batch size does not change the answers beyond float noise;
- inputs that do not fit the model are flagged ``truncated`` (rolling log-likelihoods never
  truncate: they window);
- ``n_tokens`` counts what the kind says: the continuation's tokens, the text's tokens
  (+ EOS when asked), the generated tokens (at most ``max_new_tokens``);
- generated text is returned as decoded up to the first stop string, never stripped (the
  formulation decides whitespace), and never contains a stop string.
"""

from __future__ import annotations

import math

import pytest

from evalharness.models import load_model
from evalharness.testing.scripted import ScriptedAdapter
from evalharness.types import (
    ClassifyRequest,
    GenerationOptions,
    LoglikelihoodRequest,
    PseudoLoglikelihoodRequest,
    RequestKind,
    RollingOptions,
    SpanRequest,
)

WORDS = "the movie was great but the plot was dull and the acting is awful".split()


def _scripted() -> ScriptedAdapter:
    return ScriptedAdapter(
        classify_fn=lambda r: (len(r.text) % 3, 1.0),
        loglikelihood_fn=lambda r: -0.5 * len(r.continuation.split()) - 0.01 * len(r.context),
        rolling_fn=lambda text, options: -0.3 * len(text.split()),
        generate_fn=lambda prompt, options: " " + " ".join(prompt.split()[: options.max_new_tokens]) + " .\nnext",
        answer_fn=lambda r, options: r.context.split()[0],
        pseudo_fn=lambda r: -0.2 * len(r.text.split()),
    )


ADAPTERS = ["tiny_causal_lm", "tiny_llama", "tiny_t5", "tiny_bart", "tiny_classifier", "tiny_qa_model", "tiny_masked_lm", "scripted"]


@pytest.fixture(params=ADAPTERS)
def adapter(request):
    if request.param == "scripted":
        return _scripted()
    return load_model(str(request.getfixturevalue(request.param)))


def _texts(count: int, start: int = 0) -> list[str]:
    return [" ".join(WORDS[(start + i) % len(WORDS) : (start + i) % len(WORDS) + 2 + i % 5]) or "the movie" for i in range(count)]


def _requests(kind: RequestKind) -> list:
    texts = _texts(6)
    return {
        RequestKind.CLASSIFY: [ClassifyRequest(t, None if i % 2 else "a wonderful story") for i, t in enumerate(texts)],
        RequestKind.LOGLIKELIHOOD: [LoglikelihoodRequest(t, " " + WORDS[i]) for i, t in enumerate(texts)],
        RequestKind.LOGLIKELIHOOD_ROLLING: texts,
        RequestKind.GENERATE: texts,
        RequestKind.EXTRACT_SPAN: [SpanRequest("what was dull ?", t + " .") for t in texts],
        RequestKind.PSEUDO_LOGLIKELIHOOD: [PseudoLoglikelihoodRequest(t) for t in texts],
    }[kind]


def _call(adapter, kind: RequestKind, requests: list, batch_size: int) -> list:
    calls = {
        RequestKind.CLASSIFY: lambda: adapter.classify(requests, batch_size=batch_size),
        RequestKind.LOGLIKELIHOOD: lambda: adapter.loglikelihood(requests, batch_size=batch_size),
        RequestKind.LOGLIKELIHOOD_ROLLING: lambda: adapter.loglikelihood_rolling(requests, batch_size=batch_size, options=RollingOptions()),
        RequestKind.GENERATE: lambda: adapter.generate(requests, batch_size=batch_size, options=GenerationOptions(max_new_tokens=4)),
        RequestKind.EXTRACT_SPAN: lambda: adapter.answer(requests, batch_size=batch_size, options=_span_options(adapter)),
        RequestKind.PSEUDO_LOGLIKELIHOOD: lambda: adapter.pseudo_loglikelihood(requests, batch_size=batch_size),
    }
    return calls[kind]()


def _span_options(adapter):
    from evalharness.types import SpanOptions

    return SpanOptions(max_length=64, doc_stride=16)


def _numbers(response) -> list[float]:
    values = []
    for name in ("scores", "logprob", "score", "no_answer_probability"):
        value = getattr(response, name, None)
        if isinstance(value, tuple):
            values.extend(value)
        elif isinstance(value, float):
            values.append(value)
    return values


def _same(a, b) -> None:
    assert type(a) is type(b)
    for x, y in zip(_numbers(a), _numbers(b), strict=True):
        assert math.isclose(x, y, rel_tol=1e-4, abs_tol=1e-4), (a, b)
    for name in ("text", "n_tokens", "truncated", "is_greedy", "start"):
        if hasattr(a, name) and name != "is_greedy":
            assert getattr(a, name) == getattr(b, name), (name, a, b)


def test_every_answered_kind_keeps_request_order_and_ignores_batch_size(adapter):
    assert adapter.answers, adapter
    for kind in sorted(adapter.answers, key=lambda k: k.value):
        requests = _requests(kind)
        together = _call(adapter, kind, requests, batch_size=len(requests))
        assert len(together) == len(requests)
        one_by_one = _call(adapter, kind, requests, batch_size=1)
        reversed_order = _call(adapter, kind, requests[::-1], batch_size=3)[::-1]
        for a, b, c in zip(together, one_by_one, reversed_order, strict=True):
            _same(a, b)
            _same(a, c)


def test_inputs_too_long_for_the_model_are_flagged_truncated(adapter):
    if isinstance(adapter, ScriptedAdapter):
        pytest.skip("the scripted adapter has no input limit")
    long_text = " ".join(WORDS * 200)
    flagged = {
        RequestKind.CLASSIFY: lambda: adapter.classify([ClassifyRequest("the movie"), ClassifyRequest(long_text)]),
        RequestKind.LOGLIKELIHOOD: lambda: adapter.loglikelihood([LoglikelihoodRequest("the", " movie"), LoglikelihoodRequest(long_text, " movie")]),
        RequestKind.GENERATE: lambda: adapter.generate(["the movie", long_text], options=GenerationOptions(max_new_tokens=2)),
        RequestKind.EXTRACT_SPAN: lambda: adapter.answer([SpanRequest("what ?", "the movie ."), SpanRequest(long_text, "the movie .")],
                                                          options=_span_options(adapter)),
    }
    for kind in adapter.answers & set(flagged):
        short, long = flagged[kind]()
        assert (short.truncated, long.truncated) == (False, True), kind


def test_rolling_log_likelihoods_window_long_texts_instead_of_truncating(adapter):
    if RequestKind.LOGLIKELIHOOD_ROLLING not in adapter.answers or isinstance(adapter, ScriptedAdapter):
        pytest.skip("no rolling log-likelihoods")
    long_text = " ".join(WORDS * 40)
    (response,) = adapter.loglikelihood_rolling([long_text], options=RollingOptions())
    expected = len(adapter.tokenizer(long_text, add_special_tokens=False)["input_ids"])
    assert response.n_tokens == expected and not hasattr(response, "truncated")
    (with_eos,) = adapter.loglikelihood_rolling([long_text], options=RollingOptions(append_eos=True))
    assert with_eos.n_tokens == expected + 1


def test_loglikelihood_counts_the_continuation_tokens(adapter):
    if RequestKind.LOGLIKELIHOOD not in adapter.answers:
        pytest.skip("no log-likelihoods")
    one, three = adapter.loglikelihood([LoglikelihoodRequest("the movie was", " great"),
                                        LoglikelihoodRequest("the movie was", " great but the")])
    assert 1 <= one.n_tokens < three.n_tokens
    assert one.logprob <= 0.0 and three.logprob <= 0.0


def test_generations_are_not_stripped_never_contain_a_stop_string_and_respect_the_budget(adapter):
    if RequestKind.GENERATE not in adapter.answers:
        pytest.skip("no generation")
    prompts = _texts(4)
    free = adapter.generate(prompts, options=GenerationOptions(max_new_tokens=6))
    assert all(response.n_tokens <= 6 for response in free)
    stops = sorted({response.text[len(response.text) // 2 :][:2] for response in free if len(response.text) > 3} - {""}) or ["\n"]
    stopped = adapter.generate(prompts, options=GenerationOptions(max_new_tokens=6, stop=tuple(stops)))
    for original, cut in zip(free, stopped, strict=True):
        assert not any(stop in cut.text for stop in stops), (stops, cut.text)
        assert original.text.startswith(cut.text), (original.text, cut.text)  # cut, never stripped or altered


def test_every_adapter_is_a_loaded_model_with_the_capabilities_its_formulations_ask_for(adapter):
    """The runner and the formulations see adapters only through ``LoadedModel`` and the
    narrower capability protocols; an adapter of each kind provides the ones its formulations
    ask for (``models.protocols.capability``), so none fails halfway through a run."""
    from evalharness.models import protocols

    assert isinstance(adapter, protocols.LoadedModel)
    needs = {
        "sequence_classifier": [protocols.LabelHead],
        "extractive_qa": [protocols.SpanWindows],
        "masked_lm": [protocols.MaskedPositions],
        "seq2seq": [protocols.DecodesSequences, protocols.ChecksGeneration],
        "causal_lm": [protocols.TextWindows, protocols.ChecksGeneration],
    }[adapter.kind]
    assert [protocol.__name__ for protocol in needs if not isinstance(adapter, protocol)] == []


def test_a_formulation_given_an_adapter_without_its_capability_refuses_naming_it(tmp_path):
    """A backend that answers the request kind but lacks what the formulation also needs (a
    masked LM's token positions) is refused at prepare, by name, not with an AttributeError."""
    from evalharness.errors import ModelError
    from evalharness.prompting.base import FormulationOptions
    from evalharness.prompting.masked import PseudoLoglikelihood

    adapter = ScriptedAdapter(pseudo_fn=lambda request: -1.0)
    with pytest.raises(ModelError, match="pseudo_loglikelihood needs MaskedPositions, which this causal_lm adapter lacks"):
        PseudoLoglikelihood().prepare(None, adapter, FormulationOptions())
