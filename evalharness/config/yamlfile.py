"""YAML for configuration files: plain data, YAML 1.2 scalars, duplicate keys refused, and
bounded before anything is built from it (see ``evalharness.config``)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import ClassVar, Protocol, TypeAlias
from typing_extensions import TypeAliasType

import yaml

from evalharness.config.models import Location
from evalharness.errors import SpecError

__all__ = ["MAX_YAML_BYTES", "MAX_YAML_DEPTH", "MAX_YAML_NODES", "YamlScalar", "YamlValue", "load_yaml", "parse_yaml", "read_config_text"]

MAX_YAML_BYTES = 4 * 1024 * 1024  # the largest built-in task file is a few KiB
MAX_YAML_DEPTH = 64
MAX_YAML_NODES = 50_000  # scalars, lists and mappings, before and after alias expansion

# What a configuration file holds: JSON-like plain data, except that a mapping key may be any
# plain scalar (``0: negative`` has an integer key); narrow it with ``evalharness.jsonvalues``.
YamlScalar: TypeAlias = str | int | float | bool | None
# (a TypeAliasType, as pydantic's JsonValue, so pydantic fields can be typed with it too)
YamlValue = TypeAliasType("YamlValue", "YamlScalar | list[YamlValue] | dict[YamlScalar, YamlValue]")


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

    yaml_implicit_resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}


for _name, (_pattern, _first) in _CORE_SCALARS.items():
    _Resolver.add_implicit_resolver(
        _TAG + _name, re.compile(_pattern), [*_first, ""] if _name == "null" else list(_first)
    )


def _scalar_error(node: yaml.Node, problem: str) -> yaml.constructor.ConstructorError:
    return yaml.constructor.ConstructorError(None, None, problem, node.start_mark)


class _Constructor(yaml.constructor.SafeConstructor):
    """Plain data only (text, numbers, booleans, null, lists, mappings), unique plain keys."""

    yaml_constructors: ClassVar[dict[str | None, Callable[[_Constructor, yaml.Node], object]]] = {}  # tag -> constructor

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

    def construct_unique_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, object]:
        seen: set[object] = set()
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
    _Constructor.add_constructor(_TAG + _name, _method)  # type: ignore[arg-type]  # types-PyYAML: self must be a PyYAML Loader
_Constructor.add_constructor(None, _Constructor.refuse_tag)  # type: ignore[type-var]  # types-PyYAML: as above


class _YamlLoader(Protocol):
    """What is used of a loader (pure Python or libyaml's): events, then one node tree."""

    def get_event(self) -> yaml.Event | None: ...

    def get_single_node(self) -> yaml.Node | None: ...

    def construct_document(self, node: yaml.Node) -> YamlValue: ...

    def dispose(self) -> None: ...


class _Loader(
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
    from yaml.cyaml import CParser  # type: ignore[attr-defined]  # re-exported at runtime; types-PyYAML does not list it

    class _FastLoader(CParser, _Constructor, _Resolver):
        """libyaml's parser and composer (tens of times faster), our resolver and constructors."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _Constructor.__init__(self)
            _Resolver.__init__(self)

    _LOADERS: tuple[Callable[[str], _YamlLoader], ...] = (_FastLoader, _Loader)
else:  # pragma: no cover - PyYAML without libyaml
    _LOADERS = (_Loader,)


def _too_large(source: str, line: int, what: str) -> SpecError:
    return SpecError(f"{source}:{line}: {what}; refusing to load it (is this really a configuration file?)")


def _check_events(loader: _YamlLoader, source: str) -> None:
    """Walk the event stream (no recursion, nothing built) and stop at the first event past a
    bound: deeper than ``MAX_YAML_DEPTH``, more than ``MAX_YAML_NODES`` values, or a second
    document. Composing a node tree recurses once per level, so this runs first."""
    depth = nodes = documents = 0
    while True:
        event = loader.get_event()
        if event is None or isinstance(event, yaml.StreamEndEvent):
            return
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
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


def _load(loader_class: Callable[[str], _YamlLoader], text: str, source: str) -> tuple[YamlValue, dict[Location, int]]:
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


def parse_yaml(text: str, source: str) -> tuple[YamlValue, dict[Location, int]]:
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


def read_config_text(path: Path) -> str:
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


def load_yaml(path: str | os.PathLike[str]) -> YamlValue:
    """Parse a YAML file safely; syntax errors name the file, line and column."""
    path = Path(path)
    return parse_yaml(read_config_text(path), str(path))[0]


