"""``load_model``: from a path or hub id (a full checkpoint or a PEFT adapter) to a ready adapter of the right kind."""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from evalharness.errors import ModelError, UsageError, did_you_mean
from evalharness.jsonvalues import JSONObject, JsonValue
from evalharness.models.base import (
    ModelAdapter,
    ModelInfo,
    architectures_of,
    checkpoint_kinds,
    fingerprint_checkpoint,
    tokenizer_conventions,
    read_config,
    resolve_checkpoint,
    resolve_tokenizer_dir,
    select_device,
    select_dtype,
)
from evalharness.models.checks import KIND_MISMATCH_FLAG, RANDOM_INIT_SEED, LoadingInfo, check_weights, resolve_kind
from evalharness.models.fused import fuse_activations
from evalharness.models.model_args import FLAG as MODEL_ARGS_FLAG
from evalharness.models.model_args import resolve_model_args
from evalharness.models.peft_adapters import AdapterSource, adapter_fingerprint, apply_adapter, read_adapter, refuse_adapter_flags
from evalharness.models.tokenizer_files import TOKENIZER_FLAG, check_tokenizer_fits, load_tokenizer

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

__all__ = ["ADAPTERS", "adapter_class", "load_model", "quiet_transformers"]

# Checkpoint kind -> adapter class, imported only when used.
ADAPTERS: dict[str, str] = {
    "sequence_classifier": "evalharness.models.classifier:SequenceClassifierAdapter",
    "causal_lm": "evalharness.models.causal:CausalLMAdapter",
    "extractive_qa": "evalharness.models.qa:ExtractiveQAAdapter",
    "seq2seq": "evalharness.models.seq2seq:Seq2SeqAdapter",
    "masked_lm": "evalharness.models.masked:MaskedLMAdapter",
}


def adapter_class(kind: str) -> type[ModelAdapter]:
    try:
        target = ADAPTERS[kind]
    except KeyError:
        raise UsageError(
            f"unknown model kind '{kind}'{did_you_mean(kind, ADAPTERS)} "
            f"(known: {', '.join(sorted(ADAPTERS))})"
        ) from None
    module_name, _, attribute = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attribute)
    assert isinstance(cls, type) and issubclass(cls, ModelAdapter), target  # ADAPTERS names adapter classes
    return cls


def _with_tokenizer(fingerprint: str, tokenizer_fingerprint: str) -> str:
    """Another tokenizer makes another model: with ``--tokenizer`` the model fingerprint covers
    the checkpoint's files and the tokenizer's, so leaderboards never merge the two."""
    return "sha256:" + hashlib.sha256(f"{fingerprint}\0{tokenizer_fingerprint}".encode()).hexdigest()[:16]


def _auto_classes() -> dict[str, str]:
    """Kind -> the transformers Auto class that loads it: the heads a checkpoint's weights may hold."""
    return {kind: adapter_class(kind).auto_class_name for kind in ADAPTERS}


