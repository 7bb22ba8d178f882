"""The causal-LM adapter on tiny real checkpoints, checked against direct computations.

Reference numbers are computed here by hand: the model's logits over the concatenated ids
(no padding, no attention mask), a log-softmax in float64, and the log-probability of each
scored token read off at the position before it.
"""

from __future__ import annotations

import pytest

from evalharness.errors import UsageError
from evalharness.models import load_model
from evalharness.types import RequestKind
from tests.conftest import CORPUS

PAIRS = [
    ("the movie was", " great"),
    ("the movie was ", "dull ."),  # trailing space moves to the continuation
    ("Question: is it good?\nAnswer:", " yes"),
    ("a", " wonderful , moving and funny story about love and loss ."),
]


def reference_model(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def direct_logprob(model, ids, n_scored):
    """Summed log-probability of the last ``n_scored`` of ``ids``, each given all before it."""
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([ids[:-1]])).logits[0]
    logprobs = torch.log_softmax(logits.double(), dim=-1)
    return sum(logprobs[i - 1, ids[i]].item() for i in range(len(ids) - n_scored, len(ids)))


def plain_ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_kind_answers_and_tokenizer_notes(tiny_causal_lm):
    adapter = load_model(str(tiny_causal_lm))
    assert adapter.kind == "causal_lm" and adapter.info.architecture == "GPT2LMHeadModel"
    assert adapter.answers == {RequestKind.LOGLIKELIHOOD, RequestKind.LOGLIKELIHOOD_ROLLING, RequestKind.GENERATE}
    notes = adapter.info.notes
    assert notes["pad_token"] == "missing; set to '<|endoftext|>'"
    assert "left for generation" in notes["padding"] and notes["max_length"] == 128
    assert "adds no BOS" in notes["bos"] and "'<|endoftext|>', BOS" in notes["prefix_token"]


def test_model_kind_can_be_forced(tiny_causal_lm):
    assert load_model(str(tiny_causal_lm), "causal_lm").kind == "causal_lm"


def test_loglikelihood_equals_direct_computation(tiny_causal_lm):
    adapter = load_model(str(tiny_causal_lm))
    model, tokenizer = reference_model(tiny_causal_lm)
    responses = adapter.loglikelihood(PAIRS, batch_size=3)
    for (context, continuation), response in zip(PAIRS, responses):
        context, continuation = context.rstrip(), context[len(context.rstrip()) :] + continuation
        context_ids = plain_ids(tokenizer, context)
        whole = plain_ids(tokenizer, context + continuation)
        n_scored = len(whole) - len(context_ids)
        assert response.n_tokens == n_scored > 0 and not response.truncated
        assert response.logprob == pytest.approx(direct_logprob(model, whole, n_scored), abs=1e-4)
    # The moved space: "was " + "dull" is scored as "was" + " dull".
    assert responses[1].logprob == pytest.approx(adapter.loglikelihood([("the movie was", " dull .")])[0].logprob, abs=1e-6)


def test_is_greedy_on_a_constructed_continuation(tiny_causal_lm):
    """Continuations built from the model's own arg-max tokens are greedy; others are not."""
    import torch

    adapter = load_model(str(tiny_causal_lm))
    model, tokenizer = reference_model(tiny_causal_lm)
    checked = 0
    for context in CORPUS[:8]:
        ids = plain_ids(tokenizer, context)
        greedy = []
        with torch.no_grad():
            for _ in range(3):
                greedy.append(int(model(torch.tensor([ids + greedy])).logits[0, -1].argmax()))
        continuation = tokenizer.decode(greedy)
        if plain_ids(tokenizer, context + continuation) != ids + greedy:
            continue  # the text does not re-encode to the same tokens; try another context
        response = adapter.loglikelihood([(context, continuation)])[0]
        assert response.is_greedy and response.n_tokens == 3
        other = next(t for t in range(len(tokenizer)) if t != greedy[0] and tokenizer.decode([t]).strip())
        changed = tokenizer.decode([other, *greedy[1:]])
        assert not adapter.loglikelihood([(context, changed)])[0].is_greedy
        checked += 1
    assert checked >= 2


def test_empty_context_is_conditioned_on_bos(tiny_causal_lm, tiny_llama):
    for path, bos in ((tiny_causal_lm, "<|endoftext|>"), (tiny_llama, "<s>")):
        adapter = load_model(str(path))
        model, tokenizer = reference_model(path)
        assert tokenizer.bos_token == bos
        ids = [tokenizer.bos_token_id, *plain_ids(tokenizer, "the movie was great")]
        response = adapter.loglikelihood([("", "the movie was great")])[0]
        assert response.n_tokens == len(ids) - 1
        assert response.logprob == pytest.approx(direct_logprob(model, ids, len(ids) - 1), abs=1e-4)


def test_empty_context_without_bos_uses_eos(tiny_causal_lm_no_bos):
    adapter = load_model(str(tiny_causal_lm_no_bos))
    model, tokenizer = reference_model(tiny_causal_lm_no_bos)
    assert tokenizer.bos_token_id is None and tokenizer.eos_token == "</s>"
    assert "EOS (the tokenizer has no BOS)" in adapter.info.notes["prefix_token"]
    ids = [tokenizer.eos_token_id, *plain_ids(tokenizer, "a charming film")]
    response = adapter.loglikelihood([("", "a charming film")])[0]
    assert response.logprob == pytest.approx(direct_logprob(model, ids, len(ids) - 1), abs=1e-4)
    rolling = adapter.loglikelihood_rolling(["a charming film"])[0]
    assert rolling.logprob == pytest.approx(response.logprob, abs=1e-5)


