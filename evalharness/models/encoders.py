"""Batches for encoder heads (classifiers, extractive QA, masked LMs), packed where possible.

The *padded* layout (the reference) right-pads each length-sorted batch with the
tokenizer. The *packed* layout puts several sequences end to end in one row, each seeing
only itself (a block-diagonal mask) with its own position ids and token type ids, so a
batch carries almost no padding (SST-2 batches are 82% real tokens padded, ~99% packed).
The head still sees one sequence per row: a hook on the encoder unpacks its output into
``[sequences, longest, hidden]`` (and recomputes the pooler on it) before the head runs,
so the head's output has the padded layout's shape.

A probe at load scores three sequences both ways; where they disagree (a model that
computes its own position ids, such as RoBERTa's, or ignores a 4-D mask) or the model
refuses the inputs, the padded layout is kept. The note says which.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeAlias

from evalharness.models.base import ModelAdapter, ModelInfo
from evalharness.models.batching import packing_enabled, sorted_batches
from evalharness.models.packing import layout, pack, pack_rows, saves_enough, sequence_tree
from evalharness.models.rows import MaskFormat, attention_scale, mask_format, probe_tolerance

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase
    from transformers.utils import ModelOutput

# One tokenized sequence: ``input_ids`` and per-token inputs such as ``token_type_ids``.
EncodedRow: TypeAlias = dict[str, list[int]]

__all__ = ["EncoderAdapter", "EncoderBatches"]

PROBE_TEXTS = (("the quick brown fox jumps over the lazy dog", "and runs away"), ("a b", None), ("hello there , friend", None))
PER_TOKEN = ("token_type_ids",)  # per-token inputs packed alongside the ids


class EncoderBatches:
    """Model outputs for tokenized rows (dicts of ``input_ids``, ``token_type_ids``, ...)."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, capacity: int) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.capacity = capacity  # widest packed row: the model's maximum length
        self._mask_format: MaskFormat | None = None
        self.note = self._probe()

    def run(self, rows: Sequence[EncodedRow], batch_size: int) -> Iterator[tuple[list[int], ModelOutput]]:
        """``(row indices, output)`` per batch; the output's first dimension follows the
        indices and its sequence dimension is the batch's longest row. Packed where the probe
        passed and packing saves work (``packing.MIN_SAVING``)."""
        if self._mask_format is None or not packing_enabled():
            return self.padded(rows, batch_size)
        lengths = [len(row["input_ids"]) for row in rows]
        attention = attention_scale(self.model)
        bins, cost = pack_rows(lengths, self.capacity, batch_size=batch_size, attention=attention)
        if not saves_enough(cost, lengths, batch_size, attention=attention):
            return self.padded(rows, batch_size)
        return self._run_packed(rows, bins, batch_size)

    def padded(self, rows: Sequence[EncodedRow], batch_size: int) -> Iterator[tuple[list[int], ModelOutput]]:
        import torch

        device = self.model.device
        with torch.inference_mode():
            for batch in sorted_batches([len(row["input_ids"]) for row in rows], batch_size):
                padded = self.tokenizer.pad([rows[i] for i in batch], padding_side="right", return_tensors="pt")
                yield batch, self.model(**{key: value.to(device) for key, value in padded.items()})

    def packed(self, rows: Sequence[EncodedRow], batch_size: int, *, width: int) -> Iterator[tuple[list[int], ModelOutput]]:
        """Sequences packed into rows of ``width``."""
        return self._run_packed(rows, pack([len(row["input_ids"]) for row in rows], width), batch_size)

    def _run_packed(self, rows: Sequence[EncodedRow], bins: list[list[int]], batch_size: int) -> Iterator[tuple[list[int], ModelOutput]]:
        import torch

        trees = [sequence_tree(row["input_ids"], **{key: row[key] for key in PER_TOKEN if key in row}) for row in rows]
        sizes = [len(tree) for tree in trees]
        device = self.model.device
        mask_format = self._mask_format
        assert mask_format is not None  # packed only once the probe chose a mask format
        with torch.inference_mode():
            for batch in sorted_batches([sum(sizes[t] for t in b) for b in bins], batch_size):
                packed = layout(trees, [bins[b] for b in batch], causal=False, pad=self.tokenizer.pad_token_id or 0)
                order = [t for b in batch for t in bins[b]]
                inputs = {
                    "input_ids": packed.input_ids.to(device),
                    "position_ids": packed.position_ids.to(device),
                    "attention_mask": mask_format(packed.mask, self.model.dtype).to(device),
                    **{key: value.to(device) for key, value in packed.extras.items()},
                }
                spans = [(*packed.where[t], sizes[t]) for t in order]
                with self._unpacking(spans):
                    yield order, self.model(**inputs)

    @contextmanager
    def _unpacking(self, spans: list[tuple[int, int, int]]) -> Iterator[None]:
        """While the block runs, the encoder's output is unpacked to one sequence per row."""
        import torch

        encoder = self.model.base_model
        longest = max(length for _, _, length in spans)

        def unpack(module: torch.nn.Module, args: tuple[object, ...], output: ModelOutput) -> ModelOutput:
            hidden = output["last_hidden_state"]
            rows, width, size = hidden.shape
            flat = torch.cat([hidden.reshape(rows * width, size), hidden.new_zeros(1, size)])
            index = torch.full((len(spans), longest), rows * width, dtype=torch.long)
            for n, (row, offset, length) in enumerate(spans):
                index[n, :length] = torch.arange(row * width + offset, row * width + offset + length)
            sequences = flat[index.to(flat.device)]
            assert dataclasses.is_dataclass(output)  # transformers' model outputs are dataclasses
            fields = {field.name for field in dataclasses.fields(output)}
            values = {"last_hidden_state": sequences}
            pooler = getattr(module, "pooler", None)
            if "pooler_output" in fields and pooler is not None:
                values["pooler_output"] = pooler(sequences)
            return type(output)(**values)

        handle = encoder.register_forward_hook(unpack)
        try:
            yield
        finally:
            handle.remove()

    def _probe(self) -> str:
        format_, why = mask_format(self.model)
        if format_ is None:
            return f"padded rows: {why}"
        rows = [dict(self.tokenizer(text, pair)) if pair else dict(self.tokenizer(text)) for text, pair in PROBE_TEXTS]
        lengths = [len(row["input_ids"]) for row in rows]
        reference = _by_row(self.padded(rows, len(rows)), lengths)
        self._mask_format = format_
        try:
            packed = _by_row(self.packed(rows, len(rows), width=sum(lengths)), lengths)
        except Exception:  # noqa: BLE001 - a model that refuses the inputs keeps the padded layout
            packed = None
        tolerance = probe_tolerance(self.model.dtype)
        if packed is not None and all(_close(packed[i], reference[i], tolerance) for i in range(len(rows))):
            return "packed rows (several sequences per row, no padding), checked against padded rows at load"
        self._mask_format = None
        return "padded rows: packed rows did not reproduce padded rows on a probe at load"


