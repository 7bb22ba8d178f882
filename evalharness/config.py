"""One loader for every configuration file: task specs, gate policies, sweep specs, leaderboard
definitions and label maps.

YAML is parsed with a ``SafeLoader`` (no Python objects), duplicate keys are errors, and the
input is bounded before anything is built from it: file size, nesting depth and the size of
the document after alias expansion (a "billion laughs" file is refused in milliseconds instead
of hanging whatever walks it later). Every validation problem is reported as
``file:line: field.path: problem`` with a "did you mean" for misspelt keys.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from evalharness.errors import SpecError, did_you_mean

__all__ = [
    "MAX_YAML_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "Location",
    "LoadedConfig",
    "StrictModel",
    "field_path",
    "load_config",
    "load_yaml",
    "parse_yaml",
    "validate_model",
    "where",
]

MAX_YAML_BYTES = 4 * 1024 * 1024  # the largest built-in task file is a few KiB
MAX_YAML_DEPTH = 64
MAX_YAML_NODES = 200_000  # scalars, lists and mappings after alias expansion

ModelT = TypeVar("ModelT", bound=BaseModel)
Location = tuple[str | int, ...]


class StrictModel(BaseModel):
    """Base for every configuration model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# -- YAML -------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys."""


def _construct_unique_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        try:
            duplicate = key in seen
        except TypeError:  # an unhashable key ([a, b]: 1) is refused by construct_mapping below
            duplicate = False
        if duplicate:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}' (line {mark.line + 1})", mark)
        if not isinstance(key, list | dict):
            seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def _check_size(root: yaml.Node, source: str) -> None:
    """Refuse documents nested too deeply or too large once aliases are expanded.

    Sizes are memoised per node, so a chain of aliases that would expand to 10^9 nodes is
    measured in a few steps.
    """
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_YAML_DEPTH:
            mark = node.start_mark
            raise SpecError(f"{source}:{mark.line + 1}: nested more than {MAX_YAML_DEPTH} levels deep")
        known = sizes.get(id(node))
        if known is not None:
            return known
        total = 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                total += size(key, depth + 1) + size(value, depth + 1)
                if total > MAX_YAML_NODES:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item, depth + 1)
                if total > MAX_YAML_NODES:
                    break
        if total > MAX_YAML_NODES:
            raise SpecError(
                f"{source}:{node.start_mark.line + 1}: the document expands to more than {MAX_YAML_NODES:,} values "
                "(through aliases); refusing to load it"
            )
        sizes[id(node)] = total
        return total

    size(root, 0)


def _node_lines(root: yaml.Node | None) -> dict[Location, int]:
    """Line of every mapping key and sequence item, by its location (as pydantic gives it)."""
    lines: dict[Location, int] = {}
    seen: set[int] = set()

    def walk(node: yaml.Node, loc: Location) -> None:
        if id(node) in seen:  # an alias: its lines are those of its anchor
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else str(key.start_mark.line)
                lines[(*loc, name)] = key.start_mark.line + 1
                walk(value, (*loc, name))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines[(*loc, index)] = item.start_mark.line + 1
                walk(item, (*loc, index))

    if root is not None:
        walk(root, ())
    return lines


def parse_yaml(text: str, source: str) -> tuple[Any, dict[Location, int]]:
    """``(data, lines)`` of a YAML document; every problem is a :class:`SpecError`."""
    if len(text.encode("utf-8", errors="replace")) > MAX_YAML_BYTES:
        raise SpecError(f"{source}: larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB; not a configuration file")
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                return None, {}
            _check_size(root, source)
            data = loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(f"{source}{where}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: YAML error: {exc}") from None
    except RecursionError:
        raise SpecError(f"{source}: nested too deeply to parse (more than {MAX_YAML_DEPTH} levels allowed)") from None
    return data, _node_lines(root)


def _read(path: Path) -> str:
    try:
        if path.is_file() and path.stat().st_size > MAX_YAML_BYTES:
            raise SpecError(f"{path}: larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB; not a configuration file")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a directory, not a YAML file") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not valid UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read ({exc.strerror or exc})") from None


