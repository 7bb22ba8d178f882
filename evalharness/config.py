"""One loader for every configuration file: task specs, gate policies, sweep specs, leaderboard
definitions and label maps.

YAML holds plain data only (no Python objects, no merge keys, no tags beyond the core schema),
scalars resolve as in YAML 1.2 (``no`` is text, not false), duplicate keys are errors, and the
input is bounded before anything is built from it: file size, one document, nesting depth and
number of values while parsing, then values and characters after alias expansion (a "billion
laughs" file, a deeply nested or a 60,000-item flow list is refused in milliseconds instead of
hanging or overflowing the stack of whatever walks it later). Every validation problem is reported as
``file:line: field.path: problem`` with a "did you mean" for misspelt keys.
"""

from __future__ import annotations

import os
import re
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
MAX_YAML_NODES = 50_000  # scalars, lists and mappings, before and after alias expansion
MAX_PROBLEMS = 20  # validation problems listed in one message

ModelT = TypeVar("ModelT", bound=BaseModel)
Location = tuple[str | int, ...]


class StrictModel(BaseModel):
    """Base for every configuration model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# -- YAML -------------------------------------------------------------------------------------
#
# Scalars resolve as in the YAML 1.2 core schema, not PyYAML's YAML 1.1 default: `yes`, `no`,
# `on`, `off`, `010`, `1:30` and `2024-01-01` stay text, so a label value or an option never
# changes meaning because YAML 1.1 read it as a boolean, an octal or a sexagesimal number.

_TAG = "tag:yaml.org,2002:"
_CORE_SCALARS = {  # tag -> pattern, first characters
    "null": (r"^(?:~|null|Null|NULL|)$", "~nN"),
    "bool": (r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    "int": (r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    "float": (
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$",
        "-+.0123456789",
    ),
}


class _Resolver(yaml.resolver.BaseResolver):
    """YAML 1.2 core schema: null, bool, int and float; everything else is text."""

    yaml_implicit_resolvers: dict[Any, Any] = {}


for _name, (_pattern, _first) in _CORE_SCALARS.items():
    _Resolver.add_implicit_resolver(
        _TAG + _name, re.compile(_pattern), [*_first, ""] if _name == "null" else list(_first)
    )


def _scalar_error(node: yaml.Node, problem: str) -> yaml.constructor.ConstructorError:
    return yaml.constructor.ConstructorError(None, None, problem, node.start_mark)


class _Constructor(yaml.constructor.SafeConstructor):
    """Plain data only (text, numbers, booleans, null, lists, mappings), unique plain keys."""

    yaml_constructors: dict[Any, Any] = {}

    def construct_core_bool(self, node: yaml.ScalarNode) -> bool:
        value = str(self.construct_scalar(node)).lower()
        if value not in ("true", "false"):
            raise _scalar_error(node, f"'{node.value}' is not a boolean (true or false)")
        return value == "true"

    def construct_core_int(self, node: yaml.ScalarNode) -> int:
        text = str(self.construct_scalar(node))
        bases = {"0o": 8, "0x": 16}
        try:
            return int(text[2:], bases[text[:2]]) if text[:2] in bases else int(text, 10)
        except ValueError:
            raise _scalar_error(node, f"'{text}' is not an integer") from None

    def construct_core_float(self, node: yaml.ScalarNode) -> float:
        text = str(self.construct_scalar(node)).lower().replace(".inf", "inf").replace(".nan", "nan")
        try:
            return float(text)
        except ValueError:
            raise _scalar_error(node, f"'{node.value}' is not a number") from None

    def construct_unique_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            plain_merge = key_node.tag == _TAG + "str" and key_node.value == "<<" and not key_node.style
            if key_node.tag == _TAG + "merge" or plain_merge:
                raise _scalar_error(
                    key_node,
                    "merge keys ('<<') are not supported; write the keys out "
                    "(an alias such as '*name' may stand for a whole value)",
                )
            if not isinstance(key_node, yaml.ScalarNode):
                raise _scalar_error(
                    key_node, "a mapping key must be a plain value (text or a number), not a list or a mapping"
                )
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise _scalar_error(key_node, f"duplicate key '{key}' (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return self.construct_mapping(node, deep=deep)

    def refuse_tag(self, node: yaml.Node) -> None:
        raise _scalar_error(
            node,
            f"the tag '{node.tag}' is not allowed in a configuration file "
            "(plain text, numbers, booleans, lists and mappings only)",
        )


for _name, _method in {
    "null": _Constructor.construct_yaml_null,
    "bool": _Constructor.construct_core_bool,
    "int": _Constructor.construct_core_int,
    "float": _Constructor.construct_core_float,
    "str": _Constructor.construct_yaml_str,
    "seq": _Constructor.construct_yaml_seq,
    "map": _Constructor.construct_unique_mapping,
}.items():
    _Constructor.add_constructor(_TAG + _name, _method)
_Constructor.add_constructor(None, _Constructor.refuse_tag)


class _Loader(  # type: ignore[misc]
    yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer, _Constructor, _Resolver
):
    """The pure-Python loader: exact error positions, used when libyaml is absent or refuses."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _Constructor.__init__(self)
        _Resolver.__init__(self)


