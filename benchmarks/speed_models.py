"""Tiny-but-realistic checkpoints for ``speed.py``, built from configs into a cache dir.

Random weights (speed is what is measured; scores are compared between paths, not judged),
tokenizers trained locally on the shared data with ``evalharness.testing.tiny``'s builders:

- BERT, 6 layers, 384 wide, 12 heads, FFN 1536, 512 positions: an SST-2 classifier, a QNLI
  classifier (same weights, different ``id2label``) and an extractive-QA head;
- GPT-2, 6 layers, 384 wide, 6 heads, 512 positions, byte-level BPE;
- T5, 4 + 4 layers, 256 wide, FFN 1024, Unigram vocabulary.

Each checkpoint is rebuilt only when its stamp (the settings) changes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

STAMP_VERSION = 1
VOCAB = 8000


def _corpus(data_dir: Path) -> list[str]:
    """SST-2 train, QNLI dev and WikiText-2 valid text: enough words for an 8k vocabulary."""
    lines = (data_dir / "glue/SST-2/train.tsv").read_text(encoding="utf-8").splitlines()[1:20001]
    texts = [line.split("\t")[0] for line in lines]
    texts += (data_dir / "wikitext-2/wiki.valid.tokens.txt").read_text(encoding="utf-8").splitlines()
    for line in (data_dir / "glue/QNLI/dev.tsv").read_text(encoding="utf-8").splitlines()[1:2001]:
        texts.extend(line.split("\t")[1:3])
    source = data_dir / "wmt21/sources/newstest2021.de-en.src.de"
    texts += source.read_text(encoding="utf-8").splitlines()
    return [t for t in texts if t.strip()]


def _fresh(directory: Path, settings: dict) -> bool:
    stamp = directory / "speed_stamp.json"
    return stamp.is_file() and json.loads(stamp.read_text()) == settings


def _stamp(directory: Path, settings: dict) -> None:
    (directory / "speed_stamp.json").write_text(json.dumps(settings))


def _bert_config(tokenizer, **extra):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(tokenizer), hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
        intermediate_size=1536, max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id, **extra,
    )


def build_all(cache: Path, data_dir: Path) -> dict[str, Path]:
    """Checkpoint directories by role: sst2, qnli, qa, causal, t5."""
    import torch
    from transformers import (
        BertForQuestionAnswering,
        BertForSequenceClassification,
        GPT2Config,
        GPT2LMHeadModel,
        T5Config,
        T5ForConditionalGeneration,
    )

    from evalharness.testing.tiny import build_byte_bpe_tokenizer, build_frequency_wordpiece_tokenizer, build_unigram_tokenizer

    paths = {name: cache / "models" / name for name in ("sst2", "qnli", "qa", "causal", "t5")}
    settings = {"version": STAMP_VERSION, "vocab": VOCAB, "data_dir": str(data_dir.resolve())}
    if all(_fresh(p, settings) for p in paths.values()):
        return paths
    corpus = _corpus(data_dir)

    wordpiece = build_frequency_wordpiece_tokenizer(corpus, vocab_size=VOCAB)
    wordpiece.model_max_length = 512
    for name, labels in (("sst2", ["negative", "positive"]), ("qnli", ["entailment", "not_entailment"])):
        torch.manual_seed(0)
        config = _bert_config(wordpiece, num_labels=2, id2label=dict(enumerate(labels)),
                              label2id={label: i for i, label in enumerate(labels)})
        BertForSequenceClassification(config).save_pretrained(paths[name])
        wordpiece.save_pretrained(paths[name])
        _stamp(paths[name], settings)
    torch.manual_seed(0)
    qa = BertForQuestionAnswering(_bert_config(wordpiece))
    with torch.no_grad():  # peaked start/end distributions, as a trained head has (see tiny.build_qa_model)
        qa.qa_outputs.weight.mul_(8.0)
    qa.save_pretrained(paths["qa"])
    wordpiece.save_pretrained(paths["qa"])
    _stamp(paths["qa"], settings)

    bpe = build_byte_bpe_tokenizer(corpus, vocab_size=VOCAB, model_max_length=512)
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(
        vocab_size=len(bpe), n_embd=384, n_layer=6, n_head=6, n_positions=512,
        bos_token_id=bpe.bos_token_id, eos_token_id=bpe.eos_token_id,
    ))
    gpt2.save_pretrained(paths["causal"])
    bpe.save_pretrained(paths["causal"])
    _stamp(paths["causal"], settings)

    unigram = build_unigram_tokenizer([re.sub(r"\s+", " ", t) for t in corpus], vocab_size=VOCAB)
    unigram.model_max_length = 512
    torch.manual_seed(0)
    t5 = T5ForConditionalGeneration(T5Config(
        vocab_size=len(unigram), d_model=256, d_kv=32, d_ff=1024, num_layers=4, num_decoder_layers=4,
        num_heads=8, pad_token_id=unigram.pad_token_id, eos_token_id=unigram.eos_token_id,
        decoder_start_token_id=unigram.pad_token_id, initializer_factor=5.0,
    ))
    t5.save_pretrained(paths["t5"])
    unigram.save_pretrained(paths["t5"])
    _stamp(paths["t5"], settings)
    return paths
