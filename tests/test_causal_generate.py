"""Batched generation: left padding, stop strings per sequence, truncation, beam search."""

from __future__ import annotations

import pytest

from evalharness.models import load_model
from evalharness.models.stopping import cut_at_stop
from tests.conftest import CORPUS
from tests.test_causal_lm import plain_ids, reference_model

PROMPTS = ["the movie was", CORPUS[4], "is", CORPUS[6], "a boring"]


def test_batched_generation_equals_unbatched_and_transformers(tiny_llama):
    import torch

    adapter = load_model(str(tiny_llama))
    model, tokenizer = reference_model(tiny_llama)
    batched = adapter.generate(PROMPTS, batch_size=8, max_new_tokens=10)
    alone = [adapter.generate([prompt], batch_size=1, max_new_tokens=10)[0] for prompt in PROMPTS]
    assert batched == alone
    for prompt, response in zip(PROMPTS, batched):  # a plain greedy transformers call
        ids = torch.tensor([tokenizer(prompt)["input_ids"]])
        output = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=10, do_sample=False, pad_token_id=tokenizer.eos_token_id)
        new = output[0, ids.shape[1] :].tolist()
        if tokenizer.eos_token_id in new:
            new = new[: new.index(tokenizer.eos_token_id)]
        assert response.text == tokenizer.decode(new, skip_special_tokens=True)
        assert response.n_tokens == len(new) and not response.truncated


def test_stop_sequences_end_each_sequence_of_a_batch(tiny_llama):
    adapter = load_model(str(tiny_llama))
    free = adapter.generate(PROMPTS, batch_size=8, max_new_tokens=12)
    # A stop string from the middle of some generations: those stop early, others run on.
    stops = sorted({response.text[4:6] for response in free[:3] if len(response.text) >= 8})
    assert stops
    stopped = adapter.generate(PROMPTS, batch_size=8, max_new_tokens=12, stop=stops)
    assert stopped == [adapter.generate([p], batch_size=1, max_new_tokens=12, stop=stops)[0] for p in PROMPTS]
    early = 0
    for before, after in zip(free, stopped):
        assert after.text == cut_at_stop(before.text, stops)
        assert not any(stop in after.text for stop in stops)
        if after.text != before.text:
            early += 1
            assert after.n_tokens < before.n_tokens  # generation really stopped, not just the text
        else:
            assert after.n_tokens == before.n_tokens
    assert early >= 1


def test_cut_at_stop_uses_the_earliest_stop():
    assert cut_at_stop("answer: yes\nQ: next", ["Q:", "\n"]) == "answer: yes"
    assert cut_at_stop("no stop here", ["\n"]) == "no stop here"


def test_long_prompts_are_left_truncated_and_flagged(tiny_llama):
    """max_length 24 with 8 new tokens leaves 16 prompt tokens: the last 16 are kept."""
    import torch

    adapter = load_model(str(tiny_llama), max_length=24)
    model, tokenizer = reference_model(tiny_llama)
    long_prompt = " ".join(CORPUS[:3])
    long, short = adapter.generate([long_prompt, "the movie"], max_new_tokens=8)
    assert long.truncated and not short.truncated
    kept = torch.tensor([tokenizer(long_prompt)["input_ids"][-16:]])
    output = model.generate(kept, attention_mask=torch.ones_like(kept), max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    new = output[0, 16:].tolist()
    if tokenizer.eos_token_id in new:
        new = new[: new.index(tokenizer.eos_token_id)]
    assert long.text == tokenizer.decode(new, skip_special_tokens=True)


def test_beam_search_and_decoding_settings(tiny_llama):
    adapter = load_model(str(tiny_llama))
    greedy = adapter.generate(PROMPTS[:2], max_new_tokens=6)
    beams = adapter.generate(PROMPTS[:2], max_new_tokens=6, num_beams=3)
    assert all(r.n_tokens <= 6 for r in greedy + beams)
    assert beams == [adapter.generate([p], max_new_tokens=6, num_beams=3)[0] for p in PROMPTS[:2]]
    shorter = adapter.generate(PROMPTS[:2], max_new_tokens=3)
    assert all(r.n_tokens <= 3 for r in shorter)


def test_empty_prompt_starts_from_bos(tiny_causal_lm):
    adapter = load_model(str(tiny_causal_lm))
    (response,) = adapter.generate([""], max_new_tokens=4)
    assert response.n_tokens <= 4 and not response.truncated


def test_too_many_new_tokens_is_a_usage_error(tiny_causal_lm):
    from evalharness.errors import UsageError

    with pytest.raises(UsageError, match="leave room for the prompt"):
        load_model(str(tiny_causal_lm)).generate(["a"], max_new_tokens=128)
