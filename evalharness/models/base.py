"""What every model adapter shares: locating a checkpoint, detecting its kind, choosing a
device and dtype, fingerprinting its files, and the adapter base class.

Checkpoints are local directories or Hugging Face Hub ids (resolved through the local cache
when offline). ``trust_remote_code`` is off unless the caller turns it on; weights load from
safetensors when present (transformers' default), and pickled weights only with
``weights_only=True`` (transformers' own loader).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypeVar, cast

from pydantic import ValidationError

from evalharness.config import StrictModel
from evalharness.config.yamlfile import YamlValue
from evalharness.errors import ModelError, UsageError, did_you_mean
from evalharness.jsonvalues import JSONObject, JsonValue
from evalharness.types import Request, RequestKind

if TYPE_CHECKING:
    from transformers import GenerationMixin, PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "ARCHITECTURE_KINDS",
    "options_with",
    "AUTO_MAPPINGS",
    "ModelAdapter",
    "ModelInfo",
    "architectures_of",
    "checkpoint_kinds",
    "detect_kind",
    "fingerprint_checkpoint",
    "read_config",
    "resolve_checkpoint",
    "resolve_tokenizer_dir",
    "select_device",
    "select_dtype",
]

# Checkpoint kind -> the transformers auto mapping (model type -> class name) that lists its
# head classes, most specific first. Class names are matched exactly: a suffix alone would
# call Gemma3ForConditionalGeneration (a decoder-only model) a seq2seq model.
AUTO_MAPPINGS: dict[str, str] = {
    "sequence_classifier": "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
    "extractive_qa": "MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES",
    "seq2seq": "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
    "masked_lm": "MODEL_FOR_MASKED_LM_MAPPING_NAMES",
    "causal_lm": "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
}

# Fallback for class names transformers does not know (remote code, old names such as
# T5WithLMHeadModel): architecture-name suffix -> checkpoint kind, most specific first.
# Generic LM suffixes are settled by the config (see _lm_kind).
ARCHITECTURE_KINDS: dict[str, str] = {
    "ForSequenceClassification": "sequence_classifier",
    "ForQuestionAnswering": "extractive_qa",
    "ForMaskedLM": "masked_lm",
    "ForCausalLM": "causal_lm",
    "LMHeadModel": "causal_lm",
    "ForConditionalGeneration": "seq2seq",
    "ForSeq2SeqLM": "seq2seq",
    "MTModel": "seq2seq",
}

_SKIP_IN_FINGERPRINT = {"README.md", ".gitattributes", "training_args.bin"}


@dataclass(frozen=True)
class Conventions:
    """What about a loaded model, besides its weights, kind, dtype and device, changes its
    answers: the backend, how inputs are tokenized and how the weights were loaded (a PEFT
    adapter merged or not, ``--model-args``). Typed fields, so the prediction cache key is
    built from them; ``ModelInfo.notes`` say the same for people and may be reworded."""

    backend: str = "hf"
    engine: str | None = None  # a serving engine's name and version
    api: str | None = None  # the served API (completions, chat)
    tokenizer: str | None = None  # the tokenizer's class, or where a served model's comes from
    padding_side: str | None = None
    pad_token: str | None = None
    bos_token: str | None = None
    eos_token: str | None = None
    adds_bos: bool | None = None  # the default encoding starts with BOS
    appends_eos: bool | None = None  # the default encoding ends with EOS
    prefix_token: str | None = None  # conditions empty contexts and rolling windows
    max_length: int | None = None  # longest input in tokens
    context_length: int | None = None  # a served model's context
    adapter: str | None = None  # a PEFT adapter "merged" into the base weights or kept "unmerged" (the last bits differ)
    model_args: Mapping[str, YamlValue] | None = None  # --model-args that can change the answers (config overrides, attention...)


def tokenizer_conventions(
    tokenizer: PreTrainedTokenizerBase, *, adapter: str | None = None, model_args: Mapping[str, YamlValue] | None = None
) -> Conventions:
    """The conventions a loaded tokenizer fixes (after the adapter has prepared it)."""
    return Conventions(
        tokenizer=type(tokenizer).__name__,
        padding_side=getattr(tokenizer, "padding_side", None),
        pad_token=getattr(tokenizer, "pad_token", None),
        bos_token=getattr(tokenizer, "bos_token", None),
        eos_token=getattr(tokenizer, "eos_token", None),
        adapter=adapter,
        model_args=model_args,
    )


@dataclass(frozen=True)
class ModelInfo:
    """Provenance of the loaded checkpoint, written into the run record."""

    name: str
    path: str
    kind: str
    fingerprint: str
    architecture: str
    device: str
    dtype: str
    num_parameters: int | None  # None: a served model that does not say
    revision: str | None = None
    notes: Mapping[str, JsonValue] = field(default_factory=dict)
    conventions: Conventions = field(default_factory=Conventions)


# Files a checkpoint is made of (weights, config, tokenizer vocabularies and settings, chat
# templates, checkpoint code that only runs with --trust-remote-code), fetched from the hub.
_TOKENIZER_PATTERNS = ["*.json", "*.model", "*.txt", "*.tiktoken", "*.spm", "*.codes", "*.jinja"]
_CHECKPOINT_PATTERNS = [*_TOKENIZER_PATTERNS, "*.safetensors", "*.py"]


def resolve_checkpoint(path_or_id: str, *, revision: str | None = None) -> Path:
    """A local directory as is; otherwise a hub id fetched (or found in the cache offline)."""
    local = _local_directory(path_or_id, "model")
    if local is not None:
        if not (local / "config.json").is_file() and not (local / "adapter_config.json").is_file():
            raise ModelError(f"model directory '{local}' has no config.json (nor a PEFT adapter's adapter_config.json)")
        return local
    return _snapshot(path_or_id, revision, _CHECKPOINT_PATTERNS, "model")


def resolve_tokenizer_dir(path_or_id: str) -> Path:
    """``--tokenizer``: a local directory, or a hub id whose tokenizer files are fetched."""
    local = _local_directory(path_or_id, "tokenizer")
    return local if local is not None else _snapshot(path_or_id, None, _TOKENIZER_PATTERNS, "tokenizer")


def _local_directory(path_or_id: str, what: str) -> Path | None:
    """The directory ``path_or_id`` names, None for what can only be a hub id."""
    local = Path(path_or_id).expanduser()
    if local.exists():
        if not local.is_dir():
            raise ModelError(f"{what} path '{local}' is a file; give the checkpoint directory")
        return local
    if path_or_id.startswith((".", "/", "~")) or path_or_id.count("/") > 1:
        raise ModelError(f"{what} directory '{path_or_id}' does not exist")
    return None


def _snapshot(hub_id: str, revision: str | None, patterns: list[str], what: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(hub_id, revision=revision, allow_patterns=patterns))
    except Exception as exc:  # offline, not found, gated: the user must act
        raise ModelError(
            f"{what} '{hub_id}' is not a local directory and could not be fetched from the "
            f"Hugging Face Hub ({type(exc).__name__}: {exc}); pass a checkpoint directory"
        ) from None


def read_config(path: Path) -> JSONObject:
    """``config.json``, with the field the kind is read from checked (a hand-edited
    ``architectures`` must still be a list of class names)."""
    file = path / "config.json"
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{file}: unreadable ({exc})") from None
    if not isinstance(config, dict):
        raise ModelError(f"{file}: expected a JSON object, got {type(config).__name__}")
    architectures = config.get("architectures")
    if architectures is not None and not (isinstance(architectures, list) and all(isinstance(a, str) for a in architectures)):
        raise ModelError(f"{file}: 'architectures' must be a list of model class names, got {architectures!r}")
    return config


def _architecture_kinds(architecture: str, config: Mapping[str, JsonValue]) -> tuple[str, ...]:
    """Every kind a head class can be (``XLMWithLMHeadModel`` is a masked and a causal LM),
    most specific first; ``()`` for a class no auto mapping or suffix names."""
    known = _transformers_head_kinds()
    if architecture in known:
        return known[architecture]
    for suffix, kind in ARCHITECTURE_KINDS.items():
        if architecture.endswith(suffix):
            return (_lm_kind(config) if kind in _GENERIC_LM_KINDS else kind,)
    return ()


def architectures_of(config: Mapping[str, JsonValue]) -> list[JsonValue]:
    """``config.architectures`` (``[]`` when absent or not a list; ``read_config`` refuses the latter)."""
    architectures = config.get("architectures")
    return architectures if isinstance(architectures, list) else []


def checkpoint_kinds(config: Mapping[str, JsonValue]) -> dict[str, tuple[str, ...]]:
    """Architecture -> the kinds it can be, for the config's architectures whose kind is known."""
    found = {str(architecture): _architecture_kinds(str(architecture), config) for architecture in architectures_of(config)}
    return {architecture: kinds for architecture, kinds in found.items() if kinds}


