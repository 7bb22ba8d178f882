"""The Jinja2 environment that task templates render in: immutable, deterministic, bounded.

Task templates come from task files, so they are untrusted code that must not change a number
nor hang a run:

- ``ImmutableSandboxedEnvironment``: no Python internals, and no mutation of what a template is
  given (``labels.append(...)``, ``reference.update(...)``), so rendering an example twice, or
  the examples in another order, gives the same prompts;
- nothing random: the ``random`` filter and the ``lipsum`` global are removed;
- bounded size: a prompt longer than ``MAX_PROMPT_CHARS`` characters is refused, and so is any
  value that would be (``'x' * 10**9``, ``'%999999999s' % x``, ``text|replace('a', text)``,
  ``'{:>999999999}'.format(x)``, doubling in a loop), checked *before* it is built wherever an
  operation can amplify its input;
- bounded work: every loop iteration, call, filter, operator and output is a step; a render
  that takes more than ``MAX_RENDER_STEPS`` steps or builds more than ``MAX_RENDER_CHARS``
  characters in all (a loop keeping a million-character copy per iteration) is refused, and a
  render running longer than ``MAX_RENDER_SECONDS`` is stopped as a backstop. Steps and
  characters are deterministic: a template is refused on every machine or on none.

Loops, outputs and ``~`` concatenations are routed through the budget by rewriting the parsed
template (``_Guard``) before it is compiled, so a loop that calls nothing still counts.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import re
import string
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Protocol, TypeVar

from jinja2 import StrictUndefined, Template, nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer

__all__ = [
    "MAX_PROMPT_CHARS",
    "MAX_RENDER_CHARS",
    "MAX_RENDER_SECONDS",
    "MAX_RENDER_STEPS",
    "RenderLimitError",
    "MUTATING_METHODS",
    "compile_template",
    "parse_template",
    "refused_attributes",
    "render_bounded",
]

MAX_PROMPT_CHARS = 1_000_000  # a rendered prompt, and any single value built on the way
MAX_RENDER_CHARS = 10_000_000  # characters built and output in all during one render
MAX_RENDER_STEPS = 100_000  # loop iterations, calls, filters, operators and outputs
MAX_RENDER_SECONDS = 5.0  # wall-clock backstop for one render
MAX_INT_BITS = 100_000  # integers built by * and ** (a 30,000-digit number is no prompt)

ValueT = TypeVar("ValueT")
ResultT_co = TypeVar("ResultT_co", covariant=True)


class _Function(Protocol[ResultT_co]):
    """A callable a template reaches (a filter, a method): called with whatever the template passes."""

    def __call__(self, *args: object, **kwargs: object) -> ResultT_co: ...


class RenderLimitError(SecurityError):
    """A template exceeded a bound (size, steps, characters or time)."""


class _Budget:
    """What one render has spent."""

    def __init__(self) -> None:
        self.steps = 0
        self.chars = 0
        self.deadline = time.monotonic() + MAX_RENDER_SECONDS

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_RENDER_STEPS:
            raise RenderLimitError(
                f"the template takes more than {MAX_RENDER_STEPS:,} steps (loop iterations, calls, filters, outputs)"
            )
        if self.steps % 256 == 0 and time.monotonic() > self.deadline:
            raise RenderLimitError(f"rendering takes more than {MAX_RENDER_SECONDS:g} seconds")

    def spend(self, chars: int) -> None:
        self.chars += chars
        if self.chars > MAX_RENDER_CHARS:
            raise RenderLimitError(f"the template builds more than {MAX_RENDER_CHARS:,} characters in all")


_BUDGET: contextvars.ContextVar[_Budget] = contextvars.ContextVar("template_budget")


def _budget() -> _Budget:
    budget = _BUDGET.get(None)
    if budget is None:
        raise RuntimeError("task templates are rendered with render_bounded, which sets the budget")
    return budget


def _too_large(what: str, size: int) -> RenderLimitError:
    return RenderLimitError(f"{what} would be {size:,} long, more than the {MAX_PROMPT_CHARS:,} a prompt may have")


def _checked(value: ValueT, what: str) -> ValueT:
    """Refuse a value over the size limits; count what it cost."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise RenderLimitError(f"{what} is an integer of more than {MAX_INT_BITS:,} bits")
    if isinstance(value, str | bytes | list | tuple | dict):
        if len(value) > MAX_PROMPT_CHARS:
            raise _too_large(what, len(value))
        _budget().spend(len(value))
    return value


