"""SQuAD-style span decoding on constructed logits: offsets, answer length, windows, null.

Expected values are computed here independently (plain softmax / logit sums) following the
two references the decoder replicates: transformers' question-answering pipeline
(probability scoring) and BERT's run_squad.py / transformers' run_qa.py (logit scoring).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from evalharness.errors import UsageError
from evalharness.models.spans import SpanDecoding, Window, decode_answer

CONTEXT = "The Café du Monde  opened in 1862 in New Orleans, Louisiana."
# Context tokens as a WordPiece tokenizer would give them: "Orleans" in two pieces.
PIECES = [(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]", CONTEXT)]
split = next(i for i, (s, e) in enumerate(PIECES) if CONTEXT[s:e] == "Orleans")
PIECES[split : split + 1] = [(PIECES[split][0], PIECES[split][0] + 2), (PIECES[split][0] + 2, PIECES[split][1])]
WORDS = list(range(split + 1)) + [split] + list(range(split + 1, len(PIECES) - 1))
QUESTION_TOKENS = 3  # [CLS] q q [SEP] precede the context; [SEP] follows it


def token(text: str, occurrence: int = 0) -> int:
    """Index of a context piece in the full window (after [CLS], 2 question tokens, [SEP])."""
    matches = [i for i, (s, e) in enumerate(PIECES) if CONTEXT[s:e] == text]
    return QUESTION_TOKENS + 1 + matches[occurrence]


def window(starts: dict[int, float], ends: dict[int, float], *, null: float = -5.0, pieces=None) -> Window:
    """A window over ``pieces`` (context piece indices) with the given logits (default 0)."""
    pieces = list(range(len(PIECES))) if pieces is None else pieces
    size = QUESTION_TOKENS + 1 + len(pieces) + 1
    start_logits, end_logits = np.zeros(size), np.zeros(size)
    start_logits[0] = end_logits[0] = null
    for index, value in starts.items():
        start_logits[index] = value
    for index, value in ends.items():
        end_logits[index] = value
    answerable = np.zeros(size, dtype=bool)
    answerable[QUESTION_TOKENS + 1 : QUESTION_TOKENS + 1 + len(pieces)] = True
    offsets = [(0, 0)] * (QUESTION_TOKENS + 1) + [PIECES[p] for p in pieces] + [(0, 0)]
    word_ids = [None] + [0, 1] + [None] + [WORDS[p] for p in pieces] + [None]
    return Window(start_logits, end_logits, answerable, offsets, word_ids, 0)


def softmax_over_domain(logits: np.ndarray, domain: np.ndarray) -> np.ndarray:
    values = np.where(domain, logits, -np.inf)
    values = np.exp(values - values.max())
    return values / values.sum()


def test_answer_is_a_slice_of_the_original_context():
    answer = decode_answer(CONTEXT, [window({token("Café"): 8}, {token("Monde"): 8})], SpanDecoding())
    assert answer.text == "Café du Monde" and answer.start == CONTEXT.index("Café")
    assert CONTEXT[answer.start : answer.start + len(answer.text)] == answer.text
    spaced = decode_answer(CONTEXT, [window({token("Monde"): 8}, {token("opened"): 8})], SpanDecoding())
    assert spaced.text == "Monde  opened"  # original spacing kept, not re-joined tokens


def test_probability_score_is_the_product_of_window_softmaxes():
    w = window({token("1862"): 6, token("New"): 3}, {token("1862"): 6, token("Louisiana"): 2})
    answer = decode_answer(CONTEXT, [w], SpanDecoding())
    domain = w.answerable.copy()
    domain[0] = True
    expected = softmax_over_domain(w.start_logits, domain)[token("1862")] * softmax_over_domain(w.end_logits, domain)[token("1862")]
    assert answer.text == "1862" and answer.score == pytest.approx(expected, rel=1e-12)
    logit = decode_answer(CONTEXT, [w], SpanDecoding(scoring="logit"))
    assert logit.text == "1862" and logit.score == pytest.approx(12.0)


def test_max_answer_length_and_order_constraints():
    far = window({token("Café"): 9, token("The"): -30}, {token("Louisiana"): 9, token("du"): 4, token("The"): 20})
    long = decode_answer(CONTEXT, [far], SpanDecoding(max_answer_length=30))
    assert long.text == "Café du Monde  opened in 1862 in New Orleans, Louisiana"  # end before start never wins
    short = decode_answer(CONTEXT, [far], SpanDecoding(max_answer_length=2))
    assert short.text == "Café du"  # the best span of at most 2 tokens
    one = decode_answer(CONTEXT, [far], SpanDecoding(max_answer_length=1, scoring="logit"))
    assert one.text == "Café" and one.score == pytest.approx(9.0)


def test_align_to_words_widens_word_pieces():
    leans = window({token("leans"): 9}, {token("leans"): 9})
    assert decode_answer(CONTEXT, [leans], SpanDecoding()).text == "Orleans"
    assert decode_answer(CONTEXT, [leans], SpanDecoding(align_to_words=False)).text == "leans"


def test_overlapping_windows_sum_equal_texts_for_probability_and_take_the_max_for_logits():
    # Windows share context pieces 3..5 ("Monde", "opened", "in"); "opened" is a moderate
    # answer in both, "Café" a stronger one in the first window only.
    first = window({token("Café"): 3.0, token("opened"): 2.6}, {token("Café"): 3.0, token("opened"): 2.6}, pieces=list(range(0, 6)))
    second_pieces = list(range(3, len(PIECES)))
    second = window({}, {}, pieces=second_pieces)
    local = QUESTION_TOKENS + 1 + second_pieces.index(token("opened") - QUESTION_TOKENS - 1)
    second.start_logits[local] = second.end_logits[local] = 2.6

    def single(w: Window, index: int) -> float:
        domain = w.answerable.copy()
        domain[0] = True
        return softmax_over_domain(w.start_logits, domain)[index] * softmax_over_domain(w.end_logits, domain)[index]

    cafe = single(first, token("Café"))
    opened = single(first, token("opened")) + single(second, local)
    assert single(first, token("opened")) < cafe < opened  # only the sum beats "Café"
    probability = decode_answer(CONTEXT, [first, second], SpanDecoding())
    assert probability.text == "opened" and probability.score == pytest.approx(opened, rel=1e-9)
    logit = decode_answer(CONTEXT, [first, second], SpanDecoding(scoring="logit"))
    assert logit.text == "Café" and logit.score == pytest.approx(6.0)


def test_null_answer_against_threshold():
    w = window({token("Monde"): 2}, {token("Monde"): 2}, null=4)
    v1 = decode_answer(CONTEXT, [w], SpanDecoding(scoring="logit"))
    assert v1.text == "Monde" and v1.no_answer_probability is None  # no-answer not allowed
    v2 = decode_answer(CONTEXT, [w], SpanDecoding(scoring="logit", allow_no_answer=True))
    expected = 1 / (1 + math.exp(-(8.0 - 4.0)))  # logistic(null - best)
    assert v2.text == "" and v2.start is None and v2.score == pytest.approx(8.0)
    assert v2.no_answer_probability == pytest.approx(expected)
    lenient = decode_answer(CONTEXT, [w], SpanDecoding(scoring="logit", allow_no_answer=True, null_threshold=4.5))
    assert lenient.text == "Monde" and lenient.no_answer_probability == pytest.approx(expected)
    probability = decode_answer(CONTEXT, [w], SpanDecoding(allow_no_answer=True))
    assert probability.text == "" and 0.5 < probability.no_answer_probability < 1


def test_null_score_is_the_minimum_over_windows():
    confident = window({token("Café"): 5}, {token("Café"): 5}, null=1, pieces=list(range(0, 6)))
    unsure = window({}, {}, null=9, pieces=list(range(3, len(PIECES))))
    answer = decode_answer(CONTEXT, [confident, unsure], SpanDecoding(scoring="logit", allow_no_answer=True))
    assert answer.text == "Café" and answer.no_answer_probability == pytest.approx(1 / (1 + math.exp(-(2 - 10))))


def test_no_answerable_tokens_and_bad_settings():
    empty = window({}, {}, pieces=[])
    with pytest.raises(UsageError, match="no tokens that can form an answer"):
        decode_answer(CONTEXT, [empty], SpanDecoding())
    assert decode_answer(CONTEXT, [empty], SpanDecoding(allow_no_answer=True)).text == ""
    with pytest.raises(UsageError, match="unknown span scoring"):
        SpanDecoding(scoring="softmax")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="at least 1"):
        SpanDecoding(max_answer_length=0)
