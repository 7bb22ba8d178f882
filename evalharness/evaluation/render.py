"""The exact requests one example becomes for one checkpoint (``tasks show NAME --render --model PATH``).

The same path as ``evalharness run`` up to the forward pass: the task, its data, the model
(PEFT adapters and ``--model-args`` included), the chosen formulation prepared with the run's
options (prompt format, system prompt, few-shot), then that formulation's requests for the
example. So what is shown is what the model would be asked, byte for byte, and with the token
ids the adapter would encode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from evalharness.errors import UsageError
from evalharness.evaluation.settings import RunSettings
from evalharness.jsonvalues import JsonValue

__all__ = ["RenderedExample", "render_example"]


@dataclass(frozen=True)
class RenderedExample:
    task: str
    version: int
    spec_hash: str
    example_id: str
    n_examples: int
    model: str
    model_kind: str
    formulation: str
    request_kind: str
    requests: list[dict[str, object]]
    options: dict[str, object] = field(default_factory=dict)
    prompt_format: Mapping[str, JsonValue] | None = None
    token_ids: dict[str, list[int]] = field(default_factory=dict)  # prompt text -> its ids, as the adapter encodes it

    def to_dict(self) -> dict[str, object]:
        from dataclasses import asdict

        return asdict(self)


def _fields(request: object) -> dict[str, object]:
    if hasattr(request, "_asdict"):
        return dict(request._asdict())
    return {"prompt": request} if isinstance(request, str) else {"request": request}


def render_example(config: RunSettings, task_name: str, example_id: str | None = None) -> RenderedExample:
    """The requests of one example (the first, or ``example_id``) of ``task_name`` for ``config.model``."""
    from evalharness.data.loader import load_examples, resolve_data_dir
    from evalharness.evaluation.runner import formulation_options, load_adapter
    from evalharness.prompting import choose_formulation
    from evalharness.spec.catalog import TaskCatalog

    task = TaskCatalog(config.tasks_dirs).load(task_name)
    data = load_examples(task, resolve_data_dir(config.data_dir))
    examples = [example for example in data.examples if example_id is None or example.id == example_id]
    if not examples:
        shown = ", ".join(example.id for example in data.examples[:5])
        raise UsageError(f"{task.name}: no example with id '{example_id}' (ids start: {shown}, ...)")
    example = examples[0]
    adapter = load_adapter(config)
    formulation = choose_formulation(task, adapter)
    state = formulation.prepare(task, adapter, formulation.accepted_options(formulation_options(config)))
    requests = formulation.requests(task, [example], state)[0]
    options = formulation.request_options(task, state)
    policy = formulation.prompt_policy(task, state)
    prompts = [str(r[0]) if hasattr(r, "_asdict") else str(r) for r in requests] if policy is not None else []
    encode = getattr(adapter, "encode_prompts", None)
    unique = list(dict.fromkeys(prompts))
    ids = dict(zip(unique, encode(unique))) if encode is not None and unique else {}
    prompt_format = formulation.settings(task, state).get("prompt_format")
    return RenderedExample(
        task=task.name, version=task.version, spec_hash=task.spec_hash, example_id=example.id, n_examples=len(data.examples),
        model=adapter.info.name, model_kind=adapter.info.kind, formulation=formulation.name,
        request_kind=formulation.request_kind.value, requests=[_fields(request) for request in requests],
        options=options.model_dump() if options is not None else {},
        prompt_format=prompt_format if isinstance(prompt_format, dict) else None, token_ids=ids,
    )