def _bounded(size: int, what: str) -> None:
    if size > MAX_PROMPT_CHARS:
        raise _too_large(what, size)


def _width(value: object, what: str) -> int:
    """An integer argument used as a width or a count, refused above the size limit."""
    if isinstance(value, int) and not isinstance(value, bool):
        _bounded(abs(value), what)
        return value
    return len(value) if isinstance(value, str) else 0


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_percent_format(text: object, arguments: object) -> None:
    """``'%999999999s' % x`` and ``'%*s' % (10**9, x)``: widths and precisions are bounded."""
    if not isinstance(text, str):
        return
    stars = False
    for match in _PERCENT_SPEC.finditer(text):
        for number in match.groups():
            stars = stars or number == "*"
            if number and number != "*":
                _width(int(number), "a %-format width")
    for item in arguments if stars and isinstance(arguments, tuple) else ():
        _width(item, "a %-format width")


def _check_brace_format(text: str, args: tuple[object, ...], kwargs: object) -> None:
    """``'{:>999999999}'.format(x)`` and ``'{:{}}'.format(x, 10**9)``: widths are bounded."""
    try:
        specs = [spec or "" for _, _, spec, _ in string.Formatter().parse(text)]
    except ValueError:
        return  # str.format reports the malformed format string itself
    for spec in specs:
        for number in re.findall(r"\d+", spec):
            _width(int(number), "a format width")
    if any("{" in spec for spec in specs):  # nested fields: the arguments may be widths
        named = kwargs.values() if isinstance(kwargs, Mapping) else ()  # format_map reports a non-mapping itself
        for item in [*args, *named]:
            _width(item, "a format width")


def _check_binop(symbol: str, left: object, right: object) -> None:
    if symbol == "*":
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, str | list | tuple) and isinstance(count, int):
                _bounded(len(sequence) * max(count, 0), "a repetition")
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise RenderLimitError(f"a product of more than {MAX_INT_BITS:,} bits")
    elif symbol == "**" and isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1 and left.bit_length() * right > MAX_INT_BITS:
        raise RenderLimitError(f"a power of more than {MAX_INT_BITS:,} bits")
    elif symbol == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
        _bounded(len(left) + len(right), "a concatenation")
    elif symbol == "%":
        _check_percent_format(left, right)


def _replace_size(text: str, old: object, new: object) -> int:
    old_text, new_text = str(old), str(new)
    count = text.count(old_text) if old_text else len(text) + 1
    return len(text) + count * (len(new_text) - len(old_text))


def _join_size(separator: object, items: object) -> int:
    if not isinstance(items, list):  # not materialised: not iterable, which the join reports itself
        return 0
    return sum(len(str(item)) for item in items) + len(str(separator)) * max(len(items) - 1, 0)


def _arguments(function: _Function[object], args: tuple[object, ...], kwargs: Mapping[str, object]) -> dict[str, object] | None:
    """Arguments by parameter name (None when they do not fit: the call reports that itself)."""
    try:
        bound = inspect.signature(function).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return None
    bound.apply_defaults()
    return bound.arguments


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _wrapped_size(text: str, width: object, wrapstring: object) -> int:
    wraps = len(text) // max(_width(width, "a width"), 1) + text.count("\n") + 1
    return len(text) + wraps * len(_text(wrapstring or "\n"))