if yaml.__with_libyaml__:
    from yaml.cyaml import CParser

    class _FastLoader(CParser, _Constructor, _Resolver):  # type: ignore[misc]
        """libyaml's parser and composer (tens of times faster), our resolver and constructors."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _Constructor.__init__(self)
            _Resolver.__init__(self)

    _LOADERS: tuple[type, ...] = (_FastLoader, _Loader)
else:  # pragma: no cover - PyYAML without libyaml
    _LOADERS = (_Loader,)


def _too_large(source: str, line: int, what: str) -> SpecError:
    return SpecError(f"{source}:{line}: {what}; refusing to load it (is this really a configuration file?)")


def _check_events(loader: Any, source: str) -> None:
    """Walk the event stream (no recursion, nothing built) and stop at the first event past a
    bound: deeper than ``MAX_YAML_DEPTH``, more than ``MAX_YAML_NODES`` values, or a second
    document. Composing a node tree recurses once per level, so this runs first."""
    depth = nodes = documents = 0
    while True:
        event = loader.get_event()
        if isinstance(event, yaml.StreamEndEvent):
            return
        line = event.start_mark.line + 1
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise SpecError(
                    f"{source}:{line}: a second YAML document ('---'); a configuration file holds one document"
                )
        elif isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise _too_large(source, line, f"nested more than {MAX_YAML_DEPTH} levels deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        if isinstance(event, yaml.NodeEvent):
            nodes += 1
            if nodes > MAX_YAML_NODES:
                raise _too_large(source, line, f"more than {MAX_YAML_NODES:,} values")


def _check_size(root: yaml.Node, source: str) -> None:
    """Refuse documents nested too deeply or too large once aliases are expanded.

    Every node's size (values, characters) and height are memoised, so a chain of aliases that
    would expand to 10^9 values is measured in a few steps, and the recursion never goes
    deeper than ``MAX_YAML_DEPTH`` (a self-referencing alias stops there too).
    """
    measured: dict[int, tuple[int, int, int]] = {}

    def measure(node: yaml.Node, depth: int) -> tuple[int, int, int]:
        line = node.start_mark.line + 1
        if depth > MAX_YAML_DEPTH:
            raise _too_large(source, line, f"nested more than {MAX_YAML_DEPTH} levels deep (through aliases)")
        known = measured.get(id(node))
        if known is None:
            nodes, chars, height = 1, 0, 0
            if isinstance(node, yaml.ScalarNode):
                chars = len(node.value)
            if isinstance(node, yaml.MappingNode):
                children = [part for pair in node.value for part in pair]
            else:
                children = node.value if isinstance(node, yaml.SequenceNode) else []
            for child in children:
                child_nodes, child_chars, child_height = measure(child, depth + 1)
                nodes, chars, height = nodes + child_nodes, chars + child_chars, max(height, child_height + 1)
                if nodes > MAX_YAML_NODES:
                    raise _too_large(source, line, f"the document expands to more than {MAX_YAML_NODES:,} values")
                if chars > MAX_YAML_BYTES:
                    mib = MAX_YAML_BYTES // (1024 * 1024)
                    raise _too_large(source, line, f"the document expands to more than {mib} MiB of text")
            known = measured[id(node)] = (nodes, chars, height)
        if depth + known[2] > MAX_YAML_DEPTH:
            raise _too_large(source, line, f"nested more than {MAX_YAML_DEPTH} levels deep (through aliases)")
        return known

    measure(root, 0)


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


def _load(loader_class: type, text: str, source: str) -> tuple[Any, dict[Location, int]]:
    events = loader_class(text)
    try:
        _check_events(events, source)
    finally:
        events.dispose()
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, {}
        _check_size(root, source)
        return loader.construct_document(root), _node_lines(root)
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError, source: str) -> SpecError:
    if isinstance(exc, yaml.reader.ReaderError):
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        return SpecError(f"{source}: character {char} (at offset {exc.position}) is not allowed in YAML")
    if not isinstance(exc, yaml.MarkedYAMLError):
        return SpecError(f"{source}: YAML error: {exc}")
    mark = exc.problem_mark or exc.context_mark
    where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
    kind = "YAML error" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
    return SpecError(f"{source}{where}: {kind}: {exc.problem or exc.context or 'invalid YAML'}")


def parse_yaml(text: str, source: str) -> tuple[Any, dict[Location, int]]:
    """``(data, lines)`` of a YAML document; every problem is a :class:`SpecError`.

    libyaml parses when it is installed; when it refuses a document, the pure-Python parser
    (bounded the same way) reports the error, with the line and column users expect.
    """
    if len(text.encode("utf-8", errors="replace")) > MAX_YAML_BYTES:
        raise SpecError(f"{source}: larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB; not a configuration file")
    problem = SpecError(f"{source}: cannot parse")
    for loader_class in _LOADERS:
        try:
            return _load(loader_class, text, source)
        except yaml.YAMLError as exc:
            problem = _yaml_problem(exc, source)
            if isinstance(exc, yaml.constructor.ConstructorError):
                break  # our own refusal (a tag, a duplicate key): the same with either parser
    raise problem


def _read(path: Path) -> str:
    """The file's text, read only up to the size limit (a FIFO or a device is refused, never
    read forever)."""
    try:
        if not path.exists():
            raise SpecError(f"{path}: file not found")
        if path.is_dir():
            raise SpecError(f"{path}: is a directory, not a YAML file")
        if not path.is_file():
            raise SpecError(f"{path}: not a regular file")
        with path.open("rb") as handle:
            data = handle.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_YAML_BYTES:
        raise SpecError(f"{path}: larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB; not a configuration file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not valid UTF-8 (byte {exc.start})") from None


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
    """Validate ``data`` against ``model``; raise :class:`SpecError` listing the problems (the
    first ``MAX_PROBLEMS``, then how many more).

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
        errors = exc.errors(include_url=False)
        for error in errors[:MAX_PROBLEMS]:
            # Drop pydantic's union-branch markers such as 'function-after[...]'.
            inner = tuple(part for part in error["loc"] if not (isinstance(part, str) and "[" in part))
            problems.append(f"{where(source, lines, (*prefix, *inner))}: {_describe(error, model, inner)}")
        if len(errors) > MAX_PROBLEMS:
            problems.append(f"{source}: ... and {len(errors) - MAX_PROBLEMS:,} more problems")
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

