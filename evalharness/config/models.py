"""The base of every configuration model, and the metadata that derives command-line flags
and run-record entries from a model's fields (``evalharness.evaluation.settings``)."""

from __future__ import annotations

from typing import Literal, TypedDict, TypeVar, Unpack

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo

__all__ = ["Location", "ModelT", "OptionMetadata", "StrictModel", "cli_flag", "option", "option_metadata", "required_option"]

Location = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)
DefaultT = TypeVar("DefaultT")
Record = Literal["always", "if_set", "never"]
_RECORD_MODES: dict[str, Record] = {"always": "always", "if_set": "if_set", "never": "never"}


class Constraints(TypedDict, total=False):
    """The pydantic field constraints settings use (``Field(ge=...)``)."""

    ge: float
    gt: float
    le: float
    lt: float


class OptionMetadata(TypedDict):
    """What :func:`option` declares about a field, beyond pydantic's own."""

    flag: str | None
    metavar: str | None
    cli: bool
    record: Record


class StrictModel(BaseModel):
    """Base for every configuration model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def option(
    default: DefaultT,
    *,
    help: str,
    flag: str | None = None,
    metavar: str | None = None,
    cli: bool = True,
    record: Record = "always",
    **constraints: Unpack[Constraints],
) -> DefaultT:
    """A settings field with what the command line and the run record need to know about it:
    ``flag`` (default ``--field-name``), ``help``, ``metavar``, ``cli=False`` for fields set only
    from files or the API, and how the run record keeps it (``always``, ``if_set``: only when
    it differs from its default, ``never``). ``constraints`` are pydantic's (``ge``...). A
    required field (no default) is declared with :func:`required_option` instead."""
    return Field(default, description=help, json_schema_extra=_extra(flag, metavar, cli, record), **constraints)


def required_option(
    *,
    help: str,
    flag: str | None = None,
    metavar: str | None = None,
    cli: bool = True,
    record: Record = "always",
    **constraints: Unpack[Constraints],
) -> FieldInfo:
    """:func:`option` for a field without a default, in its annotation:
    ``model: Annotated[str, required_option(help=...)]``."""
    info: FieldInfo = Field(description=help, json_schema_extra=_extra(flag, metavar, cli, record), **constraints)
    return info


def _extra(flag: str | None, metavar: str | None, cli: bool, record: Record) -> JsonDict:
    return {"flag": flag, "metavar": metavar, "cli": cli, "record": record}


def cli_flag(model: type[BaseModel], name: str) -> str | None:
    """The command-line flag of a field (``--field-name`` unless it names another); None for
    fields set only from files or the API."""
    meta = option_metadata(model, name)
    return (meta["flag"] or "--" + name.replace("_", "-")) if meta["cli"] else None


def option_metadata(model: type[BaseModel], name: str) -> OptionMetadata:
    """The :func:`option` metadata of a field (defaults for plain fields)."""
    extra = model.model_fields[name].json_schema_extra
    values = extra if isinstance(extra, dict) else {}
    flag, metavar, cli, record = values.get("flag"), values.get("metavar"), values.get("cli", True), values.get("record")
    return {
        "flag": flag if isinstance(flag, str) else None,
        "metavar": metavar if isinstance(metavar, str) else None,
        "cli": cli if isinstance(cli, bool) else True,
        "record": _RECORD_MODES.get(record, "always") if isinstance(record, str) else "always",
    }

