"""Scoring decoder rows: the summed log-probability of each row's targets and whether
greedy decoding would produce them all. A row is ``(input tokens, targets)``; the targets
are predicted by the row's last ``len(targets)`` positions.

Two layouts give the same numbers to float tolerance:

- *padded* (the reference): each distinct input in a right-padded row of its own, in
  length-sorted batches, with the vocabulary projection from the earliest target on
  (``logits_to_keep``);
- *packed* (where the model supports it): rows that share their unscored prefix form one
  tree, so a multiple-choice question's context is computed once for all its options
  (``packing.prefix_trees``), trees are packed into rows with almost no padding, and only
  the scored positions go through the vocabulary projection.

The packed layout needs a model that honours a 4-D attention mask and explicit position
ids. :class:`RowScorer` finds out once, at load time, by scoring a few random rows both
ways; where they disagree (or the model refuses the inputs) it keeps the padded layout, and
says which in the model notes. ``batching_scope(packing=False)`` forces the padded layout.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeAlias

from evalharness.models.batching import count_shared, filled, packing_enabled, sorted_batches
from evalharness.models.packing import Layout, Tree, layout, pack, pack_rows, prefix_trees, saves_enough

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

__all__ = ["Row", "RowScorer"]

Row = tuple[list[int], list[int]]  # (model input, the targets its last positions predict)
# A boolean 4-D mask ([rows, 1, width, width], True: may attend) as an attention implementation takes it.
MaskFormat: TypeAlias = "Callable[[torch.Tensor, torch.dtype], torch.Tensor]"
PROBE_SHAPE = (12, 2, 3, 7)  # shared prefix, two continuations, a separate row (tokens)
PROBE_TOLERANCE = {"float32": 1e-4, "float64": 1e-6}  # relative; half precision: HALF_TOLERANCE
HALF_TOLERANCE = 2e-2


def probe_tolerance(dtype: torch.dtype) -> float:
    """How closely a packed layout must reproduce the padded one on a load-time probe."""
    return PROBE_TOLERANCE.get(str(dtype).removeprefix("torch."), HALF_TOLERANCE)


def _bool_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return mask


def _additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    import torch

    return torch.zeros(mask.shape, dtype=dtype).masked_fill_(~mask, torch.finfo(dtype).min)


# How each attention implementation of transformers takes a custom 4-D mask. Others
# (flash attention: packed sequences by position ids only, no trees) keep the padded layout.
MASK_FORMATS: dict[str, MaskFormat] = {"sdpa": _bool_mask, "eager": _additive_mask}
# Config fields of models that restrict attention themselves (sliding windows, local or
# chunked attention): a custom mask replaces theirs, and a short probe cannot tell.
OWN_ATTENTION_PATTERNS = ("sliding_window", "local_attention", "attention_window", "attention_chunk_size")


def mask_format(model: PreTrainedModel) -> tuple[MaskFormat | None, str]:
    """How to hand ``model`` a custom 4-D mask, or (None, why it cannot take one)."""
    config = model.config
    implementation = getattr(config, "_attn_implementation", None)
    format_ = MASK_FORMATS.get(str(implementation))
    if format_ is None:
        return None, f"the {implementation!r} attention implementation takes no custom mask"
    own = [name for name in OWN_ATTENTION_PATTERNS if getattr(config, name, None)]
    if any(kind != "full_attention" for kind in getattr(config, "layer_types", None) or ()):
        own.append("layer_types")
    if own:
        return None, f"the model restricts attention itself ({', '.join(own)}); a custom mask would replace that"
    return format_, ""


def attention_scale(model: PreTrainedModel) -> float:
    """Row width at which attention costs about what the rest of a layer costs per token
    (≈ 6 × the hidden size), for choosing how wide to pack rows."""
    config = model.config
    hidden = getattr(config, "hidden_size", None) or getattr(config, "d_model", None) or getattr(config, "n_embd", None) or 512
    return 6.0 * float(hidden)


def _read(selected: torch.Tensor, inverse: torch.Tensor, targets: Sequence[int]) -> tuple[list[float], list[bool]]:
    """log p(target) and greedy per target from the logits of distinct positions
    (``selected``, ``[positions, vocab]``) and each target's position (``inverse``)."""
    import torch

    scores = selected.float()
    target_ids = torch.tensor(targets, dtype=torch.long, device=scores.device)
    inverse = inverse.to(scores.device)
    # log p(target) = logit(target) - logsumexp(logits): no [n_targets, vocab] copy.
    logprobs = scores[inverse, target_ids] - torch.logsumexp(scores, dim=-1)[inverse]
    greedy = scores.argmax(dim=-1)[inverse] == target_ids
    return logprobs.double().tolist(), greedy.tolist()


