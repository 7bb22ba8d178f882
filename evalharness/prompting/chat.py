"""The prompt format of prompted language models: raw text or the tokenizer's chat template.

Instruct models prompted as base models lose tens of points (MMLU 67.4 -> 40.7 from the format
alone), so the format is a policy chosen once per run, recorded per task with its reason, and
part of what makes numbers comparable (``records.prompt_format``):

- ``raw``: the task's prompt as text (a ``--system-prompt`` goes first, followed by the
  few-shot separator);
- ``chat``: the same content as chat turns rendered by ``tokenizer.apply_chat_template`` with
  the generation prompt of the assistant turn, exactly as lm-evaluation-harness's
  ``--apply_chat_template`` renders them: the system prompt as a system turn; few-shot
  demonstrations inlined in one user turn (the raw prompt is that turn's content), or with
  ``--fewshot-as-multiturn`` as alternating user/assistant turns (the user turn is the
  rendered template, the assistant turn the rendered target without its leading
  whitespace, which is the target delimiter).

The default (``auto``) is ``chat`` when the tokenizer has a chat template and something marks
the model as an instruct/chat model: the template's end-of-turn token is one of the model's
end-of-sequence tokens (it was trained to end assistant turns), an adapter that ships its own
chat tokenizer, or a name saying instruct/chat/-it/sft/dpo. Otherwise ``raw``, with the reason.

What the template does on its own is probed once and recorded: whether it has a system role
(Gemma's does not: the system text is then merged into the first user turn, and that is
recorded), the system prompt it injects when none is given (Qwen's), its end-of-turn token
(generation stops at it as well as at the task's stop strings), whether it writes BOS itself
(the adapter then adds none: a doubled BOS is prevented) and whether it renders today's date.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from evalharness.errors import ModelError, UsageError
from evalharness.jsonvalues import JSONObject, JsonValue
from evalharness.models.protocols import LoadedModel

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["ChatTemplate", "PromptFormat", "PromptParts", "eos_ids", "probe_template", "raw_only", "resolve_prompt_format"]

FORMAT_FLAG = "--prompt-format"
_SYSTEM_JOIN = "\n\n"  # a system text merged into the first user turn
_INSTRUCT_NAME = re.compile(r"(instruct|chat|(^|[-_.])it($|[-_.])|sft|dpo|rlhf|orpo)", re.IGNORECASE)
_PROBE_USER, _PROBE_ASSISTANT, _PROBE_SYSTEM = "Probe user text 7319", "Probe assistant text 4826", "Probe system text 5904"
_SHOWN = 400  # characters of an injected system prompt kept in the record


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class PromptParts:
    """One example's prompt before formatting: demonstrations (rendered template, rendered
    target) and the example's rendered template, joined by the few-shot separator when raw."""

    shots: tuple[tuple[str, str], ...]
    question: str
    separator: str = "\n\n"

    def raw(self) -> str:
        return self.separator.join([*(question + target for question, target in self.shots), self.question])


@dataclass(frozen=True)
class ChatTemplate:
    """What the tokenizer's chat template does by itself (probed with marker texts)."""

    sha256: str
    system_role: bool
    injected_system: str | None
    end_of_turn: str | None
    renders_bos: bool
    uses_current_date: bool

    def recorded(self) -> JSONObject:
        out: JSONObject = {
            "template_sha256": self.sha256,
            "end_of_turn": self.end_of_turn,
            "template_writes_bos": self.renders_bos,
        }
        if self.injected_system is not None:
            text = self.injected_system
            out["template_default_system_prompt"] = {"sha256": _sha(text), "text": text[:_SHOWN] + ("…" if len(text) > _SHOWN else "")}
        if self.uses_current_date:
            out["template_renders_current_date"] = True
        return out


def _render(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], *, generation_prompt: bool) -> str:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    if not isinstance(text, str):
        raise ModelError(f"the chat template rendered {type(text).__name__}, not text")
    return text


def _try_render(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], *, generation_prompt: bool) -> str | None:
    try:
        return _render(tokenizer, messages, generation_prompt=generation_prompt)
    except Exception:  # raise_exception('System role not supported'), alternation checks...
        return None


def _dropped_by_decoding(tokenizer: PreTrainedTokenizerBase, token_id: int) -> bool:
    return tokenizer.decode([token_id], skip_special_tokens=True) == ""