def test_bos_adding_tokenizer_keeps_bos_before_the_context(tiny_llama):
    adapter = load_model(str(tiny_llama))
    model, tokenizer = reference_model(tiny_llama)
    assert "adds BOS '<s>'" in adapter.info.notes["bos"]
    context, continuation = "the plot was", " dull"
    whole = tokenizer(context + continuation)["input_ids"]  # the tokenizer's default: BOS first
    assert whole[0] == tokenizer.bos_token_id
    n_scored = len(whole) - len(tokenizer(context)["input_ids"])
    response = adapter.loglikelihood([(context, continuation)])[0]
    assert response.logprob == pytest.approx(direct_logprob(model, whole, n_scored), abs=1e-4)


def test_long_inputs_are_left_truncated_and_flagged(tiny_causal_lm):
    adapter = load_model(str(tiny_causal_lm), max_length=16)
    model, tokenizer = reference_model(tiny_causal_lm)
    context, continuation = " ".join(CORPUS[:3]), " the end"
    whole = plain_ids(tokenizer, context + continuation)
    n_scored = len(whole) - len(plain_ids(tokenizer, context))
    long, short = adapter.loglikelihood([(context, continuation), ("the movie", " was")])
    assert long.truncated and not short.truncated and long.n_tokens == n_scored
    assert long.logprob == pytest.approx(direct_logprob(model, whole[-17:], n_scored), abs=1e-4)
    with pytest.raises(UsageError, match="more than the model's maximum input length 16"):
        adapter.loglikelihood([("a", " " + CORPUS[4] * 2)])


def test_unscorable_requests_are_usage_errors(tiny_causal_lm):
    adapter = load_model(str(tiny_causal_lm))
    with pytest.raises(UsageError, match="request 0: the continuation '' encodes to no tokens"):
        adapter.loglikelihood([("the movie", "")])
    with pytest.raises(UsageError, match="sliding windows only"):
        adapter.loglikelihood_rolling(["a b"], window="disjoint", stride=4)
    with pytest.raises(UsageError, match="window must be one of"):
        adapter.loglikelihood_rolling(["a b"], window="strided")
    with pytest.raises(UsageError, match="maximum input length 128"):
        adapter.loglikelihood_rolling(["a b"], max_length=512)
    with pytest.raises(UsageError, match="stop sequences must be non-empty"):
        adapter.generate(["a"], stop=[""])


def test_batch_size_does_not_change_loglikelihoods(tiny_causal_lm, record_property):
    """Batch size 1 vs 16 on choice-style requests: differences are float noise, no flips."""
    adapter = load_model(str(tiny_causal_lm))
    prompts = [f"{sentence}\nQuestion: positive or negative?\nAnswer:" for sentence in CORPUS[:8]]
    pairs = [(prompt, choice) for prompt in prompts for choice in (" negative", " positive")]
    one = adapter.loglikelihood(pairs, batch_size=1)
    many = adapter.loglikelihood(pairs, batch_size=16)
    difference = max(abs(a.logprob - b.logprob) for a, b in zip(one, many))
    record_property("max_abs_loglikelihood_difference", difference)
    print(f"max |loglikelihood(batch 1) - loglikelihood(batch 16)| = {difference:.3g}")
    assert difference < 1e-4
    assert [a.is_greedy for a in one] == [b.is_greedy for b in many]
    for index in range(0, len(pairs), 2):
        margin_one = one[index].logprob - one[index + 1].logprob
        margin_many = many[index].logprob - many[index + 1].logprob
        if abs(margin_one) > 1e-4:  # only exact ties may break differently
            assert (margin_one > 0) == (margin_many > 0)


def test_options_sharing_a_context_share_one_forward_pass(tiny_causal_lm):
    """Single-token options of one question are read off one forward pass of the context,
    with the same log-probabilities as scoring each option on its own."""
    adapter = load_model(str(tiny_causal_lm))
    model, tokenizer = reference_model(tiny_causal_lm)
    words = [" the", " movie", " was", " good", " bad", " a", " and", " great", " ."]
    options = [word for word in words if len(plain_ids(tokenizer, "the movie was" + word)) == len(plain_ids(tokenizer, "the movie was")) + 1]
    assert len(options) >= 3, options
    requests = [("the movie was", option) for option in options] + [("a different context", " a")]
    calls = []
    # The decoder stack runs once per pass in both layouts (the packed one skips the LM head).
    hook = adapter.model.base_model.register_forward_hook(lambda module, args, kwargs_or_output: calls.append(1))
    try:
        shared = adapter.loglikelihood(requests, batch_size=1)
    finally:
        hook.remove()
    assert 1 <= len(calls) <= 2  # at most one per distinct context (a packed row may hold both), not one per option
    for (context, continuation), response in zip(requests, shared):
        ids = plain_ids(tokenizer, context + continuation)
        assert response.logprob == pytest.approx(direct_logprob(model, ids, 1), abs=1e-4)
