"""Command-line flags derived from the run-settings model (``evaluation.settings``).

Every field with ``cli`` metadata becomes a flag (``--field-name`` unless the field names
another), in an argument group per settings group, with the field's description as help. The
flags carry no parsing of their own: the raw strings go to ``RunSettings``, which validates
them exactly as it validates a sweep file, so a value is accepted or refused the same way
wherever it comes from. ``argparse.SUPPRESS`` keeps options that were not given out of the
namespace, so the model's defaults apply and nothing is recorded as given that was not.
"""

from __future__ import annotations

import argparse
import typing
from collections.abc import Iterable
from typing import Literal, TypedDict, TypeGuard

from pydantic import BaseModel

from evalharness.config import StrictModel, cli_flag, option_metadata

__all__ = ["add_settings_flags", "given_setting", "settings_values"]

_DEST = "settings__"  # namespace attributes of settings flags: settings__batching__batch_size


class _FlagArguments(TypedDict, total=False):
    """The keyword arguments of ``add_argument`` that settings flags use."""

    help: str | None
    default: str  # argparse.SUPPRESS
    action: Literal["store_true", "store_false", "append"]
    metavar: str
    required: bool


def _is_group(annotation: object) -> TypeGuard[type[StrictModel]]:
    return isinstance(annotation, type) and issubclass(annotation, StrictModel)


def _is_flag(annotation: object) -> bool:
    return annotation is bool


def _is_list(annotation: object) -> bool:
    return typing.get_origin(annotation) is list


def _flags(model: type[BaseModel], path: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], str, _FlagArguments]]:
    for name, field in model.model_fields.items():
        if _is_group(field.annotation):
            yield from _flags(field.annotation, (*path, name))
            continue
        meta = option_metadata(model, name)
        flag = cli_flag(model, name)
        if flag is None:
            continue
        kwargs: _FlagArguments = {"help": field.description, "default": argparse.SUPPRESS}
        if _is_flag(field.annotation):  # a setting on by default is turned off by its flag (--no-packing)
            kwargs["action"] = "store_false" if field.default is True else "store_true"
        else:
            kwargs["metavar"] = meta["metavar"] or name.upper()
            if _is_list(field.annotation):
                kwargs["action"] = "append"
        yield (*path, name), flag, kwargs


def add_settings_flags(
    parser: argparse.ArgumentParser,
    model: type[BaseModel],
    *,
    only: Iterable[str] | None = None,
    required: Iterable[str] = (),
    titles: dict[str, str] | None = None,
) -> None:
    """Add a flag per settings field of ``model`` (``only``: just these field names, for
    commands that run evaluations as part of their job; ``required``: names that must be given)."""
    chosen, needed = (set(only) if only is not None else None), set(required)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for path, flag, kwargs in _flags(model, ()):
        if chosen is not None and path[-1] not in chosen:
            continue
        target: argparse._ActionsContainer = parser
        if len(path) > 1:
            title = (titles or {}).get(path[0], path[0])
            target = groups.setdefault(path[0], parser.add_argument_group(title))
        if path[-1] in needed:
            kwargs = kwargs.copy()
            kwargs["required"] = True
            del kwargs["default"]
        target.add_argument(flag, dest=_DEST + "__".join(path), **kwargs)


def given_setting(args: argparse.Namespace, *path: str) -> object:
    """One setting as given on the command line (``given_setting(args, "loading", "model")``);
    None when it was not given."""
    return getattr(args, _DEST + "__".join(path), None)


def settings_values(args: argparse.Namespace) -> dict[str, object]:
    """The settings given on the command line, nested as the model's groups (only those given)."""
    values: dict[str, object] = {}
    for attribute, value in vars(args).items():
        if not attribute.startswith(_DEST):
            continue
        *groups, name = attribute[len(_DEST) :].split("__")
        holder = values
        for group in groups:
            nested = holder.setdefault(group, {})
            assert isinstance(nested, dict)  # only groups are set here, and each as a mapping
            holder = nested
        holder[name] = value
    return values
