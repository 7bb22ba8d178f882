"""PEFT adapters: ``--model DIR`` holding ``adapter_config.json`` (LoRA and its relatives).

The base checkpoint comes from ``--base-model PATH`` or the adapter's
``base_model_name_or_path``; it is loaded as the kind the adapter was trained for
(``task_type``: causal LM, seq2seq, classifier, QA head), the adapter's weights are applied
with every key checked, and the result is merged into the base weights (faster; the merged
model answers exactly as the same merge saved with ``save_pretrained``) unless
``--keep-adapter-unmerged`` or a quantized base says otherwise.

Nothing is guessed: a base that cannot be found, an adapter whose modules the base does not
have or whose shapes do not fit, adapter weights that load nowhere and adapter parameters the
file does not hold (a LoRA ``B`` left at its zero initialisation turns the adapter into a
no-op, so the base model's numbers would be reported as the fine-tune's) all stop the run,
naming the adapter and the base. Head weights the adapter saves (``modules_to_save``: the
classifier of a ``SEQ_CLS`` adapter) cover the base's missing or reshaped head, which is then
not "randomly initialised". The record's fingerprint covers the base's files and the
adapter's; both, the merge, and where the tokenizer came from are in the model notes.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from evalharness.errors import ModelError, UsageError
from evalharness.jsonvalues import JSONObject, JsonValue, expect_int

if TYPE_CHECKING:
    import torch
    from peft import PeftConfig, PeftModel
    from transformers import PreTrainedModel

    from evalharness.models.checks import LoadingInfo

__all__ = ["ADAPTER_CONFIG", "BASE_FLAG", "UNMERGED_FLAG", "AdapterSource", "apply_adapter", "read_adapter"]

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
MODEL_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
BASE_FLAG = "--base-model"
UNMERGED_FLAG = "--keep-adapter-unmerged"
_SAVED_PREFIX = "base_model.model."  # how PEFT names the wrapped model's weights in adapter files
_ADAPTER_NAME = "default"

# PEFT task type -> checkpoint kind of the model the adapter sits on.
TASK_KINDS: dict[str, str] = {
    "CAUSAL_LM": "causal_lm",
    "SEQ_2_SEQ_LM": "seq2seq",
    "SEQ_CLS": "sequence_classifier",
    "QUESTION_ANS": "extractive_qa",
}


def _combined(*fingerprints: str) -> str:
    return "sha256:" + hashlib.sha256("\0".join(fingerprints).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AdapterSource:
    """An adapter directory and its (parsed, not yet applied) configuration."""

    path: Path
    config: JSONObject

    @property
    def kind(self) -> str | None:
        """The kind of the model the adapter was trained on (None: not said)."""
        task_type = self.config.get("task_type")
        return TASK_KINDS.get(str(task_type)) if task_type else None

    @property
    def has_tokenizer(self) -> bool:
        """Adapters trained with a changed tokenizer (a chat template, added tokens) save it alongside."""
        return (self.path / "tokenizer_config.json").is_file()

    def resolve_base(self, base_model: str | None) -> tuple[Path, JSONObject]:
        """The base checkpoint directory and what the record says about it."""
        from evalharness.models.base import resolve_checkpoint

        named_in_config = self.config.get("base_model_name_or_path")
        named = base_model or named_in_config
        where = f"{self.path / ADAPTER_CONFIG} base_model_name_or_path"
        if not named:
            raise ModelError(f"{self.path}: PEFT adapter whose {ADAPTER_CONFIG} names no base_model_name_or_path; pass {BASE_FLAG} PATH")
        by = BASE_FLAG if base_model else where
        revision = None if base_model else self.config.get("revision")
        try:
            base = resolve_checkpoint(str(named), revision=None if revision is None else str(revision))
        except ModelError as exc:
            raise ModelError(
                f"{self.path}: PEFT adapter whose base model '{named}' ({by}) cannot be loaded: {exc}. "
                f"Pass {BASE_FLAG} PATH naming the checkpoint the adapter was trained on"
            ) from None
        if read_adapter(base) is not None:
            raise ModelError(f"{self.path}: the base model '{named}' ({by}) is itself a PEFT adapter; give the full base checkpoint")
        notes: JSONObject = {"path": str(named), "named_by": by}
        if base_model and named_in_config and str(named_in_config) != str(base_model):
            notes["adapter_config_names"] = str(named_in_config)
        return base, notes

    def saved_weights(self) -> dict[str, torch.Tensor]:
        from peft.utils import load_peft_weights

        try:
            return load_peft_weights(str(self.path), device="cpu")
        except Exception as exc:  # a truncated or foreign weights file
            raise ModelError(f"{self.path}: cannot read the adapter weights ({type(exc).__name__}: {exc})") from None

    def head_overrides(self, weights: Mapping[str, torch.Tensor], config: Mapping[str, JsonValue], kind: str) -> dict[str, int]:
        """``num_labels`` for a classifier adapter whose saved head has another number of rows
        than the base config says (a base encoder with the default 2 labels)."""
        if kind != "sequence_classifier":
            return {}
        rows = {int(value.shape[0]) for key, value in weights.items() if key.endswith(".weight") and _is_saved_module(key, self.config)}
        id2label = config.get("id2label")
        labels = (len(id2label) if isinstance(id2label, (dict, list)) else 0) or expect_int(
            config.get("num_labels", 2), f"{self.path}: the base model's config.json num_labels", error=ModelError
        )
        if len(rows) == 1 and labels not in rows:
            return {"num_labels": rows.pop()}
        return {}

    def covered(self, loading_info: LoadingInfo, weights: Mapping[str, torch.Tensor]) -> LoadingInfo:
        """``loading_info`` without the base weights that the adapter's saved modules replace."""
        saved = {key.removeprefix(_SAVED_PREFIX) for key in weights if _is_saved_module(key, self.config)}
        info = loading_info.copy()
        info["missing_keys"] = [key for key in loading_info.get("missing_keys") or () if key not in saved]
        info["mismatched_keys"] = [item for item in loading_info.get("mismatched_keys") or () if item[0] not in saved]
        return info


