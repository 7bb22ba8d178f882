"""A token-level lint of every prompted run: what the model saw, not what the template says.

A doubled BOS moved MMLU by about 6 points on a public leaderboard; an instruct model that
never stops at its end-of-turn token writes the next user turn into its answer; a truncated
prompt lost its beginning. Each is invisible in the prompt text, so the prompts are encoded
exactly as the adapter encodes them (``encode_prompts``) and counted:

- ``bos_doubled``: the ids start with BOS twice (the adapter already adds no BOS to a text
  that starts with one, so a chat template writing ``{{ bos_token }}`` is not doubled; this
  counts what slipped through anyway);
- ``bos_missing``: the tokenizer adds BOS by default, or the chat template writes it, but the
  ids do not start with it;
- ``end_of_turn_not_in_stops``: chat-format generations that would not stop at the
  template's end-of-turn token (neither a stop string nor an end-of-sequence id);
- ``truncated``: requests whose input lost tokens to fit the model.

The counts go into the task's ``settings.prompt_lint``, non-zero ones into its notes, and all
of them into the terminal summary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from evalharness.jsonvalues import JSONObject, JsonValue
from evalharness.models.protocols import LoadedModel
from evalharness.prompting.chat import PromptFormat, eos_ids
from evalharness.types import Request, RequestKind, RequestOptions, Response

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["LINT_LABELS", "lint_notes", "lint_prompts"]

# Count -> how a note names it.
LINT_LABELS: dict[str, str] = {
    "bos_doubled": "start with a doubled BOS",
    "bos_missing": "lack the BOS token the tokenizer or chat template expects",
    "end_of_turn_not_in_stops": "would not stop generating at the chat template's end-of-turn token",
    "truncated": "were truncated to fit the model",
}


def _prompt_text(kind: RequestKind, request: Request) -> str:
    return str(request[0]) if kind is RequestKind.LOGLIKELIHOOD else str(request)


def _stops_at(adapter: LoadedModel, tokenizer: PreTrainedTokenizerBase, token: str | None, stops: Sequence[str]) -> bool:
    if token is None:
        return False
    return token in stops or tokenizer.convert_tokens_to_ids(token) in eos_ids(adapter, tokenizer)


def lint_prompts(
    adapter: LoadedModel, kind: RequestKind, requests: Sequence[Request], options: RequestOptions | None, responses: Sequence[Response], fmt: PromptFormat
) -> JSONObject:
    """Counts of the lint's findings over one task's prompted requests."""
    prompts = list(dict.fromkeys(_prompt_text(kind, request) for request in requests))
    result: JSONObject = {"prompts": len(prompts), "requests": len(requests)}
    result["truncated"] = sum(bool(getattr(response, "truncated", False)) for response in responses)
    encode = getattr(adapter, "encode_prompts", None)
    tokenizer = getattr(adapter, "tokenizer", None)
    if encode is None or tokenizer is None:
        result["token_level"] = "not checked: the backend exposes no tokenizer"
        return result
    ids = encode(prompts)
    bos = tokenizer.bos_token_id
    expects_bos = bool(getattr(adapter, "adds_bos", False)) or bool(fmt.chat and fmt.template and fmt.template.renders_bos)
    result["bos_doubled"] = sum(1 for row in ids if bos is not None and row[:2] == [bos, bos])
    result["bos_missing"] = sum(1 for row in ids if expects_bos and bos is not None and row[:1] != [bos])
    if kind is RequestKind.GENERATE and fmt.chat:
        eot = fmt.template.end_of_turn if fmt.template else None
        stops = tuple(getattr(options, "stop", ()) or ())
        result["end_of_turn"] = eot
        result["end_of_turn_not_in_stops"] = 0 if _stops_at(adapter, tokenizer, eot, stops) else len(prompts)
    return result


def lint_notes(lint: Mapping[str, JsonValue]) -> list[str]:
    """One note per non-zero count."""
    notes = []
    for name, label in LINT_LABELS.items():
        count = lint.get(name) or 0
        if count:
            total = lint["requests"] if name == "truncated" else lint["prompts"]
            what = "requests" if name == "truncated" else "prompts"
            notes.append(f"prompt lint: {count} of {total} {what} {label}")
    if lint.get("end_of_turn_not_in_stops") and lint.get("end_of_turn") is None:
        notes.append("prompt lint: the chat template has no end-of-turn token that generation could stop at")
    return notes
