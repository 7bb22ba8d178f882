"""Tiny instruct checkpoints and PEFT adapters built locally (tests, docs, the parity script).

Chat tokenizers are byte-level BPE tokenizers trained on the caller's corpus, with the special
tokens and the Jinja chat template of a known model family:

- ``chatml`` (Qwen style): ``<|im_start|>role\\n...<|im_end|>``, a system role, no BOS; EOS is
  ``<|im_end|>``, so the model ends assistant turns with its end-of-sequence token;
- ``chatml_default_system``: the same, but the template writes its own system prompt when none
  is given (as Qwen2.5's does);
- ``gemma``: ``<bos>`` written by the template *and* added by the tokenizer, turns
  ``<start_of_turn>user ... <end_of_turn>``, and no system role (the template raises);
- ``llama2``: ``{{ bos_token }}[INST] ... [/INST]`` with ``<<SYS>>`` system text, and a tokenizer
  that adds BOS too (the classic doubled-BOS set-up).

LoRA adapters are made with ``peft`` on a saved base (non-zero ``B``, so the adapter changes
the outputs) and saved with ``save_pretrained``; :func:`save_merged_adapter` writes the same
adapter merged into its base as a full checkpoint, for equality checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast

__all__ = ["CHAT_STYLES", "build_chat_model", "build_chat_tokenizer", "build_lora_adapter", "save_merged_adapter"]

_CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
_CHATML_DEFAULT_SYSTEM = (
    "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a tiny helpful assistant.<|im_end|>\\n' }}{% endif %}"
    + _CHATML
)
_GEMMA = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)
_LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set system = '<<SYS>>\\n' + messages[0]['content'] + '\\n<</SYS>>\\n\\n' %}"
    "{% set messages = messages[1:] %}{% else %}{% set system = '' %}{% endif %}"
    "{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + (system if loop.first else '') + message['content'] + ' [/INST]' }}"
    "{% else %}{{ ' ' + message['content'] + ' ' + eos_token }}{% endif %}{% endfor %}"
)

# Style -> (template, BOS, EOS, pad, other special tokens, tokenizer adds BOS, end-of-turn token).
CHAT_STYLES: dict[str, tuple[str, str | None, str, str, tuple[str, ...], bool, str]] = {
    "chatml": (_CHATML, None, "<|im_end|>", "<|endoftext|>", ("<|im_start|>",), False, "<|im_end|>"),
    "chatml_default_system": (_CHATML_DEFAULT_SYSTEM, None, "<|im_end|>", "<|endoftext|>", ("<|im_start|>",), False, "<|im_end|>"),
    "gemma": (_GEMMA, "<bos>", "<eos>", "<pad>", ("<start_of_turn>", "<end_of_turn>"), True, "<end_of_turn>"),
    "llama2": (_LLAMA2, "<s>", "</s>", "<unk>", (), True, "</s>"),
}


def build_chat_tokenizer(corpus: Iterable[str], *, style: str = "chatml", vocab_size: int = 400, model_max_length: int = 256) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with the special tokens and chat template of ``style``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from evalharness.models.loading import quiet_transformers

    quiet_transformers()
    template, bos, eos, pad, others, add_bos, _ = CHAT_STYLES[style]
    specials = list(dict.fromkeys(token for token in (bos, eos, pad, *others) if token))
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    backend.train_from_iterator(list(corpus), trainer=trainer)
    if add_bos:
        assert bos is not None  # styles that add BOS name it
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B:1", special_tokens=[(bos, backend.token_to_id(bos))]
        )
    else:
        backend.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=None,
        extra_special_tokens=list(others), model_max_length=model_max_length, clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = template
    return tokenizer


def build_chat_model(
    directory: Path, tokenizer: PreTrainedTokenizerBase, *, instruct: bool = True, seed: int = 0, hidden: int = 32, layers: int = 2, max_positions: int = 256
) -> Path:
    """A random-init Llama causal LM saved with ``tokenizer``; ``instruct``: its generation
    config ends generation at the template's end-of-turn token too (as instruct releases do)."""
    from transformers import GenerationConfig

    from evalharness.testing.tiny import build_causal_lm

    build_causal_lm(directory, tokenizer, architecture="llama", seed=seed, hidden=hidden, layers=layers, max_positions=max_positions)
    eot = next((style[6] for style in CHAT_STYLES.values() if style[0] == tokenizer.chat_template), tokenizer.eos_token)
    eos = [tokenizer.eos_token_id]
    if instruct:
        eos.append(tokenizer.convert_tokens_to_ids(eot))
    config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=sorted(set(eos)) if instruct else tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config.save_pretrained(directory)
    return Path(directory)