def _by_row(batches: Iterator[tuple[list[int], ModelOutput]], lengths: Sequence[int]) -> dict[int, list[torch.Tensor]]:
    """Each row's output tensors (per-token ones cut to the row's own length)."""
    out: dict[int, list[torch.Tensor]] = {}
    for indices, output in batches:
        width = max(lengths[i] for i in indices)
        tensors = [value for value in output.values() if hasattr(value, "shape") and value.dim() >= 2]
        for position, index in enumerate(indices):
            out[index] = [(t[position, : lengths[index]] if t.shape[1] == width else t[position]).float().cpu() for t in tensors]
    return out


def _close(a: list[torch.Tensor], b: list[torch.Tensor], tolerance: float) -> bool:
    return len(a) == len(b) and all(
        x.shape == y.shape and bool(((x - y).abs() <= tolerance * (1 + y.abs())).all()) for x, y in zip(a, b)
    )


class EncoderAdapter(ModelAdapter):
    """An adapter whose model is an encoder with a head: its batches come from
    :class:`EncoderBatches`, and the layout it chose is in the model notes."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, info: ModelInfo) -> None:
        super().__init__(model, tokenizer, info)
        self.batches = EncoderBatches(model, tokenizer, capacity=self.max_length)
        self.info = dataclasses.replace(info, notes={**info.notes, "layout": self.batches.note})
