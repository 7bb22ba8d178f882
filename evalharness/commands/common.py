"""Argument helpers shared by several commands."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from evalharness.errors import UsageError

__all__ = [
    "add_tasks_dir",
    "add_trust_and_checkpoint_overrides",
    "add_trust_task_code",
    "non_negative_int",
    "parse_label_map",
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


def add_trust_and_checkpoint_overrides(parser: argparse.ArgumentParser) -> None:
    """The opt-ins of ``run`` and ``sweep``: each lets through what is refused by default, and
    each is recorded in the run record."""
    add_trust_task_code(parser)
    parser.add_argument(
        "--tokenizer", metavar="DIR",
        help="load the tokenizer from this directory (or hub id) instead of the checkpoint; recorded with its fingerprint",
    )
    parser.add_argument(
        "--allow-random-weights", action="store_true",
        help="evaluate even though the model class had to initialise weights randomly (missing from the checkpoint); recorded",
    )
    parser.add_argument(
        "--allow-kind-mismatch", action="store_true",
        help="evaluate even though --model-kind (or the weights) contradict config.json's architectures; recorded",
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


def parse_label_map(value: str | None) -> dict[str, str] | None:
    """``A=b,C=d`` or a JSON/YAML file mapping model labels to task labels."""
    if value is None:
        return None
    path = Path(value)
    if path.is_file():
        from evalharness.config import load_yaml

        data = load_yaml(path)
        if not isinstance(data, dict):
            raise UsageError(f"--label-map {path}: expected a mapping of model label -> task label")
        return {str(key): str(item) for key, item in data.items()}
    mapping = {}
    for pair in value.split(","):
        key, sep, target = pair.partition("=")
        if not sep or not key.strip() or not target.strip():
            raise UsageError(f"--label-map: '{pair}' is not MODEL_LABEL=TASK_LABEL")
        mapping[key.strip()] = target.strip()
    return mapping
