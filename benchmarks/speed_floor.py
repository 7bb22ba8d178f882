"""The practical floor for ``speed.py``: plain PyTorch loops computing the same quantities.

Each function gets an already loaded model and tokenizer (loading is not timed), tokenizes
once, sorts inputs by length into batches, runs them under ``torch.inference_mode`` and
returns what evalharness computes (logits, best spans) in input order. (Causal LMs and
generation are compared with lm-evaluation-harness as whole processes; see ``speed_process``.) Nothing here imports evalharness.
"""

from __future__ import annotations

import math
from typing import Any


def _batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def classify(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    pairs: list[str] | None,
    batch_size: int,
) -> list[list[float]]:
    import torch

    args = (texts, pairs) if pairs is not None else (texts,)
    encoded = tokenizer(*args, truncation=True, max_length=tokenizer.model_max_length)
    rows = [{k: encoded[k][i] for k in encoded} for i in range(len(texts))]
    out: list[Any] = [None] * len(rows)
    with torch.inference_mode():
        for batch in _batches([len(r["input_ids"]) for r in rows], batch_size):
            padded = tokenizer.pad([rows[i] for i in batch], return_tensors="pt").to(
                model.device
            )
            logits = model(**padded).logits.float().cpu().tolist()
            for i, row in zip(batch, logits):
                out[i] = row
    return out


def qa_spans(
    model: Any,
    tokenizer: Any,
    questions: list[str],
    contexts: list[str],
    batch_size: int,
    *,
    max_length: int = 384,
    stride: int = 128,
    max_answer: int = 30,
    n_best: int = 20,
) -> list[str]:
    """Best answer text per question: windows as run_qa.py, best start+end logit over windows
    (probability within each window), answers widened to whole words."""
    import numpy as np
    import torch

    enc = tokenizer(
        questions,
        contexts,
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    names = [n for n in tokenizer.model_input_names if n in enc]
    windows = [{n: enc[n][i] for n in names} for i in range(len(enc["input_ids"]))]
    logits: list[Any] = [None] * len(windows)
    with torch.inference_mode():
        for batch in _batches([len(w["input_ids"]) for w in windows], batch_size):
            padded = tokenizer.pad([windows[i] for i in batch], return_tensors="pt").to(
                model.device
            )
            output = model(**padded)
            starts, ends = (
                output.start_logits.float().cpu().numpy(),
                output.end_logits.float().cpu().numpy(),
            )
            for row, i in enumerate(batch):
                size = len(windows[i]["input_ids"])
                logits[i] = (starts[row, :size], ends[row, :size])
    best: list[tuple[float, str]] = [(-math.inf, "")] * len(questions)
    for w, (start, end) in enumerate(logits):
        owner = enc["overflow_to_sample_mapping"][w]
        context_mask = np.array([s == 1 for s in enc.sequence_ids(w)])
        log_start = start - np.logaddexp.reduce(start)
        log_end = end - np.logaddexp.reduce(end)
        offsets, word_ids = enc["offset_mapping"][w], enc.word_ids(w)
        for s in np.argsort(-start)[:n_best]:
            for e in np.argsort(-end)[:n_best]:
                if (
                    not (context_mask[s] and context_mask[e])
                    or e < s
                    or e - s + 1 > max_answer
                ):
                    continue
                score = float(log_start[s] + log_end[e])
                if score > best[owner][0]:
                    first, last = int(s), int(e)
                    while (
                        first > 0
                        and context_mask[first - 1]
                        and word_ids[first - 1] == word_ids[s]
                    ):
                        first -= 1
                    while (
                        last + 1 < len(word_ids)
                        and context_mask[last + 1]
                        and word_ids[last + 1] == word_ids[e]
                    ):
                        last += 1
                    best[owner] = (
                        score,
                        contexts[owner][offsets[first][0] : offsets[last][1]],
                    )
    return [text for _, text in best]