def _is_saved_module(key: str, config: Mapping[str, JsonValue]) -> bool:
    """A whole module the adapter saves (``modules_to_save``), not an adapter layer's weight."""
    saved = config.get("modules_to_save")
    modules = saved if isinstance(saved, list) else []
    name = key.removeprefix(_SAVED_PREFIX)
    return any(name.startswith(f"{module}.") or f".{module}." in f".{name}" for module in modules)


def read_adapter(path: Path) -> AdapterSource | None:
    """The adapter in ``path``, None for a full checkpoint; a directory holding both is refused."""
    file = path / ADAPTER_CONFIG
    if not file.is_file():
        return None
    if any((path / name).is_file() for name in MODEL_WEIGHTS):
        raise ModelError(
            f"{path}: holds both a full checkpoint ({', '.join(n for n in MODEL_WEIGHTS if (path / n).is_file())}) and a "
            f"PEFT adapter ({ADAPTER_CONFIG}); which one to evaluate is ambiguous. Move the adapter (or the merged model) "
            "to a directory of its own"
        )
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{file}: unreadable ({exc})") from None
    if not isinstance(config, dict):
        raise ModelError(f"{file}: expected a JSON object")
    if not any((path / name).is_file() for name in ADAPTER_WEIGHTS):
        raise ModelError(f"{path}: {ADAPTER_CONFIG} but no adapter weights ({' or '.join(ADAPTER_WEIGHTS)})")
    return AdapterSource(path, config)


def _peft_config(source: AdapterSource) -> PeftConfig:
    try:
        from peft import PeftConfig
    except ImportError:
        raise ModelError(f"{source.path}: a PEFT adapter; install the peft package (pip install 'evalharness[peft]')") from None
    try:
        config = PeftConfig.from_pretrained(str(source.path))
    except Exception as exc:  # an unknown peft_type, fields of another PEFT version
        raise ModelError(f"{source.path / ADAPTER_CONFIG}: not a PEFT configuration this peft can read ({type(exc).__name__}: {exc})") from None
    if getattr(config, "is_prompt_learning", False) or getattr(config, "is_adaption_prompt", False):
        raise ModelError(
            f"{source.path}: a {config.peft_type} adapter adds virtual prompt tokens; evalharness scores LoRA-style adapters "
            "(LoRA, DoRA, IA3, LoHa, LoKr, OFT, ...) only"
        )
    config.inference_mode = True
    return config


def _resize_embeddings(model: PreTrainedModel, weights: Mapping[str, torch.Tensor]) -> int | None:
    """Adapters trained after adding tokens save the resized embeddings; the base is resized
    to them first (as training did), else the saved rows could not load."""
    embeddings = model.get_input_embeddings()  # declared a bare Module: its sizes are read by name
    rows: int | None = int(getattr(embeddings, "num_embeddings")) if embeddings is not None else None
    saved = {
        int(value.shape[0])
        for key, value in weights.items()
        if rows is not None and value.ndim == 2 and key.endswith(".weight") and value.shape[1] == getattr(embeddings, "embedding_dim")
        and any(part in key for part in ("embed_tokens", "wte", "word_embeddings", "lm_head", "embed_out"))
    }
    grown = max(saved, default=rows)
    if rows is not None and grown is not None and grown > rows:
        model.resize_token_embeddings(grown)
        return grown
    return None