def _end_of_turn(tokenizer: PreTrainedTokenizerBase, source: str) -> str | None:
    """The first token the template writes after an assistant message that decoding drops
    (``<|im_end|>``, ``<end_of_turn>``, ``<|eot_id|>``, ``</s>``)."""
    user = {"role": "user", "content": _PROBE_USER}
    text = _try_render(tokenizer, [user, {"role": "assistant", "content": _PROBE_ASSISTANT}], generation_prompt=False)
    if text is not None and _PROBE_ASSISTANT in text:
        suffix = text[text.rindex(_PROBE_ASSISTANT) + len(_PROBE_ASSISTANT) :]
        for token_id in tokenizer(suffix, add_special_tokens=False)["input_ids"]:
            if _dropped_by_decoding(tokenizer, token_id):
                token = tokenizer.convert_ids_to_tokens(token_id)
                assert isinstance(token, str)  # one id is one token
                return token
    return tokenizer.eos_token if "eos_token" in source else None


def _injected_system(with_system: str | None, without: str) -> str | None:
    """The system text the template writes when none is given (None: it writes none)."""
    if with_system is None or _PROBE_USER not in with_system or _PROBE_SYSTEM not in with_system:
        return None
    before = without[: without.index(_PROBE_USER)]
    head, _, tail = with_system[: with_system.index(_PROBE_USER)].partition(_PROBE_SYSTEM)
    if before == head + tail or not (before.startswith(head) and before.endswith(tail)):
        return None
    return before[len(head) : len(before) - len(tail)] if len(before) > len(head) + len(tail) else None


def probe_template(tokenizer: PreTrainedTokenizerBase, *, where: str) -> ChatTemplate:
    """What the template does, from renders of marker conversations."""
    source = tokenizer.get_chat_template() if hasattr(tokenizer, "get_chat_template") else tokenizer.chat_template
    user = {"role": "user", "content": _PROBE_USER}
    try:
        plain = _render(tokenizer, [user], generation_prompt=True)
    except Exception as exc:
        raise ModelError(f"{where}: the chat template cannot render a single user turn ({type(exc).__name__}: {exc})") from None
    if _PROBE_USER not in plain:
        raise ModelError(f"{where}: the chat template drops the user's text; it cannot be used to prompt the model")
    with_system = _try_render(tokenizer, [{"role": "system", "content": _PROBE_SYSTEM}, user], generation_prompt=True)
    bos = tokenizer.bos_token
    return ChatTemplate(
        sha256=_sha(str(source)),
        system_role=with_system is not None and _PROBE_SYSTEM in with_system,
        injected_system=_injected_system(with_system, plain),
        end_of_turn=_end_of_turn(tokenizer, str(source)),
        renders_bos=bool(bos) and plain.startswith(bos),
        uses_current_date="strftime_now" in str(source),
    )


@dataclass(frozen=True)
class PromptFormat:
    """The resolved prompt format of one run: how every prompted task's prompts are written."""

    format: str  # raw | chat
    reason: str
    requested: str  # auto | raw | chat
    system_prompt: str | None = None
    fewshot_as_multiturn: bool = False
    template: ChatTemplate | None = None
    tokenizer: PreTrainedTokenizerBase | None = field(default=None, compare=False, repr=False)

    @property
    def chat(self) -> bool:
        return self.format == "chat"

    def messages(self, parts: PromptParts) -> list[dict[str, str]]:
        """The chat turns of a prompt (lm-evaluation-harness's ``fewshot_context``)."""
        turns: list[dict[str, str]] = []
        if self.fewshot_as_multiturn:
            for question, target in parts.shots:
                turns += [{"role": "user", "content": question}, {"role": "assistant", "content": target.lstrip()}]
            turns.append({"role": "user", "content": parts.question})
        else:
            turns.append({"role": "user", "content": parts.raw()})
        if self.system_prompt is None:
            return turns
        if self.template is not None and self.template.system_role:
            return [{"role": "system", "content": self.system_prompt}, *turns]
        first = turns[0]
        return [{"role": "user", "content": self.system_prompt + _SYSTEM_JOIN + first["content"]}, *turns[1:]]

    def render(self, parts: PromptParts) -> str:
        """The prompt text as the model gets it (the continuation or generation follows it)."""
        if not self.chat:
            text = parts.raw()
            return text if self.system_prompt is None else self.system_prompt + parts.separator + text
        try:
            if self.tokenizer is None:
                raise ValueError("no tokenizer to render it with")
            return _render(self.tokenizer, self.messages(parts), generation_prompt=True)
        except Exception as exc:
            raise ModelError(f"the chat template (sha {self.template.sha256 if self.template else '?'}) cannot render a prompt: {exc}") from None

    def stops(self, task_stops: Sequence[str]) -> tuple[str, ...]:
        """Generation stops at the task's stop strings and, in chat, at the end of the assistant turn."""
        eot = self.template.end_of_turn if self.chat and self.template else None
        return tuple(task_stops) + ((eot,) if eot and eot not in task_stops else ())

    def recorded(self, *, shots: int, extra: Mapping[str, JsonValue] | None = None) -> JSONObject:
        """The task record's ``prompt_format`` entry, with ``key``: what must match for numbers to be compared."""
        out: JSONObject = {"format": self.format, "requested": self.requested, "reason": self.reason}
        if self.system_prompt is not None:
            out["system_prompt"] = {"sha256": _sha(self.system_prompt), "text": self.system_prompt}
        if self.chat and self.template is not None:
            out.update(self.template.recorded())
            if self.system_prompt is not None:
                out["system_role"] = "system turn" if self.template.system_role else (
                    "merged into the first user turn (the template has no system role)"
                )
            out["few_shot_turns"] = "user/assistant turns" if self.fewshot_as_multiturn else "inlined in one user turn"
        out.update(extra or {})
        key = [self.format]
        if self.system_prompt is not None:
            key.append(f"system={_sha(self.system_prompt)}")
        if self.chat and shots and self.fewshot_as_multiturn:
            key.append("fewshot=multiturn")
        key += [f"{name}={value}" for name, value in sorted((extra or {}).items()) if name in KEYED_EXTRAS and value is not None]
        out["key"] = "|".join(key)
        return out


