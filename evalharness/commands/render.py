"""Printing ``tasks show NAME --render --model PATH``: the requests of one example, verbatim.

Each text is printed between marker lines exactly as the model gets it (no quoting, trailing
newlines kept); ``--json`` prints the same with token ids, for comparisons token by token.
"""

from __future__ import annotations

from collections.abc import Mapping

from evalharness.evaluation.render import RenderedExample
from evalharness.jsonvalues import JsonValue

__all__ = ["print_rendered"]


def _block(title: str, text: str) -> None:
    print(f"----- {title} -----")
    print(text)


def _describe_format(fmt: Mapping[str, JsonValue] | None) -> list[str]:
    if not fmt:
        return []
    lines = [f"# prompt format: {fmt.get('format')} ({fmt.get('reason')})"]
    for key in ("template_sha256", "end_of_turn", "system_role", "few_shot_turns", "strip_thinking"):
        if fmt.get(key) is not None:
            lines.append(f"#   {key}: {fmt[key]}")
    default_prompt = fmt.get("template_default_system_prompt")
    if default_prompt and isinstance(default_prompt, dict):
        lines.append(f"#   the template writes its own system prompt: {default_prompt['text']!r}")
    return lines


def print_rendered(rendered: RenderedExample) -> None:
    print(
        f"# {rendered.task} (version {rendered.version}, {rendered.spec_hash}), example {rendered.example_id} "
        f"(1 of {rendered.n_examples}); model {rendered.model} ({rendered.model_kind})"
    )
    print(f"# formulation {rendered.formulation}: {len(rendered.requests)} {rendered.request_kind} request(s)")
    for line in _describe_format(rendered.prompt_format):
        print(line)
    if rendered.options:
        print(f"# request options: {rendered.options}")
    shown_context = None
    for number, request in enumerate(rendered.requests, start=1):
        for name, value in request.items():
            if name == "context" and value == shown_context:
                continue  # choices share their context: shown once
            if name == "context":
                shown_context = value
            title = f"{name} ({len(rendered.token_ids[value])} tokens)" if isinstance(value, str) and value in rendered.token_ids else name
            _block(f"request {number}: {title}", value if isinstance(value, str) else repr(value))
    print("----- end -----")
