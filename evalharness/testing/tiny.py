"""Tiny, deterministic checkpoints built locally: for the demo, the tests and the benchmarks.

Nothing is downloaded: a WordPiece tokenizer is trained with ``tokenizers`` on a corpus the
caller gives, a model is initialised from a small config with a fixed seed, and both are
saved with ``save_pretrained`` so they load back by path like any Hub checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from typing_extensions import Unpack  # in typing from Python 3.11; evalharness supports 3.10

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import BartTokenizer, BertConfig, PreTrainedConfig, PreTrainedTokenizerBase, PreTrainedTokenizerFast, T5Tokenizer

__all__ = [
    "build_bart",
    "build_bpe_tokenizer",
    "build_byte_bpe_tokenizer",
    "build_causal_lm",
    "build_classifier",
    "build_frequency_wordpiece_tokenizer",
    "build_marian",
    "build_masked_lm",
    "build_qa_model",
    "build_t5",
    "build_unigram_tokenizer",
    "build_wordpiece_tokenizer",
]

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_wordpiece_tokenizer(corpus: Iterable[str], *, vocab_size: int = 500) -> PreTrainedTokenizerFast:
    """A BERT-style uncased WordPiece tokenizer trained on ``corpus``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    from evalharness.models.loading import quiet_transformers

    quiet_transformers()
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False
    )
    backend.train_from_iterator(list(corpus), trainer=trainer)
    return _bert_tokenizer(backend)


def _bert_tokenizer(backend: Tokenizer) -> PreTrainedTokenizerFast:
    """[CLS]/[SEP] templates, the WordPiece decoder and the transformers wrapper."""
    from tokenizers import decoders, processors
    from transformers import PreTrainedTokenizerFast

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


class _Labels(TypedDict, total=False):
    """A classification head's labels in a config (their number follows from ``id2label``)."""

    id2label: dict[int, str]
    label2id: dict[str, int]


def _bert_config(tokenizer: PreTrainedTokenizerBase, *, hidden: int, layers: int, **extra: Unpack[_Labels]) -> BertConfig:
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
    tokenizer: PreTrainedTokenizerBase,
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
        id2label=dict(enumerate(labels)),
        label2id={label: index for index, label in enumerate(labels)},
    )
    model = BertForSequenceClassification(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)


# -- extractive QA heads, masked LMs and seq2seq models ----------------------------------------
# Builders for the adapters in models/qa.py, models/masked.py and models/seq2seq.py.



def build_frequency_wordpiece_tokenizer(corpus: Iterable[str], *, vocab_size: int = 1000) -> PreTrainedTokenizerFast:
    """A BERT-style uncased WordPiece tokenizer with a vocabulary chosen deterministically.

    tokenizers' WordPiece trainer breaks ties in hash order, so its vocabulary changes from
    one process to the next; this one is the special tokens, every character seen (word
    initial and ``##`` continued), then the most frequent words (ties alphabetical). Words
    outside the vocabulary fall back to the longest known pieces, down to characters.
    """
    from collections import Counter

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    from evalharness.models.loading import quiet_transformers

    quiet_transformers()
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in corpus:
        words.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    characters = sorted({char for word in words for char in word})
    vocab = SPECIAL_TOKENS + characters + ["##" + char for char in characters]
    ranked = sorted((w for w in words if w not in set(vocab)), key=lambda w: (-words[w], w))
    vocab += ranked[: max(0, vocab_size - len(vocab))]
    backend = Tokenizer(models.WordPiece({token: i for i, token in enumerate(vocab)}, unk_token="[UNK]"))
    backend.normalizer = normalizer
    backend.pre_tokenizer = pre_tokenizer
    return _bert_tokenizer(backend)


def build_qa_model(
    directory: Path,
    tokenizer: PreTrainedTokenizerBase,
    *,
    seed: int = 0,
    hidden: int = 32,
    layers: int = 2,
    logit_scale: float = 8.0,
    null_boost: float = 0.3,
) -> Path:
    """A randomly initialised BERT extractive-QA head.

    ``logit_scale`` multiplies the span head's weights so that start/end distributions are
    peaked, as in a trained model: with near-uniform logits every span ties and decoding
    tests would compare float noise. ``null_boost`` moves the [CLS] embedding towards the
    span head's direction so that, like a SQuAD v2.0 model, it sometimes prefers "no answer"
    (0.3 gives a mix of answers and abstentions on SQuAD paragraphs).
    """
    import torch
    from transformers import BertForQuestionAnswering

    torch.manual_seed(seed)
    model = BertForQuestionAnswering(_bert_config(tokenizer, hidden=hidden, layers=layers))
    with torch.no_grad():
        model.qa_outputs.weight.mul_(logit_scale)
        direction = model.qa_outputs.weight.sum(0)
        model.bert.embeddings.word_embeddings.weight[tokenizer.cls_token_id] += null_boost * direction / direction.norm()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)


def build_masked_lm(directory: Path, tokenizer: PreTrainedTokenizerBase, *, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """A randomly initialised BERT masked LM (for pseudo-log-likelihood scoring)."""
    import torch
    from transformers import BertForMaskedLM

    torch.manual_seed(seed)
    BertForMaskedLM(_bert_config(tokenizer, hidden=hidden, layers=layers)).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)