_AUTO_CLASSES = {
    "CAUSAL_LM": "AutoModelForCausalLM",
    "SEQ_2_SEQ_LM": "AutoModelForSeq2SeqLM",
    "SEQ_CLS": "AutoModelForSequenceClassification",
    "QUESTION_ANS": "AutoModelForQuestionAnswering",
}


class _AutoModel(Protocol):
    """A transformers ``AutoModelFor...`` class."""

    def from_pretrained(self, path: Path, /, **settings: object) -> PreTrainedModel: ...


def _auto(task_type: str) -> _AutoModel:
    import transformers

    return getattr(transformers, _AUTO_CLASSES[task_type])


def build_lora_adapter(
    directory: Path,
    base: Path,
    *,
    task_type: str = "CAUSAL_LM",
    target_modules: Sequence[str] | None = None,
    modules_to_save: Sequence[str] | None = None,
    rank: int = 4,
    seed: int = 0,
    base_name: str | None = None,
    num_labels: int | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> Path:
    """A LoRA adapter on ``base`` with random (non-zero) weights, saved with ``save_pretrained``.

    ``base_name``: what ``adapter_config.json`` records as the base (default: ``base``'s
    absolute path); ``num_labels``: a classifier adapter trained with another head size than
    the base config's; ``tokenizer``: saved alongside (adapters trained with a chat tokenizer).
    """
    import torch
    from peft import LoraConfig, get_peft_model

    from evalharness.models.loading import quiet_transformers

    quiet_transformers()
    extra = {"num_labels": num_labels, "ignore_mismatched_sizes": True} if num_labels else {}
    model = _auto(task_type).from_pretrained(Path(base).resolve(), **extra)
    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, target_modules=list(target_modules) if target_modules else None, task_type=task_type,
        modules_to_save=list(modules_to_save) if modules_to_save else None, init_lora_weights=False,
    )
    adapted = get_peft_model(model, config)
    adapted.peft_config["default"].base_model_name_or_path = base_name if base_name is not None else str(Path(base).resolve())
    adapted.save_pretrained(str(directory))
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
    return Path(directory)


def save_merged_adapter(adapter: Path, directory: Path, *, base: Path | None = None, num_labels: int | None = None) -> Path:
    """``adapter`` merged into its base (``merge_and_unload``) and saved as a full checkpoint
    with the tokenizer it is evaluated with (``num_labels``: as given to :func:`build_lora_adapter`)."""
    import json

    from peft import PeftModel
    from transformers import AutoTokenizer

    config = json.loads((Path(adapter) / "adapter_config.json").read_text(encoding="utf-8"))
    base = Path(base or config["base_model_name_or_path"])
    head = Path(adapter).resolve()
    extra = {"num_labels": num_labels, "ignore_mismatched_sizes": True} if num_labels else {}
    saved = _auto(config["task_type"]).from_pretrained(base, **extra)
    merged = PeftModel.from_pretrained(saved, head).merge_and_unload()
    merged.save_pretrained(directory)
    tokenizer_dir = head if (head / "tokenizer_config.json").is_file() else base
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(directory)
    for name in ("generation_config.json",):
        if (base / name).is_file() and not (Path(directory) / name).is_file():
            (Path(directory) / name).write_bytes((base / name).read_bytes())
    return Path(directory)
