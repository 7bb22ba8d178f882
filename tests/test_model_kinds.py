"""Checkpoint kind detection from ``config.architectures`` against real architecture names."""

from __future__ import annotations

import pytest

from evalharness.errors import ModelError
from evalharness.models.base import detect_kind

REAL_ARCHITECTURES = {
    # name in config.json -> (kind, extra config keys as in the Hub checkpoint)
    "BertForSequenceClassification": ("sequence_classifier", {}),
    "BertForQuestionAnswering": ("extractive_qa", {}),
    "DistilBertForQuestionAnswering": ("extractive_qa", {}),
    "RobertaForQuestionAnswering": ("extractive_qa", {}),
    "T5ForConditionalGeneration": ("seq2seq", {"model_type": "t5"}),
    "BartForConditionalGeneration": ("seq2seq", {"model_type": "bart"}),  # also a masked LM mapping entry
    "MarianMTModel": ("seq2seq", {"model_type": "marian"}),
    "PegasusForConditionalGeneration": ("seq2seq", {"model_type": "pegasus"}),
    "MBartForConditionalGeneration": ("seq2seq", {"model_type": "mbart"}),
    "BertForMaskedLM": ("masked_lm", {}),
    "RobertaForMaskedLM": ("masked_lm", {}),
    "DistilBertForMaskedLM": ("masked_lm", {}),
    "XLMRobertaForMaskedLM": ("masked_lm", {}),
    "GPT2LMHeadModel": ("causal_lm", {}),
    "LlamaForCausalLM": ("causal_lm", {}),
    # Decoder-only despite the suffix: transformers lists it as a causal LM head.
    "Gemma3ForConditionalGeneration": ("causal_lm", {"model_type": "gemma3"}),
}


@pytest.mark.parametrize("architecture", sorted(REAL_ARCHITECTURES))
def test_real_architecture_names(architecture):
    kind, config = REAL_ARCHITECTURES[architecture]
    assert detect_kind({"architectures": [architecture], **config}, source="x") == (kind, architecture)


def test_names_transformers_no_longer_knows_fall_back_to_the_config():
    # The original t5-small/t5-base configs still say T5WithLMHeadModel.
    assert detect_kind({"architectures": ["T5WithLMHeadModel"], "model_type": "t5"}, source="x")[0] == "seq2seq"
    remote = {"architectures": ["MyModelForConditionalGeneration"], "model_type": "mine"}
    assert detect_kind({**remote, "is_encoder_decoder": True}, source="x")[0] == "seq2seq"
    assert detect_kind(remote, source="x")[0] == "causal_lm"
    assert detect_kind({"architectures": ["MyBertForMaskedLM"]}, source="x")[0] == "masked_lm"


def test_unknown_architecture_asks_for_model_kind():
    with pytest.raises(ModelError, match="pass --model-kind"):
        detect_kind({"architectures": ["SomethingElse"]}, source="ckpt")