def apply_adapter(
    model: PreTrainedModel, source: AdapterSource, weights: Mapping[str, torch.Tensor], *, base_path: Path, merge: bool, quantized: bool
) -> tuple[PreTrainedModel, JSONObject]:
    """The base ``model`` with the adapter applied (merged when asked and possible) and the notes."""
    from peft import PeftModel
    from peft.utils import set_peft_model_state_dict

    config = _peft_config(source)
    both = f"adapter {source.path} and base model {base_path}"
    resized = _resize_embeddings(model, weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            wrapped = PeftModel(model, config, adapter_name=_ADAPTER_NAME)
            result = set_peft_model_state_dict(wrapped, dict(weights), adapter_name=_ADAPTER_NAME)
        except Exception as exc:  # target modules the base lacks, shapes that do not fit
            message = " ".join(str(exc).split())[:400]
            raise ModelError(f"{both} do not fit: {type(exc).__name__}: {message}. Give the base the adapter was trained on ({BASE_FLAG} PATH)") from None
    marker = f".{_ADAPTER_NAME}."
    # peft returns torch's _IncompatibleKeys (missing_keys, unexpected_keys); its annotation says only "namedtuple"
    missing = sorted(key for key in result.missing_keys if marker in key or key.endswith(f".{_ADAPTER_NAME}"))  # type: ignore[attr-defined]  # peft annotates a bare namedtuple
    unexpected = sorted(result.unexpected_keys)  # type: ignore[attr-defined]  # as above
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} adapter parameter(s) are not in the adapter file ({', '.join(missing[:4])}); they would keep their initial values")
        if unexpected:
            parts.append(f"{len(unexpected)} saved adapter weight(s) match no module of the base ({', '.join(unexpected[:4])})")
        raise ModelError(f"{both} do not fit: " + "; ".join(parts) + f". Give the base the adapter was trained on ({BASE_FLAG} PATH)")
    notes: JSONObject = {"peft_type": str(getattr(config.peft_type, "value", config.peft_type))}
    if config.task_type:
        notes["task_type"] = str(getattr(config.task_type, "value", config.task_type))
    modules_to_save = getattr(config, "modules_to_save", None)  # LoRA-style configs have it, PeftConfig does not
    if modules_to_save:
        notes["modules_to_save"] = [str(module) for module in sorted(modules_to_save)]
    if resized:
        notes["resized_embeddings"] = resized
    if not merge or quantized:
        notes["merged"] = False
        notes["unmerged_because"] = f"{UNMERGED_FLAG}" if not merge else "the base is quantized (merging would dequantize it)"
        return _unmerged(wrapped), notes
    try:
        merged = wrapped.merge_and_unload()
    except Exception as exc:  # adapter types without a merge
        notes["merged"] = False
        notes["unmerged_because"] = f"{config.peft_type} cannot be merged ({type(exc).__name__})"
        return _unmerged(wrapped), notes
    notes["merged"] = True
    return merged.eval(), notes


def _unmerged(wrapped: PeftModel) -> PreTrainedModel:
    """The adapter kept apart from the base weights. A ``PeftModel`` is called as the model it
    wraps and forwards every attribute it lacks to it (``PeftModel.__getattr__``), so the
    adapters use it as that ``PreTrainedModel``."""
    return cast("PreTrainedModel", wrapped.eval())


def adapter_fingerprint(base_fingerprint: str, adapter_fingerprint: str) -> str:
    """One model fingerprint for base + adapter: another base or another adapter is another model."""
    return _combined(base_fingerprint, adapter_fingerprint)


def refuse_adapter_flags(path: Path, *, base_model: str | None, keep_unmerged: bool) -> None:
    """``--base-model`` and ``--keep-adapter-unmerged`` on a full checkpoint would be ignored."""
    given = [flag for flag, value in ((BASE_FLAG, base_model), (UNMERGED_FLAG, keep_unmerged)) if value]
    if given:
        raise UsageError(f"{' and '.join(given)} apply to PEFT adapter directories ({ADAPTER_CONFIG}); {path} is a full checkpoint")