# Operations whose result can be much larger than their inputs -> their predicted size, from
# the arguments by name (str methods name the string 'self', which is a str: ``BoundedSandbox.call``).
_PREDICTIONS: dict[str, Callable[[dict[str, object]], int]] = {
    "replace": lambda a: _replace_size(_text(a.get("self", a.get("s"))), a["old"], a["new"]),
    "expandtabs": lambda a: len(_text(a["self"])) + _text(a["self"]).count("\t") * _width(a["tabsize"], "a tab size"),
    "center": lambda a: max(len(_text(a.get("self", a.get("value")))), _width(a["width"], "a width")),
    "ljust": lambda a: max(len(_text(a["self"])), _width(a["width"], "a width")),
    "rjust": lambda a: max(len(_text(a["self"])), _width(a["width"], "a width")),
    "zfill": lambda a: max(len(_text(a["self"])), _width(a["width"], "a width")),
    "join": lambda a: _join_size(a.get("self", a.get("d", "")), a["iterable"] if "iterable" in a else a["value"]),
    "indent": lambda a: len(_text(a["s"])) + (_text(a["s"]).count("\n") + 1) * _width(a["width"], "an indent"),
    "wordwrap": lambda a: _wrapped_size(_text(a["s"]), a["width"], a["wrapstring"]),
    "batch": lambda a: _width(a["linecount"], "a batch size"),
    "slice": lambda a: _width(a["slices"], "a number of slices"),
}
_STR_METHODS = {"replace", "expandtabs", "center", "ljust", "rjust", "zfill", "join"}
_UNSAFE_STR_METHODS = {"translate", "maketrans"}  # a table can map each character to a long text


def _predict(name: str, function: _Function[object], args: tuple[object, ...], kwargs: Mapping[str, object]) -> None:
    arguments = _arguments(function, args, kwargs)
    if arguments is not None and not (name == "join" and arguments.get("attribute") is not None):
        _bounded(_PREDICTIONS[name](arguments), f"'{name}'")


def _materialised(args: tuple[object, ...], index: int) -> tuple[object, ...]:
    """``args`` with the iterable at ``index`` read into a list (a generator is read twice)."""
    if len(args) <= index:
        return args
    try:
        items = list(args[index])  # type: ignore[call-overload]  # anything list() takes, the sequence protocol included
    except TypeError:  # not iterable: the call reports it
        return args
    return (*args[:index], items, *args[index + 1 :])


def _guarded_filter(name: str, function: _Function[object]) -> _Function[object]:
    first = 1 if _PassArg.from_obj(function) is not None else 0  # a context or environment comes first

    @functools.wraps(function)
    def guarded(*args: object, **kwargs: object) -> object:
        _budget().step()
        if name == "join":
            args = _materialised(args, first)
        if name == "format" and len(args) > first:
            _check_percent_format(args[first], tuple(args[first + 1 :]) or tuple(kwargs.values()))
        if name in _PREDICTIONS:
            _predict(name, function, args, kwargs)
        return _checked(function(*args, **kwargs), f"the result of filter '{name}'")

    return guarded


class _Guard(NodeTransformer):
    """Route every loop's iterable, output, ``~`` and slice through the budget."""

    # generic_visit transforms the children in place and returns ``node`` itself.
    def visit_For(self, node: nodes.For) -> nodes.For:
        self.generic_visit(node)
        node.iter = _call("guard_iter", node.iter)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Output:
        self.generic_visit(node)
        node.nodes = [_call("guard_output", child) for child in node.nodes]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Call:
        self.generic_visit(node)
        return _call("guard_concat", nodes.List(node.nodes, lineno=node.lineno))

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        self.generic_visit(node)  # Jinja compiles a slice without the sandbox's getitem
        return _call("guard_value", node) if isinstance(node.arg, nodes.Slice) else node


