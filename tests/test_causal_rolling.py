"""Rolling log-likelihoods: window plans, and scores against direct computations."""

from __future__ import annotations

import pytest

from evalharness.models import load_model
from evalharness.models.windows import plan_windows
from tests.conftest import CORPUS
from tests.test_causal_lm import direct_logprob, plain_ids, reference_model

LONG_TEXT = " ".join(CORPUS[:6])  # 94 tokens
MEDIUM_TEXT = " ".join(CORPUS[:4])  # 55 tokens


def as_pairs(n_tokens, max_length, stride):
    """The windows in lm-evaluation-harness's (context, continuation) form on ids 0..n-1."""
    tokens = list(range(n_tokens))
    full = [-100, *tokens]  # -100: the prefix token
    pairs = []
    for w in plan_windows(n_tokens, max_length=max_length, stride=stride):
        window_input = full[w.input_start : w.end]
        targets = tokens[w.start : w.end]
        pairs.append((window_input, targets))
    return pairs


def test_disjoint_windows_match_lm_evaluation_harness():
    """lm-evaluation-harness tests/test_utils.py::test_get_rolling_token_windows_v1 (34 tokens,
    max_seq_len 10, context_len 1), made disjoint with make_disjoint_window: the model input
    of each window is (context + continuation)[:-1]."""
    expected = [
        ([-100, *range(0, 9)], list(range(0, 10))),
        (list(range(9, 19)), list(range(10, 20))),
        (list(range(19, 29)), list(range(20, 30))),
        (list(range(23, 33)), list(range(30, 34))),  # the last window keeps a full input
    ]
    assert as_pairs(34, 10, 10) == expected


@pytest.mark.parametrize("n_tokens", [0, 1, 5, 10, 11, 34, 97])
@pytest.mark.parametrize(("max_length", "stride"), [(10, 10), (10, 3), (10, 1), (1, 1), (7, 5)])
def test_every_token_is_scored_exactly_once(n_tokens, max_length, stride):
    targets = []
    for window_input, window_targets in as_pairs(n_tokens, max_length, stride):
        assert 1 <= len(window_input) <= max_length and len(window_targets) <= len(window_input)
        # Each target is predicted from the tokens right before it in the window's input.
        assert window_input[len(window_input) - len(window_targets) + 1 :] == window_targets[:-1]
        targets.extend(window_targets)
    assert targets == list(range(n_tokens))


def test_sliding_windows_condition_on_max_length_minus_stride():
    for window_input, targets in as_pairs(40, 8, 2)[1:]:
        assert len(targets) <= 2 and len(window_input) == 8  # 6+ tokens of context each


def test_invalid_window_plans():
    with pytest.raises(ValueError, match="stride"):
        plan_windows(10, max_length=4, stride=5)
    with pytest.raises(ValueError, match="max_length"):
        plan_windows(10, max_length=0, stride=1)


def test_one_window_equals_direct_computation(tiny_causal_lm):
    adapter = load_model(str(tiny_causal_lm))
    model, tokenizer = reference_model(tiny_causal_lm)
    text = CORPUS[4]
    ids = [tokenizer.bos_token_id, *plain_ids(tokenizer, text)]
    (response,) = adapter.loglikelihood_rolling([text])
    assert response.n_tokens == len(ids) - 1
    assert response.logprob == pytest.approx(direct_logprob(model, ids, len(ids) - 1), abs=1e-4)
    assert response.logprob == pytest.approx(adapter.loglikelihood([("", text)])[0].logprob, abs=1e-5)


def per_token_reference(model, tokens, prefix, *, max_length, stride):
    """Each token's log-probability on its own forward pass, given the context the windowing
    definition assigns it: window k ends at e_k = min(max_length + k * stride, n) and its
    input starts at e_k - max_length (the prefix token conditions token 0)."""
    full = [prefix, *tokens]
    total, end, k = 0.0, 0, 0
    for i in range(len(tokens)):
        while i >= end:
            end = min(max_length + k * stride, len(tokens))
            k += 1
        start = max(0, end - max_length)
        total += direct_logprob(model, full[start : i + 2], 1)
    return total


