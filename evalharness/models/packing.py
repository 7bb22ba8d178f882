"""Padding-free layouts: several sequences in one row, a shared prefix computed once.

A *packed row* holds several sequences end to end. An attention mask keeps them apart and
position ids restart for each, so every token is computed as in a row of its own (to float
tolerance) while the batch carries almost no padding. For a decoder, sequences that share a
prefix form a *tree*: the prefix once, then each continuation, which sees the prefix and its
own earlier tokens only, with position ids continuing from the prefix. The options of a
multiple-choice question then cost their context once, not once per option (what
lm-evaluation-harness does for single-token options only).

A tree is a list of *chains* (runs of consecutive nodes); a chain's first node continues
a node of an earlier chain, or starts a sequence at position 0. Trees are packed into rows
first-fit decreasing (:func:`pack`), and :func:`layout` builds the input ids, position ids
and boolean masks (``True``: may attend) of a batch of rows.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from evalharness.models.batching import filled

if TYPE_CHECKING:
    import torch

__all__ = [
    "MIN_SAVING",
    "ROW_FACTOR",
    "Chain",
    "Layout",
    "Tree",
    "layout",
    "layout_cost",
    "pack",
    "pack_rows",
    "prefix_trees",
    "saves_enough",
    "row_width",
    "sequence_tree",
]

# Packed rows are at most this many times as wide as the largest tree (the engine plans its
# chunks for rows this wide); :func:`pack_rows` picks the width that wastes least.
ROW_FACTOR = 3
WIDTHS = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0)  # candidate widths, times the largest item
# Packed rows must save this share of the padded layout's cost, or the sequences stay in padded
# rows (whole-article windows already fill their rows; a mask would only cost memory).
MIN_SAVING = 0.02


def row_width(largest: int, capacity: int) -> int:
    """The widest row for items up to ``largest``: ``ROW_FACTOR`` times it, at most
    ``capacity`` (the model's length), at least the largest item."""
    return max(largest, min(capacity, ROW_FACTOR * largest))


def layout_cost(lengths: Sequence[int], batch_size: int, *, attention: float) -> float:
    """What rows of these used lengths cost in length-sorted batches of ``batch_size``, each
    padded to its fullest row: padded tokens, times ``1 + width / attention`` for attention,
    whose work per token grows with the row width (``attention`` ≈ 6 × the hidden size: the
    width at which attention costs as much as the rest of a layer)."""
    ordered = sorted(lengths, reverse=True)
    return sum(len(ordered[start : start + batch_size]) * ordered[start] * (1 + ordered[start] / attention)
               for start in range(0, len(ordered), batch_size))


def saves_enough(packed_cost: float, padded_lengths: Sequence[int], batch_size: int, *, attention: float) -> bool:
    """Whether packed rows of ``packed_cost`` save ``MIN_SAVING`` of what the same sequences
    cost padded, each in a row of its own (:func:`layout_cost`)."""
    return packed_cost <= (1 - MIN_SAVING) * layout_cost(padded_lengths, batch_size, attention=attention)


def pack_rows(sizes: Sequence[int], capacity: int, *, batch_size: int, attention: float) -> tuple[list[list[int]], float]:
    """Items packed into rows of the width that costs least (:func:`layout_cost`), and that
    cost. Items of similar sizes leave gaps at some widths and none at others (SST-2 rows
    were 86% full packed to the largest tree, 95% at the best width)."""
    largest = max(sizes, default=1)
    best: tuple[float, list[list[int]]] | None = None
    for width in sorted({min(row_width(largest, capacity), max(largest, int(factor * largest))) for factor in WIDTHS}):
        bins = pack(sizes, width)
        cost = layout_cost([sum(sizes[i] for i in row) for row in bins], batch_size, attention=attention)
        if best is None or cost < best[0]:
            best = (cost, bins)
    return (best[1], best[0]) if best else ([], 0.0)


@dataclass(frozen=True, slots=True)
class Chain:
    """``length`` consecutive nodes from ``start``; the first continues node ``parent``
    (``-1``: it starts a sequence)."""

    start: int
    length: int
    parent: int


@dataclass
class Tree:
    """Nodes (tokens with their position ids and per-token extras such as token type ids)
    in an order where every node follows the node it continues."""

    tokens: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    chains: list[Chain] = field(default_factory=list)
    extras: dict[str, list[int]] = field(default_factory=dict)

    def extend(self, tokens: Sequence[int], parent: int, **extras: Sequence[int]) -> list[int]:
        """Append a chain continuing node ``parent``; returns the new node indices."""
        start = len(self.tokens)
        first = self.positions[parent] + 1 if parent >= 0 else 0
        self.tokens.extend(tokens)
        self.positions.extend(range(first, first + len(tokens)))
        for key, values in extras.items():
            self.extras.setdefault(key, []).extend(values)
        self.chains.append(Chain(start, len(tokens), parent))
        return list(range(start, start + len(tokens)))

    def __len__(self) -> int:
        return len(self.tokens)


def sequence_tree(tokens: Sequence[int], **extras: Sequence[int]) -> Tree:
    """One sequence on its own (encoder inputs)."""
    tree = Tree()
    tree.extend(tokens, -1, **extras)
    return tree


def prefix_trees(rows: Sequence[tuple[Sequence[int], Sequence[int]]], *, capacity: int) -> tuple[list[Tree], list[tuple[int, list[int]]]]:
    """Decoder rows ``(input tokens, targets)`` as trees sharing their unscored prefixes.

    A row's last ``len(targets)`` positions are scored; the tokens before them are its
    prefix. Rows with the same non-empty prefix share one tree (rows without one share only
    with identical rows); within a tree, the scored parts share their common leading
    tokens too. A tree never grows beyond ``capacity`` nodes (then the rows continue in a
    new tree with the prefix again). Returns the trees and, per row, its tree and the
    nodes of its scored positions.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, (tokens, targets) in enumerate(rows):
        split = len(tokens) - len(targets)
        key = (split, *tokens[:split]) if split > 0 else (0, *tokens)
        groups.setdefault(key, []).append(index)
    trees: list[Tree] = []
    placed: list[tuple[int, list[int]] | None] = [None] * len(rows)
    for members in groups.values():
        split = len(rows[members[0]][0]) - len(rows[members[0]][1])
        members = sorted(members, key=lambda i: tuple(rows[i][0][split:]))
        tree: Tree | None = None
        previous: tuple[int, ...] = ()
        previous_path: list[int] = []
        for index in members:
            tokens = rows[index][0]
            scored = tuple(tokens[split:])
            if tree is not None and previous == scored:  # identical rows share every node
                placed[index] = (len(trees) - 1, previous_path)
                continue
            common = _common_prefix(previous, scored) if tree is not None else 0
            if tree is None or len(tree) + len(scored) - common > capacity:
                tree, common = Tree(), 0
                trees.append(tree)
                if split:
                    tree.extend(tokens[:split], -1)
            parent = previous_path[common - 1] if common else (split - 1 if split else -1)
            path = previous_path[:common] + tree.extend(scored[common:], parent)
            placed[index] = (len(trees) - 1, path)
            previous, previous_path = scored, path
    return trees, filled(placed)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def pack(sizes: Sequence[int], capacity: int) -> list[list[int]]:
    """Items into bins of ``capacity`` (best fit, largest first; ties in input order), so
    that packing is deterministic. An item larger than ``capacity`` gets a bin of its own.
    Returns the bins' item indices, fullest bins first."""
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i], i))
    bins: list[list[int]] = []
    used: list[int] = []
    space: list[tuple[int, int]] = []  # (room left, bin) sorted, for the best fit
    for item in order:
        size = sizes[item]
        at = bisect.bisect_left(space, (size, -1))
        if at < len(space):
            room, chosen = space.pop(at)
        else:
            chosen, room = len(bins), max(capacity, size)
            bins.append([])
            used.append(0)
        bins[chosen].append(item)
        used[chosen] += size
        if room - size > 0:
            bisect.insort(space, (room - size, chosen))
    return [bins[b] for b in sorted(range(len(bins)), key=lambda b: (-used[b], b))]


