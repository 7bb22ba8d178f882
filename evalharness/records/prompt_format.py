"""The prompt format of a task's numbers: one definition for leaderboards, ``compare`` and ``gate``.

A prompted task records its prompt-format policy under ``settings.prompt_format``
(``prompting.chat``), whose ``key`` holds what must match for two numbers to be compared: the
format (``raw``/``chat``), the system prompt's hash, few-shot demonstrations as chat turns,
and a reasoning delimiter stripped before scoring. The chat template itself is a property of
each checkpoint (its hash is recorded, and its file is part of the model fingerprint), so two
instruct models each prompted with their own template share a column; a raw and a chat run
never do.

Records written before prompt formats were recorded prompted every model as raw text, so a
prompted formulation without the entry is ``raw``. Formulations without a prompt (classifier
and QA heads, seq2seq, masked LMs) have no prompt format (``None``): they neither conflict
with nor constrain prompted numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from evalharness.jsonvalues import JSONObject, JsonValue

__all__ = ["PROMPTED_FORMULATIONS", "prompt_format_key", "prompt_format_problem", "template_note"]

# Formulations that write prompts (also when wrapped: ``counterfactual:choice_loglikelihood``).
PROMPTED_FORMULATIONS = frozenset({"choice_loglikelihood", "field_choice_loglikelihood", "prompt_generate"})


def _entry(settings: Mapping[str, JsonValue]) -> JSONObject | None:
    value = settings.get("prompt_format")
    return value if isinstance(value, dict) else None


def prompt_format_key(formulation: str, settings: Mapping[str, JsonValue]) -> str | None:
    """What must match for this task's numbers to be compared (None: no prompt)."""
    entry = _entry(settings)
    key = entry.get("key") if entry is not None else None
    if isinstance(key, str):
        return key
    return "raw" if formulation.rsplit(":", 1)[-1] in PROMPTED_FORMULATIONS else None


def prompt_format_problem(keys: Iterable[str | None], labels: Iterable[str]) -> str | None:
    """Why numbers with these keys cannot be compared (None: they can)."""
    pairs = [(key, label) for key, label in zip(keys, labels) if key is not None]
    if len({key for key, _ in pairs}) < 2:
        return None
    return "prompt formats differ (" + " vs ".join(f"{key} in {label}" for key, label in pairs) + ")"


def template_note(settings_a: Mapping[str, JsonValue], settings_b: Mapping[str, JsonValue]) -> str | None:
    """A note when two chat runs used different chat templates (checkpoints that differ in it)."""
    a, b = _entry(settings_a) or {}, _entry(settings_b) or {}
    if a.get("template_sha256") and b.get("template_sha256") and a["template_sha256"] != b["template_sha256"]:
        return f"chat templates differ ({a['template_sha256']} vs {b['template_sha256']}): each model was prompted with its own"
    return None