# Settings a formulation adds to the entry that change what is scored (so belong to the key).
KEYED_EXTRAS = frozenset({"strip_thinking"})


def raw_only(reason: str) -> JSONObject:
    """The entry of formulations that have no prompt to format (perplexity, sentence pairs)."""
    return {"format": "raw", "reason": reason, "key": "raw"}


def eos_ids(adapter: LoadedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """The ids that end a generation: generation_config's EOS ids and the tokenizer's EOS."""
    ids: set[int] = set()
    configured = getattr(getattr(getattr(adapter, "model", None), "generation_config", None), "eos_token_id", None)
    for value in configured if isinstance(configured, (list, tuple)) else [configured]:
        if isinstance(value, int):
            ids.add(value)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids


def _instruct_evidence(adapter: LoadedModel, tokenizer: PreTrainedTokenizerBase, template: ChatTemplate, name: str) -> str | None:
    eot = template.end_of_turn
    if eot is not None and tokenizer.convert_tokens_to_ids(eot) in eos_ids(adapter, tokenizer):
        return f"its chat template ends assistant turns with {eot!r}, one of the model's end-of-sequence tokens (it was trained to end them)"
    peft = dict(adapter.info.notes).get("peft_adapter")
    if isinstance(peft, dict) and peft.get("tokenizer") == "the adapter directory":
        return "it is a PEFT adapter that ships its own tokenizer with a chat template"
    if _INSTRUCT_NAME.search(name):
        return f"its name '{name}' marks an instruct/chat model"
    return None


def resolve_prompt_format(adapter: LoadedModel, *, requested: str | None, system_prompt: str | None, fewshot_as_multiturn: bool) -> PromptFormat:
    """The run's prompt format for ``adapter`` (``requested`` None: decided here, with the reason)."""
    tokenizer = getattr(adapter, "tokenizer", None)
    name = adapter.info.name
    has_template = tokenizer is not None and bool(getattr(tokenizer, "chat_template", None))
    if requested == "raw":
        fmt = PromptFormat("raw", f"{FORMAT_FLAG} raw", "raw", system_prompt)
    elif tokenizer is None or not has_template:
        why = "the tokenizer has no chat template" if tokenizer is not None else "the backend exposes no tokenizer, so no chat template"
        if requested == "chat":
            where = "(tokenizer_config.json chat_template or chat_template.jinja)" if tokenizer is not None else "to render it with"
            raise ModelError(
                f"{FORMAT_FLAG} chat: for {name}, {why} {where}; use --prompt-format raw, or --tokenizer DIR naming a "
                "tokenizer that has one"
            )
        fmt = PromptFormat("raw", why, "auto", system_prompt)
    else:
        template = probe_template(tokenizer, where=name)
        evidence = _instruct_evidence(adapter, tokenizer, template, name)
        if requested == "chat":
            fmt = PromptFormat("chat", f"{FORMAT_FLAG} chat", "chat", system_prompt, fewshot_as_multiturn, template, tokenizer)
        elif evidence is not None:
            fmt = PromptFormat("chat", f"the tokenizer has a chat template and {evidence}", "auto", system_prompt,
                               fewshot_as_multiturn, template, tokenizer)
        else:
            fmt = PromptFormat(
                "raw", f"the tokenizer has a chat template, but nothing marks {name} as an instruct/chat model (end-of-turn "
                f"token {template.end_of_turn!r} is not an end-of-sequence token, no instruct name); pass {FORMAT_FLAG} chat if it is",
                "auto", system_prompt,
            )
    if fewshot_as_multiturn and not fmt.chat and requested == "raw":
        raise UsageError("--fewshot-as-multiturn lays demonstrations out as chat turns; it contradicts --prompt-format raw")
    return fmt
