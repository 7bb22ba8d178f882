"""JSON values: the one type of what is read from, or built to be written to, a JSON or YAML file.

A file's content is pydantic's recursive ``JsonValue`` and is narrowed where it is read, by the
``expect_*`` helpers below: a value of the wrong JSON type is refused with the caller's error
class and the place it was read from (file, field, example), never passed on to fail later or to
be coerced. What evalharness builds to write (record sections, published files, report contexts)
is a ``JSONObject``. Functions that only read a mapping take ``Mapping[str, JsonValue]`` (or
``Mapping[str, object]``), which also accepts a ``dict[str, float]`` (a ``dict`` is invariant).
"""

from __future__ import annotations

import math
from typing import SupportsFloat, SupportsIndex, TypeAlias

from pydantic import JsonValue

__all__ = [
    "JSONArray",
    "JSONObject",
    "JsonValue",
    "expect_array",
    "expect_float",
    "expect_int",
    "expect_object",
    "expect_str",
    "finite_float_of",
    "finite_number",
    "optional_object",
    "float_of",
    "json_type_name",
]

JSONObject: TypeAlias = dict[str, JsonValue]
JSONArray: TypeAlias = list[JsonValue]


def json_type_name(value: object) -> str:
    """The JSON name of a value's type, for messages ("an object", "a string", "null"...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__} (not JSON)"


def _refuse(value: object, expected: str, where: str, error: type[Exception]) -> Exception:
    return error(f"{where}: expected {expected}, got {json_type_name(value)}")


def expect_object(value: object, where: str, *, error: type[Exception]) -> JSONObject:
    """``value`` as a JSON object (keys are text), else ``error`` naming ``where``."""
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise _refuse(value, "an object", where, error)
    return value


def optional_object(value: object, where: str, *, error: type[Exception]) -> JSONObject:
    """:func:`expect_object`, with an absent value (``None``) read as empty; any other value that
    is not an object (``[]``, ``""``, ``0``) is refused, not taken for "nothing"."""
    return {} if value is None else expect_object(value, where, error=error)


def expect_array(value: object, where: str, *, error: type[Exception]) -> JSONArray:
    """``value`` as a JSON array, else ``error`` naming ``where``."""
    if not isinstance(value, list):
        raise _refuse(value, "an array", where, error)
    return value


def expect_str(value: object, where: str, *, error: type[Exception]) -> str:
    """``value`` as text, else ``error`` naming ``where``."""
    if not isinstance(value, str):
        raise _refuse(value, "a string", where, error)
    return value


def expect_int(value: object, where: str, *, error: type[Exception]) -> int:
    """``value`` as an integer (a boolean is not one), else ``error`` naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(value, "an integer", where, error)
    return value


def expect_float(value: object, where: str, *, error: type[Exception]) -> float:
    """``value`` as a number (a boolean is not one), else ``error`` naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _refuse(value, "a number", where, error)
    return float(value)


def finite_number(value: object) -> float | None:
    """A finite JSON number as a float; None for anything else (null, NaN, text, a boolean):
    how exports and reports read a score that may be undefined or missing."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def float_of(value: object) -> float | None:
    """``float(value)`` for anything ``float()`` takes (a number, a numpy or pandas scalar,
    numeric text); None for anything else. Plain numbers take a fast path: the protocol check
    costs microseconds per value, which a column of 100,000 numbers would notice."""
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, (str, bytes, SupportsFloat, SupportsIndex)):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def finite_float_of(value: object) -> float | None:
    """:func:`float_of` when finite, else None (a table cell that may be empty, NaN or text)."""
    number = float_of(value)
    return number if number is not None and math.isfinite(number) else None
