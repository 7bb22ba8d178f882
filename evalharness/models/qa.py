"""Extractive question-answering heads (``AutoModelForQuestionAnswering``), SQuAD style.

A context longer than the model is split into overlapping windows (``max_length`` tokens
each, consecutive windows sharing ``doc_stride`` context tokens; only the context is ever
cut, as in transformers' ``run_qa.py`` and ``question-answering`` pipeline). Windows of all
questions are batched by length; their logits are decoded by :mod:`evalharness.models.spans`
into one answer per question whose text is a slice of the original context. A question too
long to leave room for the context is cut to ``max_question_length`` tokens and flagged as
truncated; nothing else is truncated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
from numpy.typing import NDArray

from evalharness.errors import ModelError, UsageError
from evalharness.jsonvalues import JSONObject
from evalharness.models.base import options_with
from evalharness.models.batching import filled
from evalharness.models.encoders import EncoderAdapter
from evalharness.models.spans import SpanDecoding, Window, decode_answer
from evalharness.types import RequestKind, SpanOptions, SpanRequest, SpanResponse

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["DEFAULT_DOC_STRIDE", "DEFAULT_MAX_LENGTH", "ExtractiveQAAdapter"]

# transformers' question-answering pipeline defaults: max_seq_len = min(model limit, 384),
# doc_stride = min(max_seq_len // 2, 128).
DEFAULT_MAX_LENGTH = 384
DEFAULT_DOC_STRIDE = 128

PairInput = tuple[str, str] | SpanRequest
StartEnd: TypeAlias = tuple[NDArray[np.float32], NDArray[np.float32]]  # a window's start and end logits


@dataclasses.dataclass
class _Encoded:
    windows: list[dict[str, list[int]]]  # model inputs per window
    meta: list[tuple[int, NDArray[np.bool_], list[tuple[int, int]], list[int | None], int]]  # owner, answerable, offsets, word ids, null index


class ExtractiveQAAdapter(EncoderAdapter):
    kind = "extractive_qa"
    answers = frozenset({RequestKind.EXTRACT_SPAN})
    auto_class_name = "AutoModelForQuestionAnswering"

    @classmethod
    def prepare_tokenizer(cls, tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel) -> JSONObject:
        notes = super().prepare_tokenizer(tokenizer, model)
        if not getattr(tokenizer, "is_fast", False):
            raise ModelError(
                f"{model.name_or_path}: extractive QA maps answers back to the context through "
                f"character offsets, which need a fast (tokenizers-backed) tokenizer; "
                f"{type(tokenizer).__name__} is not one"
            )
        if tokenizer.padding_side == "left":
            notes["qa_input_order"] = "context, question (the tokenizer pads left, as XLNet-style models expect)"
        return notes

    @property
    def question_first(self) -> bool:
        """The pipeline's rule: tokenizers that pad on the left put the context first."""
        return self.tokenizer.padding_side != "left"

    def windowing(self, max_length: int | None = None, doc_stride: int | None = None) -> tuple[int, int]:
        """Effective ``(max_length, doc_stride)``: defaults as transformers' pipeline, clipped to
        the model's limit."""
        limit = self.max_length
        length = min(DEFAULT_MAX_LENGTH if max_length is None else max_length, limit)
        stride = min(length // 2, DEFAULT_DOC_STRIDE) if doc_stride is None else doc_stride
        room = length - self.tokenizer.num_special_tokens_to_add(pair=True) - 1
        if length < 8 or stride < 0 or stride >= room:
            raise UsageError(
                f"doc_stride={stride} does not fit windows of max_length={length} tokens "
                f"(the model accepts at most {limit}); doc_stride must be below {max(room, 0)}"
            )
        return length, stride

    def _fit_questions(self, questions: list[str], length: int, stride: int, max_question_length: int) -> tuple[list[str], list[bool]]:
        """Cut questions that leave no room for ``stride + 1`` context tokens per window."""
        room = length - self.tokenizer.num_special_tokens_to_add(pair=True) - stride - 1
        cap = min(max_question_length, room)
        if cap < 1:
            raise UsageError(f"max_question_length={max_question_length} leaves no room for questions")
        encoded = self.tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
        fitted, cut = list(questions), [False] * len(questions)
        for index, (ids, offsets) in enumerate(zip(encoded["input_ids"], encoded["offset_mapping"])):
            keep = cap
            size = len(ids)
            while size > cap:  # re-tokenizing a cut word can give more pieces: cut again
                if keep == 0:
                    raise UsageError(f"answer: question {index} cannot be cut to {cap} tokens")
                fitted[index] = questions[index][: offsets[keep - 1][1]]
                cut[index] = True
                size = len(self.tokenizer(fitted[index], add_special_tokens=False)["input_ids"])
                keep -= 1
        return fitted, cut

    def _encode(self, questions: list[str], contexts: list[str], length: int, stride: int) -> _Encoded:
        first, second = (questions, contexts) if self.question_first else (contexts, questions)
        encoded = self.tokenizer(
            first,
            second,
            truncation="only_second" if self.question_first else "only_first",
            max_length=length,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        context_sequence = 1 if self.question_first else 0
        names = [name for name in self.tokenizer.model_input_names if name in encoded]
        cls_id = self.tokenizer.cls_token_id
        result = _Encoded([], [])
        for index, owner in enumerate(encoded["overflow_to_sample_mapping"]):
            ids = encoded["input_ids"][index]
            answerable = np.array([sid == context_sequence for sid in encoded.sequence_ids(index)], dtype=bool)
            null_index = ids.index(cls_id) if cls_id is not None and cls_id in ids else 0
            result.windows.append({name: encoded[name][index] for name in names})
            result.meta.append((owner, answerable, encoded["offset_mapping"][index], encoded.word_ids(index), null_index))
        return result

    def _logits(self, windows: list[dict[str, list[int]]], batch_size: int) -> list[StartEnd]:
        results: list[StartEnd | None] = [None] * len(windows)
        for batch, output in self.batches.run(windows, batch_size):
            starts = output["start_logits"].float().cpu().numpy()
            ends = output["end_logits"].float().cpu().numpy()
            for row, index in enumerate(batch):
                size = len(windows[index]["input_ids"])
                results[index] = (starts[row, :size], ends[row, :size])
        logits = filled(results)
        for start, end in logits:
            if not (np.isfinite(start).all() and np.isfinite(end).all()):
                raise ModelError(f"{self.info.name}: the model returned non-finite start/end logits")
        return logits

    def answer(
        self,
        inputs: Sequence[PairInput] | Sequence[str],
        contexts: Sequence[str] | None = None,
        *,
        batch_size: int = 32,
        options: SpanOptions | None = None,
        **settings: object,
    ) -> list[SpanResponse]:
        """One answer per ``(question, context)`` pair, or per question when ``contexts`` is given.

        ``max_length``/``doc_stride`` default to the pipeline's (384 clipped to the model, and
        ``min(max_length // 2, 128)``); see :mod:`evalharness.models.spans` for the rest.
        """
        chosen = options_with(SpanOptions, options, settings)
        decoding = SpanDecoding(
            chosen.max_answer_length, chosen.n_best, chosen.allow_no_answer, chosen.null_threshold, chosen.scoring, chosen.align_to_words
        )
        if contexts is not None:
            if len(inputs) != len(contexts):
                raise UsageError(f"answer: {len(inputs)} questions but {len(contexts)} contexts")
            pairs = list(zip(inputs, contexts))
        else:
            pairs = [(item[0], item[1]) for item in inputs]
        if not pairs:
            return []
        asked: list[str] = []
        context_texts: list[str] = []
        for index, (question, context) in enumerate(pairs):
            if not isinstance(question, str) or not isinstance(context, str) or not context.strip():
                raise UsageError(f"answer: pair {index} needs a question and a non-empty context (text)")
            asked.append(question)
            context_texts.append(context)
        length, stride = self.windowing(chosen.max_length, chosen.doc_stride)
        questions, cut = self._fit_questions(asked, length, stride, chosen.max_question_length)
        encoded = self._encode(questions, context_texts, length, stride)
        logits = self._logits(encoded.windows, batch_size)
        per_pair: list[list[Window]] = [[] for _ in pairs]
        for (owner, answerable, offsets, word_ids, null_index), (start, end) in zip(encoded.meta, logits):
            per_pair[owner].append(Window(start, end, answerable, offsets, word_ids, null_index))
        responses = []
        for index, windows in enumerate(per_pair):
            try:
                response = decode_answer(context_texts[index], windows, decoding)
            except UsageError as exc:
                raise UsageError(f"answer: pair {index}: {exc}") from None
            responses.append(dataclasses.replace(response, truncated=cut[index]))
        return responses
