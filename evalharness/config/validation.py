"""Validation with ``file:line: field: problem`` messages and a "did you mean" for misspelt keys."""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from evalharness.config.models import Location, ModelT
from evalharness.config.yamlfile import parse_yaml, read_config_text
from evalharness.errors import SpecError, did_you_mean

__all__ = ["MAX_PROBLEMS", "LoadedConfig", "field_path", "load_config", "validate_model", "where"]

MAX_PROBLEMS = 20  # validation problems listed in one message


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


def _models_in(annotation: object) -> list[type[BaseModel]]:
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


def _describe(error: ErrorDetails, model: type[BaseModel], loc: Location) -> str:
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
    data: object,
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
    path: str | os.PathLike[str], model: type[ModelT], *, what: str = "", overrides: Mapping[str, object] | None = None
) -> LoadedConfig[ModelT]:
    """Read, bound, parse and validate one configuration file.

    ``what`` names the file kind for the "not a mapping" message (e.g. "a gate policy");
    ``overrides`` replace top-level keys (command-line options over a sweep file).
    """
    path = Path(path)
    data, lines = parse_yaml(read_config_text(path), str(path))
    if not isinstance(data, dict):
        kind = what or f"a {model.__name__}"
        shown = "an empty file" if data is None else type(data).__name__
        raise SpecError(f"{path}: top level: expected a mapping ({kind}), got {shown}")
    given: dict[object, object] = {key: value for key, value in data.items()}
    if overrides:
        given.update((key, value) for key, value in overrides.items() if value is not None)
    return LoadedConfig(path, validate_model(model, given, str(path), lines=lines), lines)