def load_yaml(path: str | os.PathLike[str]) -> Any:
    """Parse a YAML file safely; syntax errors name the file, line and column."""
    path = Path(path)
    return parse_yaml(_read(path), str(path))[0]


# -- validation with line numbers --------------------------------------------------------------


def field_path(loc: Sequence[str | int]) -> str:
    """Render a pydantic location tuple as ``metrics[0].name``."""
    rendered = ""
    for part in loc:
        if isinstance(part, int):
            rendered += f"[{part}]"
        else:
            rendered += f".{part}" if rendered else str(part)
    return rendered or "(top level)"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, list, dict, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for argument in typing.get_args(annotation):
        found += _models_in(argument)
    return found


def _model_at(model: type[BaseModel], loc: Location) -> type[BaseModel] | None:
    """The model class that holds the field at ``loc`` (for "did you mean" on unknown keys)."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if current is None:
            return None
        if isinstance(part, int) or part not in current.model_fields:
            continue  # a list index or a dict key: the element type was taken already
        candidates = _models_in(current.model_fields[part].annotation)
        current = candidates[0] if candidates else None
    return current


def _describe(error: Any, model: type[BaseModel], loc: Location) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        holder = _model_at(model, loc)
        hint = did_you_mean(str(loc[-1]), holder.model_fields) if holder is not None and loc else ""
        return f"unknown key (remove it or check its spelling){hint}"
    if kind == "missing":
        return "required field is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind not in {"value_error", "assertion_error"} and "input" in error:
        got = error["input"]
        shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
        if len(shown) > 80:
            shown = shown[:77] + "..."
        message += f" (got {shown})"
    return message


def where(source: str, lines: dict[Location, int] | None, loc: Sequence[str | int]) -> str:
    """``file:line: field`` for a location (the nearest line known), ``file: field`` otherwise."""
    loc = tuple(loc)
    for end in range(len(loc), 0, -1):
        if lines and loc[:end] in lines:
            return f"{source}:{lines[loc[:end]]}: {field_path(loc)}"
    return f"{source}: {field_path(loc)}" if loc else source


def validate_model(
    model: type[ModelT],
    data: Any,
    source: str,
    *,
    prefix: Sequence[str | int] = (),
    lines: dict[Location, int] | None = None,
) -> ModelT:
    """Validate ``data`` against ``model``; raise :class:`SpecError` listing every problem.

    ``prefix`` is the location of ``data`` inside its file (e.g. ``("metrics", 0, "settings")``)
    and ``lines`` the file's line map, so each message starts with ``file:line: field``.
    """
    if not isinstance(data, dict):
        place = field_path(prefix) if prefix else "top level"
        raise SpecError(f"{source}: {place}: expected a mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            # Drop pydantic's union-branch markers such as 'function-after[...]'.
            inner = tuple(part for part in error["loc"] if not (isinstance(part, str) and "[" in part))
            problems.append(f"{where(source, lines, (*prefix, *inner))}: {_describe(error, model, inner)}")
        raise SpecError("\n".join(problems)) from None


@dataclass(frozen=True)
class LoadedConfig(Generic[ModelT]):
    """A validated configuration file and the line of every field, for later messages."""

    path: Path
    value: ModelT
    lines: dict[Location, int] = field(default_factory=dict, repr=False)

    def where(self, *loc: str | int) -> str:
        return where(str(self.path), self.lines, loc)


def load_config(
    path: str | os.PathLike[str], model: type[ModelT], *, what: str = "", overrides: dict[str, Any] | None = None
) -> LoadedConfig[ModelT]:
    """Read, bound, parse and validate one configuration file.

    ``what`` names the file kind for the "not a mapping" message (e.g. "a gate policy");
    ``overrides`` replace top-level keys (command-line options over a sweep file).
    """
    path = Path(path)
    data, lines = parse_yaml(_read(path), str(path))
    if not isinstance(data, dict):
        kind = what or f"a {model.__name__}"
        shown = "an empty file" if data is None else type(data).__name__
        raise SpecError(f"{path}: top level: expected a mapping ({kind}), got {shown}")
    if overrides:
        data = {**data, **{key: value for key, value in overrides.items() if value is not None}}
    return LoadedConfig(path, validate_model(model, data, str(path), lines=lines), lines)