def build_unigram_tokenizer(corpus: Iterable[str], *, vocab_size: int = 400, extra_ids: int = 8) -> T5Tokenizer:
    """A T5 tokenizer (``T5Tokenizer``) around a Unigram model trained on ``corpus``.

    Ids follow T5's layout: ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2, pieces, then the sentinel
    ``<extra_id_N>`` tokens in reverse order.
    """
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import T5Tokenizer

    from evalharness.models.loading import quiet_transformers

    quiet_transformers()
    backend = Tokenizer(models.Unigram())
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False
    )
    backend.train_from_iterator(list(corpus), trainer=trainer)
    trained = json.loads(backend.to_str())["model"]["vocab"]
    # The trainer's scores vary in the last bits and order ties by hash between processes:
    # round them and sort, so that ids (and hence tiny models) are the same in every run.
    pieces = trained[:3] + sorted(((p, round(float(s), 6)) for p, s in trained[3:]), key=lambda item: (-item[1], item[0]))
    pieces = [(piece, float(score)) for piece, score in pieces]
    pieces += [(f"<extra_id_{index}>", 0.0) for index in range(extra_ids - 1, -1, -1)]
    return T5Tokenizer(vocab=pieces, extra_ids=extra_ids, model_max_length=128)


def build_t5(directory: Path, tokenizer: PreTrainedTokenizerBase, *, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """A randomly initialised T5 (``T5ForConditionalGeneration``, ``model_type`` t5).

    Weights are initialised larger than T5's default so that greedy output varies with the
    input (the tests compare generations)."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=hidden,
        d_kv=8,
        d_ff=hidden * 2,
        num_layers=layers,
        num_decoder_layers=layers,
        num_heads=max(1, hidden // 8),
        relative_attention_num_buckets=8,
        relative_attention_max_distance=32,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,  # type: ignore[call-arg]  # transformers accepts extra config keywords at runtime; its typed __init__ lists fields only
        initializer_factor=5.0,  # default-scale random weights only ever emit <pad>
    )
    T5ForConditionalGeneration(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)


def build_bpe_tokenizer(corpus: Iterable[str], *, vocab_size: int = 400) -> BartTokenizer:
    """A BART tokenizer (byte-level BPE, ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3)."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BartTokenizer

    from evalharness.models.loading import quiet_transformers

    quiet_transformers()
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(list(corpus), trainer=trainer)
    model = json.loads(backend.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return BartTokenizer(vocab=model["vocab"], merges=merges, model_max_length=128)  # type: ignore[arg-type]  # transformers types merges as str; (left, right) pairs work


class _EncoderDecoderShape(TypedDict):
    d_model: int
    encoder_layers: int
    decoder_layers: int
    encoder_attention_heads: int
    decoder_attention_heads: int
    encoder_ffn_dim: int
    decoder_ffn_dim: int
    max_position_embeddings: int


def _encoder_decoder_shape(hidden: int, layers: int) -> _EncoderDecoderShape:
    """The size settings BART-family configs (BART, Marian) share."""
    return {
        "d_model": hidden,
        "encoder_layers": layers,
        "decoder_layers": layers,
        "encoder_attention_heads": max(1, hidden // 8),
        "decoder_attention_heads": max(1, hidden // 8),
        "encoder_ffn_dim": hidden * 2,
        "decoder_ffn_dim": hidden * 2,
        "max_position_embeddings": 128,
    }


def build_bart(directory: Path, tokenizer: PreTrainedTokenizerBase, *, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """A randomly initialised BART (``BartForConditionalGeneration``, ``model_type`` bart)."""
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    torch.manual_seed(seed)
    config = BartConfig(
        vocab_size=len(tokenizer),
        **_encoder_decoder_shape(hidden, layers),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        forced_eos_token_id=tokenizer.eos_token_id,
        init_std=0.2,  # default-scale random weights emit </s> at once
    )
    BartForConditionalGeneration(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)


def build_marian(directory: Path, corpus: Sequence[str], *, seed: int = 0, hidden: int = 32, layers: int = 2, vocab_size: int = 300) -> Path:
    """A randomly initialised Marian MT model with its SentencePiece ``MarianTokenizer``.

    As in the OPUS-MT checkpoints, one SentencePiece model serves source and target, and
    ``vocab.json`` maps its pieces to ids with ``</s>`` 0, ``<unk>`` 1 and ``<pad>`` last.
    """
    import io
    import json
    import tempfile

    import sentencepiece
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    from evalharness.models.loading import quiet_transformers

    quiet_transformers()
    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(list(corpus)),
        model_writer=buffer,
        vocab_size=vocab_size,
        model_type="unigram",
        hard_vocab_limit=False,
        unk_id=1,
        eos_id=0,
        bos_id=-1,
        pad_id=-1,
        minloglevel=2,
    )
    processor = sentencepiece.SentencePieceProcessor(model_proto=buffer.getvalue())
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    vocab = {piece: index for index, piece in enumerate(pieces)}
    vocab["<pad>"] = len(vocab)
    with tempfile.TemporaryDirectory() as scratch:
        spm = Path(scratch, "spm.model")
        spm.write_bytes(buffer.getvalue())
        vocab_file = Path(scratch, "vocab.json")
        vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
        tokenizer = MarianTokenizer(str(spm), str(spm), str(vocab_file), model_max_length=128)
        tokenizer.save_pretrained(directory)
    torch.manual_seed(seed)
    config = MarianConfig(
        vocab_size=len(vocab),
        **_encoder_decoder_shape(hidden, layers),
        pad_token_id=vocab["<pad>"],
        eos_token_id=0,
        decoder_start_token_id=vocab["<pad>"],
        forced_eos_token_id=0,
        init_std=0.2,
    )
    MarianMTModel(config).save_pretrained(directory)
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
) -> PreTrainedTokenizerFast:
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


def _causal_config(tokenizer: PreTrainedTokenizerBase, architecture: str, *, hidden: int, layers: int, max_positions: int) -> PreTrainedConfig:
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
    tokenizer: PreTrainedTokenizerBase,
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