def detect_kind(config: Mapping[str, JsonValue], *, source: str) -> tuple[str, str]:
    """``(kind, architecture)`` from ``config.architectures``; ``--model-kind`` overrides."""
    architectures = architectures_of(config)
    found = checkpoint_kinds(config)
    if found:
        architecture, kinds = next(iter(found.items()))
        return kinds[0], architecture
    raise ModelError(
        f"{source}: cannot tell the checkpoint kind from architectures={architectures}; "
        f"pass --model-kind (one of: {', '.join(sorted(set(ARCHITECTURE_KINDS.values())))})"
    )


_GENERIC_LM_KINDS = {"causal_lm", "seq2seq"}


@lru_cache(maxsize=1)
def _transformers_head_kinds() -> dict[str, tuple[str, ...]]:
    """Head class name -> kinds, from transformers' auto mappings (in AUTO_MAPPINGS order)."""
    from transformers.models.auto import modeling_auto

    kinds: dict[str, tuple[str, ...]] = {}
    for kind, mapping_name in AUTO_MAPPINGS.items():
        for names in getattr(modeling_auto, mapping_name, {}).values():
            for name in (names,) if isinstance(names, str) else names:
                if kind not in kinds.get(name, ()):
                    kinds[name] = (*kinds.get(name, ()), kind)
    return kinds


