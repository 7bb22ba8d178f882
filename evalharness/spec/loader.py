"""Load YAML configuration safely and turn validation failures into precise messages.

Only ``yaml.SafeLoader`` is used (no Python objects from YAML); duplicate keys are errors
rather than "last one wins". Every message starts with the file and the field path, e.g.
``tasks/glue/sst2.yaml: metrics[0].name: unknown metric 'acc'; did you mean 'accuracy'?``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from evalharness.errors import SpecError
from evalharness.spec.schema import TaskSpec

__all__ = ["Task", "field_path", "load_task", "load_yaml", "validate_model", "spec_hash"]

ModelT = TypeVar("ModelT", bound=BaseModel)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}' (line {mark.line + 1})", mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def load_yaml(path: Path) -> Any:
    """Parse a YAML file safely; syntax errors name the file, line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not valid UTF-8 (byte {exc.start})") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(f"{path}{where}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: YAML error: {exc}") from None


def field_path(loc: Sequence[str | int]) -> str:
    """Render a pydantic location tuple as ``metrics[0].name``."""
    rendered = ""
    for part in loc:
        if isinstance(part, int):
            rendered += f"[{part}]"
        else:
            rendered += f".{part}" if rendered else str(part)
    return rendered or "(top level)"


def _describe(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key (remove it or check its spelling)"
    if kind == "missing":
        return "required field is missing"
    message = error["msg"].removeprefix("Value error, ")
    if kind not in {"value_error", "assertion_error"} and "input" in error:
        got = error["input"]
        shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
        message += f" (got {shown})"
    return message


def validate_model(
    model: type[ModelT], data: Any, source: str, *, prefix: Sequence[str | int] = ()
) -> ModelT:
    """Validate ``data`` against ``model``; raise :class:`SpecError` listing every problem.

    ``prefix`` is the location of ``data`` inside its file (e.g. ``("metrics", 0, "settings")``).
    """
    if not isinstance(data, dict):
        where = field_path(prefix) if prefix else "top level"
        raise SpecError(f"{source}: {where}: expected a mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False):
            loc = [*prefix, *error["loc"]]
            # Drop pydantic's union-branch markers such as 'function-after[...]'.
            loc = [part for part in loc if not (isinstance(part, str) and "[" in part)]
            lines.append(f"{source}: {field_path(loc)}: {_describe(error)}")
        raise SpecError("\n".join(lines)) from None


def spec_hash(spec: BaseModel) -> str:
    """Content hash of a validated spec: equal specs hash equally however the YAML is laid out."""
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Task:
    """A validated task spec with the identity it gets from its file."""

    name: str
    path: Path
    spec: TaskSpec
    spec_hash: str

    @property
    def version(self) -> int:
        return self.spec.version


def load_task(path: Path, name: str) -> Task:
    """Load and validate one task file (schema only; see ``catalog`` for cross-references)."""
    spec = validate_model(TaskSpec, load_yaml(path), str(path))
    return Task(name=name, path=path, spec=spec, spec_hash=spec_hash(spec))
