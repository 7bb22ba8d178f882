"""Argument helpers shared by several commands."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = [
    "add_tasks_dir",
    "add_trust_task_code",
    "non_negative_int",
    "positive_int",
    "seed",
    "split_names",
]


def add_tasks_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tasks-dir", action="append", default=[], metavar="DIR", help="extra folder of task YAML files (repeatable)"
    )


def add_trust_task_code(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust-task-code", action="store_true",
        help="allow code that task files reference to run (an hf_evaluate metric's evaluate module); recorded",
    )


def split_names(values: Sequence[str]) -> list[str]:
    """``--tasks a,b --tasks c`` -> ``[a, b, c]``."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not an integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not an integer") from None
    if number < 0:
        raise argparse.ArgumentTypeError("must be at least 0")
    return number


def seed(value: str) -> int:
    """A seed every consumer accepts (0 .. 2**32 - 1), refused before anything runs."""
    from evalharness.seeds import MAX_SEED

    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not an integer") from None
    if not 0 <= number <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{number} is not between 0 and {MAX_SEED} (2**32 - 1)")
    return number