@dataclass
class Layout:
    """A batch of packed rows as tensors, and where each tree landed (row, first column)."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    mask: torch.Tensor  # [rows, 1, width, width] bool, True: may attend
    extras: dict[str, torch.Tensor]
    where: dict[int, tuple[int, int]]


def layout(trees: Sequence[Tree], rows: Sequence[Sequence[int]], *, causal: bool, pad: int) -> Layout:
    """Tensors for ``rows`` (lists of tree indices). Padding positions see only themselves,
    so no softmax is over an empty set; their outputs are never read."""
    import numpy as np
    import torch

    width = max(sum(len(trees[t]) for t in row) for row in rows)
    ids = np.full((len(rows), width), pad, dtype=np.int64)
    positions = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width, width), dtype=bool)
    extra_names = sorted({name for row in rows for t in row for name in trees[t].extras})
    extras = {name: np.zeros((len(rows), width), dtype=np.int64) for name in extra_names}
    longest_chain = max((chain.length for row in rows for t in row for chain in trees[t].chains), default=1)
    lower = np.tri(longest_chain, dtype=bool)
    where: dict[int, tuple[int, int]] = {}
    for r, row in enumerate(rows):
        offset = 0
        for t in row:
            tree = trees[t]
            end = offset + len(tree)
            ids[r, offset:end] = tree.tokens
            positions[r, offset:end] = tree.positions
            for name, values in tree.extras.items():
                extras[name][r, offset:end] = values
            block = mask[r, offset:end, offset:end]
            if causal:
                for chain in tree.chains:
                    stop = chain.start + chain.length
                    if chain.parent >= 0:
                        block[chain.start : stop] = block[chain.parent]
                    block[chain.start : stop, chain.start : stop] = lower[: chain.length, : chain.length]
            else:
                block[:] = True
            where[t] = (r, offset)
            offset = end
        padding = np.arange(offset, width)
        mask[r, padding, padding] = True
    return Layout(
        torch.from_numpy(ids),
        torch.from_numpy(positions),
        torch.from_numpy(mask).unsqueeze(1),
        {name: torch.from_numpy(values) for name, values in extras.items()},
        where,
    )