def _lm_kind(config: Mapping[str, JsonValue]) -> str:
    """``seq2seq`` for encoder-decoder configs (``T5WithLMHeadModel``), else ``causal_lm``."""
    if config.get("is_encoder_decoder"):
        return "seq2seq"
    from transformers.models.auto import modeling_auto

    seq2seq_types = modeling_auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES
    return "seq2seq" if config.get("model_type") in seq2seq_types else "causal_lm"


def fingerprint_checkpoint(path: Path) -> str:
    """Hash of the checkpoint's files (weights, config, tokenizer): same bytes, same hash."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
    for file in files:
        if file.name in _SKIP_IN_FINGERPRINT:
            continue
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(b"\0")
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()[:16]


def select_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {requested} was requested but CUDA is not available")
    if requested != "cpu" and not requested.startswith("cuda"):
        raise UsageError(f"unknown --device '{requested}' (auto, cpu, cuda, cuda:N)")
    return requested


_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16"}


def select_dtype(requested: str, device: str) -> str:
    """``auto``: bf16 on GPUs that support it, fp32 otherwise (CPU half precision is slow)."""
    if requested == "auto":
        import torch

        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return "bfloat16"
        return "float32"
    if requested not in _DTYPES:
        raise UsageError(f"unknown --dtype '{requested}'{did_you_mean(requested, _DTYPES)}")
    return _DTYPES[requested]


def generator(model: PreTrainedModel) -> GenerationMixin:
    """``model`` as transformers' generation API: the kinds that generate (causal and seq2seq
    LMs) load through Auto classes whose models mix in ``GenerationMixin``, and an unmerged PEFT
    adapter has its own ``generate`` (``peft_adapters``)."""
    return cast("GenerationMixin", model)


def decoded(tokenizer: PreTrainedTokenizerBase, ids: list[int]) -> str:
    """The text of one sequence of token ids, special tokens skipped."""
    text = tokenizer.decode(ids, skip_special_tokens=True)
    assert isinstance(text, str)  # one sequence decodes to one text
    return text


OptionsT = TypeVar("OptionsT", bound=StrictModel)  # the typed options of evalharness.types


def options_with(cls: type[OptionsT], options: OptionsT | None, settings: Mapping[str, object]) -> OptionsT:
    """The typed options of a request kind from an options object (what the engine passes)
    and keyword settings (the public API's convenience: ``lm.generate(p, max_new_tokens=8)``),
    validated together."""
    unknown = sorted(set(settings) - set(cls.model_fields))
    if unknown:
        raise UsageError(f"unknown option(s) {unknown} for {cls.__name__} (known: {', '.join(sorted(cls.model_fields))})")
    base = options if options is not None else cls()
    if not settings:
        return base
    try:
        return cls.model_validate({**base.model_dump(), **settings})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or cls.__name__}: {e['msg']}" for e in exc.errors(include_url=False))
        raise UsageError(f"invalid {cls.__name__}: {problems}") from None


class ModelAdapter:
    """A loaded checkpoint that answers some request kinds in batches.

    Subclasses set ``kind`` and ``answers`` and implement the public method for each request
    kind they answer (``classify``, ``answer``, ``loglikelihood``, ``loglikelihood_rolling``,
    ``generate``, ``pseudo_loglikelihood``). The runner asks only for kinds in ``answers``.
    """

    kind: ClassVar[str]
    answers: frozenset[RequestKind]  # a class constant; a remote backend sets it per instance
    auto_class_name: ClassVar[str]  # the transformers Auto class that loads the weights

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, info: ModelInfo) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.info = info

    @classmethod
    def prepare_tokenizer(cls, tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel) -> JSONObject:
        """Fix tokenizer settings the kind needs; return notes for the run record."""
        notes: JSONObject = {}
        if tokenizer.pad_token is None:
            fallback = tokenizer.eos_token or tokenizer.unk_token
            if fallback is None:
                raise ModelError(
                    f"{model.name_or_path}: the tokenizer has no pad, eos or unk token to pad with"
                )
            tokenizer.pad_token = fallback
            notes["pad_token"] = f"missing; set to {fallback!r}"
        return notes

    def check_generation(self, max_new_tokens: int) -> None:
        """Raise ``UsageError`` when generation settings cannot work with this checkpoint.

        Called while a run is planned, so a hopeless setting stops it before any forward
        pass. Nothing to check by default (an encoder-decoder's output has its own positions).
        """

    def token_lengths(self, requests: Sequence[Request]) -> list[int]:
        """Tokens in each request's texts (no special tokens), for sorting requests into
        batches the way the model will see them: character counts are a poor proxy for a
        subword vocabulary (SST-2 batches padded 65% full when sorted by characters, 82%
        when sorted by tokens)."""
        parts = [[part for part in (request if isinstance(request, tuple) else (request,)) if isinstance(part, str)] for request in requests]
        flat = [text for texts in parts for text in texts]
        counts = iter(len(ids) for ids in self.tokenizer(flat, add_special_tokens=False, verbose=False)["input_ids"]) if flat else iter(())
        return [sum(next(counts) for _ in texts) for texts in parts]

    @property
    def max_length(self) -> int:
        """Longest input the model accepts, from the tokenizer or the position embeddings."""
        limit = getattr(self.tokenizer, "model_max_length", None)
        positions = getattr(self.model.config, "max_position_embeddings", None)
        if limit is None or limit > 1_000_000:  # "no limit" sentinel of tokenizers
            limit = positions or 512
        elif positions:
            limit = min(limit, positions)
        return int(limit)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.info.name!r}, device={self.info.device}, dtype={self.info.dtype})"
