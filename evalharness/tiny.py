"""Tiny, deterministic checkpoints built locally: for the demo, the tests and the benchmarks.

Nothing is downloaded: a WordPiece tokenizer is trained with ``tokenizers`` on a corpus the
caller gives, a model is initialised from a small config with a fixed seed, and both are
saved with ``save_pretrained`` so they load back by path like any Hub checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_classifier", "build_wordpiece_tokenizer"]

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
