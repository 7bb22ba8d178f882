"""Is the loaded checkpoint what it claims to be? Kind and weights, checked before any score.

transformers only *warns* when a head is initialised randomly, when a checkpoint's weights
belong to another head, or when ``--model-kind`` contradicts ``config.architectures``; a
random head still produces a plausible-looking number. Here each of these is a ``ModelError``
(exit 2) unless the user passes the override that names it, and an override is written into
the model notes (so into the run record and the prediction cache key).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypedDict

from evalharness.errors import ModelError
from evalharness.jsonvalues import JSONObject, JsonValue
from evalharness.models.base import architectures_of, checkpoint_kinds, detect_kind

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedModel

__all__ = [
    "KIND_MISMATCH_FLAG",
    "RANDOM_WEIGHTS_FLAG",
    "RANDOM_INIT_SEED",
    "LoadingInfo",
    "check_weights",
    "resolve_kind",
]

RANDOM_WEIGHTS_FLAG = "--allow-random-weights"
KIND_MISMATCH_FLAG = "--allow-kind-mismatch"
RANDOM_INIT_SEED = 0  # torch seed for weights initialised under --allow-random-weights: reruns agree
_SHOWN = 6  # weight names quoted in a message
_RECORDED = 50  # weight names kept in the record


class LoadingInfo(TypedDict, total=False):
    """What ``from_pretrained(..., output_loading_info=True)`` reports (sets in transformers 5, lists in 4)."""

    missing_keys: Collection[str]
    unexpected_keys: Collection[str]
    mismatched_keys: Collection[tuple[str, tuple[int, ...], tuple[int, ...]]]
    error_msgs: Collection[str]


class _FromConfig(Protocol):
    """A transformers Auto class, as far as building a model from a config goes."""

    def from_config(self, config: PretrainedConfig, *, trust_remote_code: bool) -> torch.nn.Module: ...


def _names(keys: Iterable[str], limit: int = _SHOWN) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def resolve_kind(
    config: Mapping[str, JsonValue], requested: str | None, *, source: str, allow_mismatch: bool
) -> tuple[str, str, JSONObject]:
    """``(kind, architecture, notes)``: the detected kind, or ``--model-kind`` when the
    architectures are unknown or agree with it; a contradiction is refused unless allowed."""
    architectures = list(architectures_of(config))
    if requested is None:
        kind, architecture = detect_kind(config, source=source)
        return kind, architecture, {}
    known = checkpoint_kinds(config)
    claimed = sorted({kind for kinds in known.values() for kind in kinds})
    architecture = str(architectures[0]) if architectures else "?"
    if not known or requested in claimed:
        return requested, architecture, {}
    if not allow_mismatch:
        raise ModelError(
            f"{source}: --model-kind {requested} contradicts config.json, whose architectures {architectures} "
            f"make it a checkpoint of kind {' or '.join(claimed)}: its weights were trained for that head, and "
            f"loading them as {requested} would score another (usually randomly initialised) head. Drop "
            f"--model-kind, or pass {KIND_MISMATCH_FLAG} to evaluate it as {requested} anyway (recorded in the run record)"
        )
    return requested, architecture, {
        "kind_mismatch": {"allowed_by": KIND_MISMATCH_FLAG, "requested": requested, "architectures": architectures, "claimed": [*claimed]}
    }


def _state_names(auto_class: _FromConfig, config: PretrainedConfig, trust_remote_code: bool) -> set[str] | None:
    """Parameter and buffer names of ``auto_class`` for ``config``, built on the meta device
    (no memory, no init); None where the model type has no such class."""
    import torch

    try:
        with torch.device("meta"):
            model = auto_class.from_config(config, trust_remote_code=trust_remote_code)
    except Exception:  # this model type has no head of that kind
        return None
    return set(model.state_dict())


def _revealed_heads(
    model: PreTrainedModel, unexpected: Collection[str], auto_classes: Mapping[str, str], *, kind: str, trust_remote_code: bool
) -> dict[str, list[str]]:
    """Unused checkpoint weights that are the head of another kind's class for the same
    config (``qa_outputs.*`` loaded as a classifier): kind (``a or b`` when two kinds' heads
    have the same weights) -> those weight names.

    Weights of the bare model (a pooler the loaded class lacks) and of heads no kind uses
    (BERT's next-sentence head) reveal nothing: published checkpoints carry them.
    """
    import transformers

    base = _state_names(transformers.AutoModel, model.config, trust_remote_code) or set()
    prefix = getattr(model, "base_model_prefix", "")
    shared = set(model.state_dict()) | base | {f"{prefix}.{name}" for name in base}
    revealed: dict[tuple[str, ...], list[str]] = {}
    for other, class_name in auto_classes.items():
        if other == kind:
            continue
        names = _state_names(getattr(transformers, class_name), model.config, trust_remote_code)
        heads = sorted(set(unexpected) & ((names or set()) - shared))
        if heads:  # kinds whose heads have the same weights (BERT's masked and causal LM) are one
            kinds = next((key for key, keys in revealed.items() if keys == heads), ())
            revealed.pop(kinds, None)
            revealed[(*kinds, other)] = heads
    return {" or ".join(kinds): keys for kinds, keys in revealed.items()}


def _random_weights(loading_info: LoadingInfo) -> list[str]:
    """Weights the class initialised randomly: missing from the checkpoint, or present with
    another shape (reinitialised). transformers has already dropped the keys it ignores by
    design (``_keys_to_ignore_on_load_missing``, tied weights)."""
    missing = [str(key) for key in loading_info.get("missing_keys") or ()]
    mismatched = [
        f"{key} (checkpoint {tuple(saved)}, model {tuple(expected)})"
        for key, saved, expected in loading_info.get("mismatched_keys") or ()
    ]
    return sorted(missing) + sorted(mismatched)


def check_weights(
    model: PreTrainedModel,
    loading_info: LoadingInfo,
    *,
    path: Path,
    kind: str,
    auto_classes: Mapping[str, str],
    allow_random_weights: bool,
    allow_kind_mismatch: bool,
    trust_remote_code: bool = False,
) -> JSONObject:
    """Refuse randomly initialised weights and weights of another head; return the notes
    for what the overrides let through and for unused weights."""
    errors = [str(message) for message in loading_info.get("error_msgs") or ()]
    if errors:
        raise ModelError(f"{path}: cannot load the weights ({'; '.join(errors)[:500]})")
    name = type(model).__name__
    random = _random_weights(loading_info)
    unexpected = sorted(str(key) for key in loading_info.get("unexpected_keys") or ())
    heads = _revealed_heads(model, unexpected, auto_classes, kind=kind, trust_remote_code=trust_remote_code) if unexpected else {}
    problems = []
    if heads and not allow_kind_mismatch:
        architectures = list(model.config.architectures or [])
        # Where config.json names a known class, --model-kind may not contradict it: the file is wrong.
        fix = "fix config.json's architectures" if checkpoint_kinds(model.config.to_dict()) else f"pass --model-kind {next(iter(heads))}"
        problems.append(
            "the checkpoint's weights hold "
            + "; ".join(f"the head of a {other} ({_names(keys)})" for other, keys in heads.items())
            + f" that {name} does not use: the checkpoint is not of kind {kind}, whatever config.json's architectures "
            f"{architectures} claim. To evaluate it as what its weights are, {fix}; or pass {KIND_MISMATCH_FLAG}"
        )
    if random and not allow_random_weights:
        problems.append(
            f"{name} would initialise {len(random)} weight(s) randomly, missing from the checkpoint or saved "
            f"with another shape: {_names(random)}. A random head gives plausible-looking, meaningless numbers. Fix the "
            f"checkpoint (or its config.json), or pass {RANDOM_WEIGHTS_FLAG} to evaluate it anyway (recorded in the run record)"
        )
    if problems:
        raise ModelError(f"{path}: " + "\n".join(problems))
    notes: JSONObject = {}
    if random:
        notes["random_weights"] = {
            "allowed_by": RANDOM_WEIGHTS_FLAG, "count": len(random), "weights": [*random[:_RECORDED]], "torch_seed": RANDOM_INIT_SEED,
        }
    if heads:
        notes["foreign_head_weights"] = {"allowed_by": KIND_MISMATCH_FLAG, **{other: [*keys[:_RECORDED]] for other, keys in heads.items()}}
    unused = sorted(set(unexpected) - {key for keys in heads.values() for key in keys})
    if unused:
        notes["unused_weights"] = {"count": len(unused), "weights": [*unused[:_RECORDED]]}
    return notes