def quiet_transformers() -> None:
    """Progress bars and advisory warnings from transformers would drown the run's output."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _load_weights(
    cls: type[ModelAdapter], path: Path, *, dtype: str, trust_remote_code: bool, device_map: str | None, seeded: bool,
    extra: Mapping[str, object] | None = None,
) -> tuple[PreTrainedModel, LoadingInfo]:
    """The model and transformers' loading info (missing, unexpected and mismatched keys).

    Shapes that do not match are reported rather than raised so that ``check_weights`` names
    them with the other randomly initialised weights; under ``--allow-random-weights``
    (``seeded``) the random initialisation is seeded, so reruns score the same weights.
    ``extra``: checked ``--model-args`` (and a PEFT classifier's ``num_labels``).
    """
    import torch
    import transformers

    auto_class = getattr(transformers, cls.auto_class_name)
    # device_map ("auto", "balanced", ...): accelerate spreads the layers over the visible GPUs
    # (then CPU memory) for checkpoints that do not fit one device.
    placement = {"device_map": device_map} if device_map else {}
    try:
        # transformers picks PyTorch's fused SDPA attention by itself wherever the architecture
        # supports it (eager otherwise), unless --model-args attn_implementation says otherwise.
        with torch.random.fork_rng(devices=[]):
            if seeded:
                torch.manual_seed(RANDOM_INIT_SEED)
            return auto_class.from_pretrained(
                path, dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code,
                output_loading_info=True, ignore_mismatched_sizes=True, **placement, **(extra or {}),
            )
    except Exception as exc:  # missing/corrupted weights, wrong architecture, remote code
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        given = f" with {MODEL_ARGS_FLAG} {', '.join(sorted(extra))}" if extra else ""
        raise ModelError(
            f"{path}: cannot load weights as {cls.auto_class_name}{given} ({type(exc).__name__}: {message})"
        ) from None


def _refuse_checkpoint_code(path: Path, config: Mapping[str, JsonValue]) -> None:
    """A config whose ``model_type`` transformers does not know and that maps the auto classes
    to Python files shipped with the checkpoint can only load by running those files."""
    from transformers import CONFIG_MAPPING

    auto_map = config.get("auto_map")
    if not auto_map or config.get("model_type") in CONFIG_MAPPING:
        return  # nothing to run, or transformers' own classes are used and auto_map is ignored
    modules = sorted({str(target).split("--")[-1].split(".")[0] + ".py" for target in _flat(auto_map)})
    raise ModelError(
        f"{path}: config.json maps model type '{config.get('model_type')}' to code shipped with the "
        f"checkpoint ({', '.join(modules)}); evalharness does not run checkpoint code unless "
        "--trust-remote-code is given (read that code first)"
    )


def _flat(value: JsonValue) -> list[JsonValue]:
    if isinstance(value, dict):
        return [item for inner in value.values() for item in _flat(inner)]
    if isinstance(value, (list, tuple)):
        return [item for inner in value for item in _flat(inner) if item]
    return [value]


def _kind(
    config: Mapping[str, JsonValue], kind: str | None, adapter: AdapterSource | None, *, source: str, allow_mismatch: bool
) -> tuple[str, str, JSONObject]:
    """``(kind, architecture, notes)``; a PEFT adapter's ``task_type`` says what its base is loaded as."""
    requested = None if kind is None else adapter_class(kind).kind  # an unknown name is a usage error
    if adapter is None or adapter.kind is None:
        return resolve_kind(config, requested, source=source, allow_mismatch=allow_mismatch)
    if requested not in (None, adapter.kind) and not allow_mismatch:
        raise ModelError(
            f"{adapter.path}: --model-kind {requested} contradicts the adapter's task_type {adapter.config.get('task_type')} "
            f"(a {adapter.kind} adapter); drop --model-kind, or pass {KIND_MISMATCH_FLAG}"
        )
    architectures = architectures_of(config) or ["?"]
    return requested or adapter.kind, str(architectures[0]), {}


def load_model(
    path_or_hub_id: str,
    kind: str | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    revision: str | None = None,
    device_map: str | None = None,
    tokenizer: str | None = None,
    allow_random_weights: bool = False,
    allow_kind_mismatch: bool = False,
    base_model: str | None = None,
    keep_adapter_unmerged: bool = False,
    model_args: Mapping[str, object] | None = None,
    **options: object,
) -> ModelAdapter:
    """Load a checkpoint as the adapter for its kind (detected from ``config.architectures``).

    The checkpoint must be what it claims (``models.checks``, ``models.tokenizer_files``):
    randomly initialised weights, another head's weights, a ``kind`` that contradicts the
    architectures and a tokenizer not built from the checkpoint's files (or from ``tokenizer``)
    are refused unless ``allow_random_weights`` / ``allow_kind_mismatch`` say otherwise; what
    an override let through is written into the model notes.

    A directory with ``adapter_config.json`` is a PEFT adapter applied to its base model
    (``models.peft_adapters``; ``base_model`` overrides the base it names).
    ``model_args`` go to ``from_pretrained`` once checked (``models.model_args``).

    ``options`` go to the adapter (e.g. ``max_length`` for a QA head). The returned adapter's
    request methods are public and batched; see the adapter classes for their signatures.
    """
    quiet_transformers()
    device = select_device(device)
    local = Path(str(path_or_hub_id)).expanduser().exists()
    revision = revision or _revision(model_args)
    path = resolve_checkpoint(str(path_or_hub_id), revision=revision)
    adapter = read_adapter(path)
    if adapter is None:
        refuse_adapter_flags(path, base_model=base_model, keep_unmerged=keep_adapter_unmerged)
    weights_path, base_notes = adapter.resolve_base(base_model) if adapter else (path, {})
    config = read_config(weights_path)
    args = resolve_model_args(
        model_args, config=config, source=str(weights_path), device=device, dtype=dtype, local=local, device_map=device_map
    )
    detected_kind, architecture, notes = _kind(config, kind, adapter, source=str(path), allow_mismatch=allow_kind_mismatch)
    cls = adapter_class(detected_kind)
    if not trust_remote_code:
        _refuse_checkpoint_code(weights_path, config)
    dtype = select_dtype(args.dtype or dtype, device)
    tokenizer_dir = resolve_tokenizer_dir(tokenizer) if tokenizer else (path if adapter and adapter.has_tokenizer else weights_path)
    loaded_tokenizer, tokenizer_notes = load_tokenizer(tokenizer_dir, trust_remote_code=trust_remote_code, given=tokenizer)
    saved = adapter.saved_weights() if adapter else {}
    extra = {**args.from_pretrained(device), **(adapter.head_overrides(saved, config, detected_kind) if adapter else {})}
    model, loading_info = _load_weights(
        cls, weights_path, dtype=dtype, trust_remote_code=trust_remote_code, device_map=device_map, seeded=allow_random_weights,
        extra=extra,
    )
    notes.update(tokenizer_notes)
    if args.answers:  # what changes the answers: in the record (as JSON writes it) and the cache key
        notes["model_args"] = json.loads(json.dumps(args.answers))
    # A base saved with another head (a masked LM under a classifier adapter): its head goes unused, as in training.
    foreign_head_expected = adapter is not None and detected_kind not in {k for ks in checkpoint_kinds(config).values() for k in ks}
    notes.update(check_weights(
        model, adapter.covered(loading_info, saved) if adapter else loading_info, path=weights_path, kind=detected_kind,
        auto_classes=_auto_classes(), allow_random_weights=allow_random_weights,
        allow_kind_mismatch=allow_kind_mismatch or foreign_head_expected, trust_remote_code=trust_remote_code,
    ))
    fingerprint = fingerprint_checkpoint(weights_path)
    adapter_state = None
    if adapter is not None:
        model, adapter_notes = apply_adapter(
            model, adapter, saved, base_path=weights_path, merge=not keep_adapter_unmerged, quantized=bool(args.quantization)
        )
        if foreign_head_expected and "foreign_head_weights" in notes and not allow_kind_mismatch:
            adapter_notes["unused_base_head_weights"] = notes.pop("foreign_head_weights")
        adapter_fp = fingerprint_checkpoint(adapter.path)
        notes["peft_adapter"] = {
            "path": str(path_or_hub_id), "fingerprint": adapter_fp, **adapter_notes,
            "base": {**base_notes, "fingerprint": fingerprint},
            "tokenizer": "the adapter directory" if tokenizer_dir == path else ("--tokenizer" if tokenizer else "the base model"),
        }
        fingerprint = adapter_fingerprint(fingerprint, adapter_fp)
        adapter_state = "merged" if adapter_notes["merged"] else "unmerged"
    check_tokenizer_fits(loaded_tokenizer, model, where=f"{TOKENIZER_FLAG} {tokenizer}" if tokenizer else str(tokenizer_dir))
    placed = device_map is not None or "device_map" in extra
    if not placed:
        module: torch.nn.Module = model  # the same call: mypy misreads PreTrainedModel.to (wrapped by functools.wraps)
        module.to(device)
    model.eval()
    notes.update(cls.prepare_tokenizer(loaded_tokenizer, model))
    notes.update(fuse_activations(model))
    if placed:  # inputs go to the first layer's device; accelerate (or bitsandbytes) placed the rest
        device = str(model.device)
        requested = device_map or extra["device_map"]
        shown = requested if isinstance(requested, (str, dict)) else str(requested)  # a name, or bitsandbytes' {"": device}
        notes["device_map"] = {"requested": shown, "devices": [*sorted({str(p.device) for p in model.parameters()})]}
    if "tokenizer_source" in notes:
        source = notes["tokenizer_source"]
        assert isinstance(source, dict)  # load_tokenizer's note: an object
        source["checkpoint_fingerprint"] = fingerprint
        fingerprint = _with_tokenizer(fingerprint, str(source["fingerprint"]))
    info = ModelInfo(
        # resolve(): 'ckpt/sub/..' is named 'ckpt', never '..' (run directories derive from it)
        name=path.resolve().name if local else str(path_or_hub_id),
        path=str(path_or_hub_id),
        kind=detected_kind,
        fingerprint=fingerprint,
        architecture=architecture,
        device=device,
        dtype=dtype,
        num_parameters=sum(p.numel() for p in model.parameters()),
        revision=revision,
        notes=notes,
        conventions=tokenizer_conventions(loaded_tokenizer, adapter=adapter_state, model_args=args.answers or None),
    )
    return cls(model, loaded_tokenizer, info, **options)


def _revision(model_args: Mapping[str, object] | None) -> str | None:
    """``--model-args revision=...`` (checked with the other arguments once the config is read)."""
    value = (model_args or {}).get("revision")
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip() else None