def _call(method: str, argument: nodes.Node) -> nodes.Call:
    lineno = argument.lineno
    return nodes.Call(nodes.EnvironmentAttribute(method, lineno=lineno), [argument], [], None, None, lineno=lineno)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """See the module docstring."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)
        self.filters.pop("random", None)
        self.globals.pop("lipsum", None)
        self.filters = {name: _guarded_filter(name, function) for name, function in self.filters.items()}

    def is_safe_attribute(self, obj: object, attr: str, value: object) -> bool:
        if isinstance(obj, str) and attr in _UNSAFE_STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context: Context, operator: str, left: object, right: object) -> object:
        _budget().step()
        _check_binop(operator, left, right)
        return _checked(self.binop_table[operator](left, right), f"the result of '{operator}'")

    def call(self, context: Context, obj: object, /, *args: object, **kwargs: object) -> object:
        _budget().step()
        name = getattr(obj, "__name__", "a call")
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, str) and name in _STR_METHODS:
            if name == "join":
                args = _materialised(args, 0)
            _predict(name, getattr(str, name), (owner, *args), kwargs)
        return _checked(super().call(context, obj, *args, **kwargs), f"the result of '{name}'")

    def getitem(self, obj: object, argument: object) -> object:
        return _checked(super().getitem(obj, argument), "a slice")

    def wrap_str_format(self, value: object) -> _Function[str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        # jinja wraps only the format and format_map methods of a str
        assert isinstance(value, types.MethodType | types.BuiltinMethodType) and isinstance(value.__self__, str)
        text, is_map = value.__self__, value.__name__ == "format_map"

        def bounded(*args: object, **kwargs: object) -> str:
            _check_brace_format(text, () if is_map else args, args[0] if is_map and args else kwargs)
            return _checked(wrapped(*args, **kwargs), "the result of 'format'")

        return functools.update_wrapper(bounded, value)

    def guard_iter(self, iterable: Iterable[ValueT]) -> Iterator[ValueT]:
        budget = _budget()
        for item in iterable:
            budget.step()
            yield item

    def guard_value(self, value: ValueT) -> ValueT:
        _budget().step()
        return _checked(value, "a slice")

    def guard_output(self, value: object) -> str:
        _budget().step()
        return _checked(str(value), "an output")

    def guard_concat(self, parts: list[object]) -> str:
        _budget().step()
        texts = [str(part) for part in parts]
        _bounded(sum(map(len, texts)), "a '~' concatenation")
        return _checked("".join(texts), "a '~' concatenation")


_ENVIRONMENT = BoundedSandbox()

# Methods of lists, dicts, sets and deques that change them (what ImmutableSandboxedEnvironment
# refuses), found in the parsed template so that ``tasks validate`` refuses it before a run.
MUTATING_METHODS = frozenset({
    "append", "appendleft", "clear", "difference_update", "discard", "extend", "extendleft", "insert",
    "intersection_update", "pop", "popitem", "popleft", "remove", "reverse", "rotate", "setdefault", "sort",
    "symmetric_difference_update", "update", "add",
})


def refused_attributes(template: nodes.Template) -> list[str]:
    """Attributes the template reaches (``x.name`` or ``x|attr('name')``) that rendering would
    refuse: methods that mutate, private names and the str methods the sandbox blocks."""
    found = set()
    for node in template.find_all((nodes.Getattr, nodes.Filter)):
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args and isinstance(node.args[0], nodes.Const):
            name = str(node.args[0].value)
        else:
            continue
        if name.startswith("_") or name in MUTATING_METHODS or name in _UNSAFE_STR_METHODS:
            found.add(name)
    return sorted(found)


def parse_template(template: str) -> nodes.Template:
    """The parsed template (a syntax error raises ``jinja2.TemplateSyntaxError``)."""
    return _ENVIRONMENT.parse(template)


@functools.lru_cache(maxsize=256)
def compile_template(template: str) -> Template:
    """The compiled, guarded template that ``render_bounded`` runs (``tasks validate`` compiles
    every template of a task with it, so a template that cannot compile never reaches a run)."""
    return _ENVIRONMENT.from_string(_Guard().visit(parse_template(template)))


def render_bounded(template: str, context: Mapping[str, object]) -> str:
    """Render with a fresh budget; stop as soon as the output passes ``MAX_PROMPT_CHARS``."""
    token = _BUDGET.set(_Budget())
    try:
        chunks: list[str] = []
        size = 0
        for chunk in compile_template(template).generate(dict(context)):
            size += len(chunk)
            _bounded(size, "the rendered prompt")
            chunks.append(chunk)
        return "".join(chunks)
    finally:
        _BUDGET.reset(token)
