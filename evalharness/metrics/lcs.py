"""Longest common subsequences for ROUGE-L and ROUGE-Lsum, fast and identical to rouge-score.

rouge-score fills the full LCS table in pure Python (``_lcs_table``), which makes ROUGE-L/Lsum
on CNN/DailyMail cost tens of seconds. Here the table rows are bit vectors (the bit-parallel
LCS of Allison & Dix 1986 / Crochemore et al. 2001, in Hyyrö's 2004 form): row ``i`` is one
Python integer whose zero bits among the lowest ``j`` count ``LCS(ref[:i], can[:j])``. The
LCS *length* is therefore exact, and :func:`lcs_indices` walks the same table with exactly
``rouge_score.rouge_scorer._backtrack_norec``'s rule, so ROUGE-Lsum's union-LCS picks the
same tokens. ``tests/test_generation_metrics.py`` checks equality with rouge-score's own
functions on random inputs and on the full CNN/DailyMail See et al. outputs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

__all__ = ["lcs_indices", "lcs_length", "summary_level_hits"]


def _masks(can: Sequence[str]) -> dict[str, int]:
    """For each token, the bit set of its positions in ``can``."""
    masks: dict[str, int] = {}
    for position, token in enumerate(can):
        masks[token] = masks.get(token, 0) | (1 << position)
    return masks


def _rows(ref: Sequence[str], can_length: int, masks: dict[str, int]) -> list[int]:
    """Bit-vector rows 0..len(ref) of the LCS table of ``ref`` (rows) and ``can`` (columns).

    Row ``i`` has a zero at bit ``j - 1`` exactly when ``T[i][j] = T[i][j-1] + 1``.
    """
    full = (1 << can_length) - 1
    row = full
    rows = [row]
    for token in ref:
        match = masks.get(token, 0)
        row = ((row + (row & match)) | (row & ~match)) & full
        rows.append(row)
    return rows


def lcs_length(ref: Sequence[str], can: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists."""
    if not ref or not can:
        return 0
    return len(can) - _rows(ref, len(can), _masks(can))[-1].bit_count()


def lcs_indices(ref: Sequence[str], can: Sequence[str], masks: dict[str, int] | None = None) -> list[int]:
    """Indices into ``ref`` of the LCS that rouge-score's ``lcs_ind`` returns.

    Walks back from ``T[len(ref)][len(can)]`` like ``_backtrack_norec``: take a match, else
    step left when ``T[i][j-1] > T[i-1][j]``, else up. ``here = T[i][j]`` and
    ``up = T[i-1][j]`` are carried along; a left step changes them by one bit of a row.
    """
    rows = _rows(ref, len(can), _masks(can) if masks is None else masks)
    i, j = len(ref), len(can)
    if not i or not j:
        return []
    here = j - rows[i].bit_count()
    up = j - (rows[i - 1] & ((1 << j) - 1)).bit_count()
    picked: list[int] = []
    while True:
        if ref[i - 1] == can[j - 1]:
            picked.append(i - 1)
            i -= 1
            j -= 1
            here -= 1
        else:
            left = here - (not (rows[i] >> (j - 1)) & 1)
            if left > up:
                j -= 1
                here = left
                up -= not (rows[i - 1] >> j) & 1
                if j == 0:
                    break
                continue
            i -= 1
            here = up
        if i == 0 or j == 0:
            break
        up = j - (rows[i - 1] & ((1 << j) - 1)).bit_count()
    picked.reverse()
    return picked


def summary_level_hits(ref_sents: Sequence[Sequence[str]], can_sents: Sequence[Sequence[str]]) -> int:
    """Union-LCS hits of ROUGE-Lsum (ROUGE paper §3.2), counting each token occurrence at
    most once on either side, as ROUGE-1.5.5 and rouge-score's ``_summary_level_lcs`` do."""
    ref_counts = Counter(token for sentence in ref_sents for token in sentence)
    can_counts = Counter(token for sentence in can_sents for token in sentence)
    candidates = [(can, _masks(can)) for can in can_sents]
    hits = 0
    for ref in ref_sents:
        union = sorted(set().union(*(lcs_indices(ref, can, masks) for can, masks in candidates)))
        for token in (ref[index] for index in union):
            if can_counts[token] > 0 and ref_counts[token] > 0:
                hits += 1
                can_counts[token] -= 1
                ref_counts[token] -= 1
    return hits
