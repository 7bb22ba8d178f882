"""The base of every configuration model, and the metadata that derives command-line flags
and run-record entries from a model's fields (``evalharness.evaluation.settings``)."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

__all__ = ["Location", "ModelT", "StrictModel", "cli_flag", "option", "option_metadata"]

Location = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)
Record = Literal["always", "if_set", "never"]


class StrictModel(BaseModel):
    """Base for every configuration model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def option(
    default: Any = ...,
    *,
    help: str,
    flag: str | None = None,
    metavar: str | None = None,
    cli: bool = True,
    record: Record = "always",
    **constraints: Any,
) -> Any:
    """A settings field with what the command line and the run record need to know about it:
    ``flag`` (default ``--field-name``), ``help``, ``metavar``, ``cli=False`` for fields set only
    from files or the API, and how the run record keeps it (``always``, ``if_set``: only when
    it differs from its default, ``never``). ``constraints`` are pydantic's (``ge``...)."""
    extra: JsonDict = {"flag": flag, "metavar": metavar, "cli": cli, "record": record}
    return Field(default, description=help, json_schema_extra=extra, **constraints)


def cli_flag(model: type[BaseModel], name: str) -> str | None:
    """The command-line flag of a field (``--field-name`` unless it names another); None for
    fields set only from files or the API."""
    meta = option_metadata(model, name)
    return (meta["flag"] or "--" + name.replace("_", "-")) if meta["cli"] else None


def option_metadata(model: type[BaseModel], name: str) -> dict[str, Any]:
    """The :func:`option` metadata of a field (defaults for plain fields)."""
    extra = model.model_fields[name].json_schema_extra
    values = extra if isinstance(extra, dict) else {}
    return {"flag": None, "metavar": None, "cli": True, "record": "always", **values}