class RowScorer:
    """Scores rows for one causal LM, packed where its probe passed, padded otherwise."""

    def __init__(self, model: PreTrainedModel, *, pad: int, capacity: int, selected_logits: bool) -> None:
        self.model = model
        self.pad = pad
        self.capacity = capacity
        self._selected_logits = selected_logits  # forward takes logits_to_keep
        self._mask_format: MaskFormat | None = None
        self._head: torch.nn.Module | None = None  # the output embeddings, when they alone turn hidden states into logits
        self._attention = attention_scale(model)
        self.note = self._probe()

    @property
    def packs(self) -> bool:
        return self._mask_format is not None and packing_enabled()

    def score(self, rows: Sequence[Row], batch_size: int) -> list[tuple[float, bool]]:
        """Packed where the probe passed and packing saves work (``packing.MIN_SAVING``)."""
        if not self.packs:
            return self.padded(rows, batch_size)
        trees, placed = prefix_trees(rows, capacity=self.capacity)
        bins, cost = pack_rows([len(tree) for tree in trees], self.capacity, batch_size=batch_size, attention=self._attention)
        distinct = {tuple(tokens) for tokens, _ in rows}
        if not saves_enough(cost, [len(tokens) for tokens in distinct], batch_size, attention=self._attention):
            return self.padded(rows, batch_size)
        return self._run_packed(rows, trees, placed, bins, batch_size)

    # -- the reference layout ----------------------------------------------------------------
    def padded(self, rows: Sequence[Row], batch_size: int) -> list[tuple[float, bool]]:
        """Rows with the same input tokens share one forward pass (the options of a
        multiple-choice question whose continuations are single tokens)."""
        import torch

        results: list[tuple[float, bool] | None] = [None] * len(rows)
        sharing: dict[tuple[int, ...], list[int]] = {}
        for index, (tokens, _) in enumerate(rows):
            sharing.setdefault(tuple(tokens), []).append(index)
        inputs = list(sharing.values())  # row indices per distinct input
        lengths = [len(rows[members[0]][0]) for members in inputs]
        device = self.model.device
        with torch.inference_mode():
            for batch in sorted_batches(lengths, batch_size):
                width = max(lengths[i] for i in batch)
                input_ids = torch.full((len(batch), width), self.pad, dtype=torch.long)
                attention = torch.zeros((len(batch), width), dtype=torch.long)
                for row, unique in enumerate(batch):
                    input_ids[row, : lengths[unique]] = torch.tensor(rows[inputs[unique][0]][0], dtype=torch.long)
                    attention[row, : lengths[unique]] = 1
                members = [(row, lengths[unique], index) for row, unique in enumerate(batch) for index in inputs[unique]]
                # The vocabulary projection only for the positions from the earliest target on.
                first_target = min(end - len(rows[index][1]) for _, end, index in members)
                keep = {"logits_to_keep": width - first_target} if self._selected_logits else {}
                logits = self.model(input_ids=input_ids.to(device), attention_mask=attention.to(device), **keep).logits
                offset = width - logits.shape[1]
                row_ids: list[int] = []
                positions: list[int] = []
                for row, end, index in members:
                    row_ids.extend([row] * len(rows[index][1]))
                    positions.extend(range(end - len(rows[index][1]) - offset, end - offset))
                where = (torch.tensor(row_ids, device=logits.device), torch.tensor(positions, device=logits.device))
                selected = logits[where]
                self._collect(results, selected, torch.arange(len(row_ids)), rows, [index for _, _, index in members])
        return filled(results)

    # -- the packed layout -------------------------------------------------------------------
    def packed(self, rows: Sequence[Row], batch_size: int, *, width: int) -> list[tuple[float, bool]]:
        """Prefix trees (at most the model's maximum length each) packed into rows of ``width``."""
        trees, placed = prefix_trees(rows, capacity=self.capacity)
        return self._run_packed(rows, trees, placed, pack([len(tree) for tree in trees], width), batch_size)

    def _run_packed(
        self, rows: Sequence[Row], trees: list[Tree], placed: list[tuple[int, list[int]]], bins: list[list[int]], batch_size: int
    ) -> list[tuple[float, bool]]:
        import torch

        sizes = [len(tree) for tree in trees]
        count_shared(sum(len(tokens) for tokens, _ in rows) - sum(sizes))
        members: list[list[int]] = [[] for _ in trees]
        for index, (tree, _) in enumerate(placed):
            members[tree].append(index)
        results: list[tuple[float, bool] | None] = [None] * len(rows)
        with torch.inference_mode():
            for batch in sorted_batches([sum(sizes[t] for t in b) for b in bins], batch_size):
                packed = layout(trees, [bins[b] for b in batch], causal=True, pad=self.pad)
                width = packed.input_ids.shape[1]
                flat: list[int] = []
                order: list[int] = []
                for tree, (row, offset) in packed.where.items():
                    for index in members[tree]:
                        flat.extend(row * width + offset + node for node in placed[index][1])
                        order.append(index)
                unique, inverse = torch.unique(torch.tensor(flat, dtype=torch.long), return_inverse=True)
                self._collect(results, self._logits_at(packed, unique), inverse, rows, order)
        return filled(results)

    def _logits_at(self, packed: Layout, flat_positions: torch.Tensor) -> torch.Tensor:
        """Logits at the given positions of the flattened ``[rows * width]`` batch."""
        assert self._mask_format is not None
        device = self.model.device
        inputs = {
            "input_ids": packed.input_ids.to(device),
            "position_ids": packed.position_ids.to(device),
            "attention_mask": self._mask_format(packed.mask, self.model.dtype).to(device),
            "use_cache": False,
        }
        if self._head is not None:
            hidden = self.model.base_model(**inputs).last_hidden_state
            return self._head(hidden.reshape(-1, hidden.shape[-1])[flat_positions.to(hidden.device)])
        logits = self.model(**inputs).logits
        return logits.reshape(-1, logits.shape[-1])[flat_positions.to(logits.device)]

    @staticmethod
    def _collect(
        results: list[tuple[float, bool] | None], selected: torch.Tensor, inverse: torch.Tensor, rows: Sequence[Row], order: Sequence[int]
    ) -> None:
        """Sum each row's target log-probabilities (rows in ``order``, targets consecutive)."""
        targets = [target for index in order for target in rows[index][1]]
        logprobs, greedy = _read(selected, inverse, targets)
        start = 0
        for index in order:
            stop = start + len(rows[index][1])
            results[index] = (math.fsum(logprobs[start:stop]), all(greedy[start:stop]))
            start = stop

    # -- the probe -----------------------------------------------------------------------------
    def _probe(self) -> str:
        """Turn packing on if random rows score the same packed as padded; the model note."""
        format_, why = mask_format(self.model)
        if format_ is None:
            return f"padded rows: {why}"
        if self.capacity < sum(PROBE_SHAPE):
            return f"padded rows: the model's {self.capacity} positions are too few to pack"
        import torch

        generator = torch.Generator().manual_seed(0)
        head = self.model.get_output_embeddings()
        vocab = int(head.weight.shape[0]) if head is not None else 2
        ids = torch.randint(0, vocab, (2 * sum(PROBE_SHAPE),), generator=generator).tolist()
        prefix, first, second, alone = (ids[sum(PROBE_SHAPE[:i]) : sum(PROBE_SHAPE[: i + 1])] for i in range(4))
        targets = iter(ids[sum(PROBE_SHAPE) :])
        take = lambda n: [next(targets) for _ in range(n)]
        # Two rows sharing a prefix, a row of their own in the same packed row, a duplicate.
        rows: list[Row] = [(prefix + first, take(3)), (prefix + second, take(4)), (alone, take(5)), (prefix + first, take(3))]
        reference = [value for value, _ in self.padded(rows, len(rows))]
        tolerance = probe_tolerance(self.model.dtype)
        self._mask_format = format_
        for self._head, how in ((head, "scored positions projected alone"), (None, "full logits")):
            try:
                packed = [value for value, _ in self.packed(rows, len(rows), width=sum(PROBE_SHAPE))]
            except Exception:  # noqa: BLE001 - a model that refuses the inputs keeps the padded layout
                packed = []
            if packed and all(abs(x - y) <= tolerance * (1 + abs(y)) for x, y in zip(packed, reference)):
                return f"packed rows (shared prefixes once, no padding; {how}), checked against padded rows at load"
        self._mask_format = self._head = None
        return "padded rows: packed rows did not reproduce padded rows on a probe at load"
