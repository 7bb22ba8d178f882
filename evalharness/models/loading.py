"""``load_model``: from a path or hub id to a ready adapter of the right kind."""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path
from typing import Any

from evalharness.errors import ModelError, UsageError, did_you_mean
from evalharness.models.base import (
    ModelAdapter,
    ModelInfo,
    fingerprint_checkpoint,
    tokenizer_conventions,
    read_config,
    resolve_checkpoint,
    resolve_tokenizer_dir,
    select_device,
    select_dtype,
)
from evalharness.models.checks import RANDOM_INIT_SEED, check_weights, resolve_kind
from evalharness.models.fused import fuse_activations
from evalharness.models.tokenizer_files import (
    TOKENIZER_FLAG,
    check_tokenizer_fits,
    load_tokenizer,
)

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
    return getattr(importlib.import_module(module_name), attribute)


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
    cls: type[ModelAdapter], path: Any, *, dtype: str, trust_remote_code: bool, device_map: str | None, seeded: bool
) -> tuple[Any, dict[str, Any]]:
    """The model and transformers' loading info (missing, unexpected and mismatched keys).

    Shapes that do not match are reported rather than raised so that ``check_weights`` names
    them with the other randomly initialised weights; under ``--allow-random-weights``
    (``seeded``) the random initialisation is seeded, so reruns score the same weights.
    """
    import torch
    import transformers

    auto_class = getattr(transformers, cls.auto_class_name)
    # device_map ("auto", "balanced", ...): accelerate spreads the layers over the visible GPUs
    # (then CPU memory) for checkpoints that do not fit one device.
    placement = {"device_map": device_map} if device_map else {}
    try:
        # transformers picks PyTorch's fused SDPA attention by itself wherever the architecture
        # supports it (eager otherwise), so no attn_implementation is passed.
        with torch.random.fork_rng(devices=[]):
            if seeded:
                torch.manual_seed(RANDOM_INIT_SEED)
            return auto_class.from_pretrained(
                path, dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code,
                output_loading_info=True, ignore_mismatched_sizes=True, **placement,
            )
    except Exception as exc:  # missing/corrupted weights, wrong architecture, remote code
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{path}: cannot load weights as {cls.auto_class_name} ({type(exc).__name__}: {message})"
        ) from None


def _refuse_checkpoint_code(path: Path, config: dict[str, Any]) -> None:
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


def _flat(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [item for inner in value.values() for item in _flat(inner)]
    if isinstance(value, (list, tuple)):
        return [item for inner in value for item in _flat(inner) if item]
    return [value]


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
    **options: Any,
) -> ModelAdapter:
    """Load a checkpoint as the adapter for its kind (detected from ``config.architectures``).

    The checkpoint must be what it claims (``models.checks``, ``models.tokenizer_files``):
    randomly initialised weights, another head's weights, a ``kind`` that contradicts the
    architectures and a tokenizer not built from the checkpoint's files (or from ``tokenizer``)
    are refused unless ``allow_random_weights`` / ``allow_kind_mismatch`` say otherwise; what
    an override let through is written into the model notes.

    ``options`` go to the adapter (e.g. ``max_length`` for a QA head). The returned adapter's
    request methods are public and batched; see the adapter classes for their signatures.
    """
    quiet_transformers()
    path = resolve_checkpoint(str(path_or_hub_id), revision=revision)
    config = read_config(path)
    requested = None if kind is None else adapter_class(kind).kind  # an unknown name is a usage error
    detected_kind, architecture, notes = resolve_kind(config, requested, source=str(path), allow_mismatch=allow_kind_mismatch)
    cls = adapter_class(detected_kind)
    if not trust_remote_code:
        _refuse_checkpoint_code(path, config)
    device = select_device(device)
    dtype = select_dtype(dtype, device)
    tokenizer_dir = resolve_tokenizer_dir(tokenizer) if tokenizer else path
    loaded_tokenizer, tokenizer_notes = load_tokenizer(tokenizer_dir, trust_remote_code=trust_remote_code, given=tokenizer)
    model, loading_info = _load_weights(
        cls, path, dtype=dtype, trust_remote_code=trust_remote_code, device_map=device_map, seeded=allow_random_weights
    )
    notes.update(tokenizer_notes)
    notes.update(check_weights(
        model, loading_info, path=path, kind=detected_kind, auto_classes=_auto_classes(),
        allow_random_weights=allow_random_weights, allow_kind_mismatch=allow_kind_mismatch, trust_remote_code=trust_remote_code,
    ))
    check_tokenizer_fits(loaded_tokenizer, model, where=f"{TOKENIZER_FLAG} {tokenizer}" if tokenizer else str(path))
    if device_map is None:
        model.to(device)
    model.eval()
    notes.update(cls.prepare_tokenizer(loaded_tokenizer, model))
    notes.update(fuse_activations(model))
    if device_map is not None:  # inputs go to the first layer's device; accelerate moves the rest
        device = str(model.device)
        notes["device_map"] = {"requested": device_map, "devices": sorted({str(p.device) for p in model.parameters()})}
    fingerprint = fingerprint_checkpoint(path)
    if "tokenizer_source" in notes:
        notes["tokenizer_source"]["checkpoint_fingerprint"] = fingerprint
        fingerprint = _with_tokenizer(fingerprint, notes["tokenizer_source"]["fingerprint"])
    info = ModelInfo(
        # resolve(): 'ckpt/sub/..' is named 'ckpt', never '..' (run directories derive from it)
        name=path.resolve().name if Path(str(path_or_hub_id)).expanduser().exists() else str(path_or_hub_id),
        path=str(path_or_hub_id),
        kind=detected_kind,
        fingerprint=fingerprint,
        architecture=architecture,
        device=device,
        dtype=dtype,
        num_parameters=sum(p.numel() for p in model.parameters()),
        revision=revision,
        notes=notes,
        conventions=tokenizer_conventions(loaded_tokenizer),
    )
    return cls(model, loaded_tokenizer, info, **options)