@pytest.mark.parametrize(("window", "max_length", "stride"), [("disjoint", 8, None), ("sliding", 8, 3), ("sliding", 12, 5)])
def test_windows_equal_per_token_computation(tiny_causal_lm, window, max_length, stride):
    adapter = load_model(str(tiny_causal_lm))
    model, tokenizer = reference_model(tiny_causal_lm)
    tokens = plain_ids(tokenizer, MEDIUM_TEXT)
    assert len(tokens) > 3 * max_length
    (response,) = adapter.loglikelihood_rolling([MEDIUM_TEXT], window=window, max_length=max_length, stride=stride)
    expected = per_token_reference(
        model, tokens, tokenizer.bos_token_id, max_length=max_length, stride=stride or max_length
    )
    assert response.n_tokens == len(tokens)
    assert response.logprob == pytest.approx(expected, abs=1e-3)


def test_sliding_window_equals_the_hugging_face_guide(tiny_causal_lm):
    """The guide's loop ("Perplexity of fixed-length models"), run on the BOS-prefixed ids:
    windows of max_length + 1 ids start every `stride` ids; labels outside the last
    `end - prev_end` positions are -100; the loss is the mean NLL of the scored labels.
    With (n - max_length) a multiple of the stride the windows coincide with ours."""
    import torch

    adapter = load_model(str(tiny_causal_lm))
    model, tokenizer = reference_model(tiny_causal_lm)
    ids = [tokenizer.bos_token_id, *plain_ids(tokenizer, LONG_TEXT)]
    stride = 4
    max_length = 8 + (len(ids) - 1 - 8) % stride
    sequence = torch.tensor([ids])
    nll_sum, n_scored, prev_end = 0.0, 0, 0
    for begin in range(0, sequence.size(1), stride):
        end = min(begin + max_length + 1, sequence.size(1))
        target_length = end - prev_end
        input_ids = sequence[:, begin:end]
        labels = input_ids.clone()
        labels[:, :-target_length] = -100
        with torch.no_grad():
            loss = model(input_ids, labels=labels).loss
        scored = int((labels[:, 1:] != -100).sum())
        nll_sum += float(loss) * scored
        n_scored += scored
        prev_end = end
        if end == sequence.size(1):
            break
    (response,) = adapter.loglikelihood_rolling([LONG_TEXT], window="sliding", max_length=max_length, stride=stride)
    assert response.n_tokens == n_scored == len(ids) - 1
    assert response.logprob == pytest.approx(-nll_sum, abs=1e-3)


def test_windows_are_batched_across_documents(tiny_causal_lm):
    adapter = load_model(str(tiny_causal_lm))
    texts = [LONG_TEXT, CORPUS[1], "", CORPUS[3] * 3]
    settings = {"window": "sliding", "max_length": 16, "stride": 8}
    alone = [adapter.loglikelihood_rolling([text], batch_size=1, **settings)[0] for text in texts]
    together = adapter.loglikelihood_rolling(texts, batch_size=16, **settings)
    assert [r.n_tokens for r in alone] == [r.n_tokens for r in together]
    assert together[2].n_tokens == 0 and together[2].logprob == 0.0
    for a, b in zip(alone, together):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4)


def test_rolling_scores_only_the_texts_tokens_with_a_bos_adding_tokenizer(tiny_llama):
    """The Llama-style tokenizer would add '<s>' to the text; only the text's own tokens are
    scored, conditioned on one '<s>' (lm-evaluation-harness 0.4.13 would score a second one)."""
    adapter = load_model(str(tiny_llama))
    model, tokenizer = reference_model(tiny_llama)
    tokens = plain_ids(tokenizer, CORPUS[0])
    (response,) = adapter.loglikelihood_rolling([CORPUS[0]])
    assert response.n_tokens == len(tokens)
    ids = [tokenizer.bos_token_id, *tokens]
    assert response.logprob == pytest.approx(direct_logprob(model, ids, len(tokens)), abs=1e-4)


def test_append_eos_scores_the_end_of_each_text(tiny_causal_lm):
    # PTB-style corpora count one <eos> per sentence; append_eos makes the model predict it.
    adapter = load_model(str(tiny_causal_lm))
    model, tokenizer = reference_model(tiny_causal_lm)
    text = CORPUS[1]
    ids = [tokenizer.bos_token_id, *plain_ids(tokenizer, text), tokenizer.eos_token_id]
    (plain,) = adapter.loglikelihood_rolling([text])
    (ended,) = adapter.loglikelihood_rolling([text], append_eos=True)
    assert ended.n_tokens == plain.n_tokens + 1
    assert ended.logprob == pytest.approx(direct_logprob(model, ids, len(ids) - 1), abs=1e-4)
