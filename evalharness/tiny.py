"""Tiny, deterministic checkpoints built locally: for the demo, the tests and the benchmarks.

Nothing is downloaded: a WordPiece tokenizer is trained with ``tokenizers`` on a corpus the
caller gives, a model is initialised from a small config with a fixed seed, and both are
saved with ``save_pretrained`` so they load back by path like any Hub checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "build_byte_bpe_tokenizer",
    "build_causal_lm",
    "build_classifier",
    "build_wordpiece_tokenizer",
]

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_wordpiece_tokenizer(corpus: Iterable[str], *, vocab_size: int = 500) -> Any:
    """A BERT-style uncased WordPiece tokenizer trained on ``corpus``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from evalharness.models.loading import quiet_transformers

    quiet_transformers()
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False
    )
    backend.train_from_iterator(list(corpus), trainer=trainer)
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    backend.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
        model_max_length=128,
    )


def _bert_config(tokenizer: Any, *, hidden: int, layers: int, **extra: Any) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 16),
        intermediate_size=hidden * 2,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )


def build_classifier(
    directory: Path,
    tokenizer: Any,
    labels: Sequence[str],
    *,
    seed: int = 0,
    hidden: int = 32,
    layers: int = 2,
) -> Path:
    """A randomly initialised BERT sequence classifier with ``id2label`` set to ``labels``.

    ``labels`` of length 1 gives a regression head.
    """
    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    config = _bert_config(
        tokenizer,
        hidden=hidden,
        layers=layers,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: index for index, label in enumerate(labels)},
    )
    model = BertForSequenceClassification(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)


# --- causal language models -------------------------------------------------------------

_CAUSAL_ARCHITECTURES = ("gpt2", "llama")


def build_byte_bpe_tokenizer(
    corpus: Iterable[str],
    *,
    vocab_size: int = 400,
    bos_token: str | None = "<|endoftext|>",
    eos_token: str | None = "<|endoftext|>",
    pad_token: str | None = None,
    add_bos: bool = False,
    model_max_length: int = 128,
) -> Any:
    """A byte-level BPE tokenizer (GPT-2 style: every string encodes, nothing is ``unk``).

    The defaults mirror GPT-2: one ``<|endoftext|>`` token serving as BOS and EOS, no pad
    token, no BOS added to inputs. ``add_bos=True`` prepends BOS to every encoded input as
    Llama tokenizers do; ``bos_token=None`` gives a tokenizer with an EOS token only.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from evalharness.models.loading import quiet_transformers

    quiet_transformers()
    specials = list(dict.fromkeys(t for t in (bos_token, eos_token, pad_token) if t is not None))
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(list(corpus), trainer=trainer)
    if add_bos:
        if bos_token is None:
            raise ValueError("add_bos=True needs a bos_token")
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos_token} $A",
            pair=f"{bos_token} $A $B:1",
            special_tokens=[(bos_token, backend.token_to_id(bos_token))],
        )
    else:
        backend.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos_token,
        eos_token=eos_token,
        unk_token=None,
        pad_token=pad_token,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )


def _causal_config(tokenizer: Any, architecture: str, *, hidden: int, layers: int, max_positions: int) -> Any:
    import transformers

    shared = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    heads = max(1, hidden // 16)
    if architecture == "gpt2":
        return transformers.GPT2Config(
            n_embd=hidden, n_layer=layers, n_head=heads, n_positions=max_positions, **shared
        )
    return transformers.LlamaConfig(
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        **shared,
    )


def build_causal_lm(
    directory: Path,
    tokenizer: Any,
    *,
    architecture: str = "gpt2",
    seed: int = 0,
    hidden: int = 32,
    layers: int = 2,
    max_positions: int = 128,
) -> Path:
    """A randomly initialised GPT-2 (or Llama) causal LM saved with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    if architecture not in _CAUSAL_ARCHITECTURES:
        raise ValueError(f"architecture must be one of {_CAUSAL_ARCHITECTURES}, got {architecture!r}")
    torch.manual_seed(seed)
    config = _causal_config(tokenizer, architecture, hidden=hidden, layers=layers, max_positions=max_positions)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)
