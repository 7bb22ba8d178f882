"""Command-line interface. Thin: parse arguments, call the library, map errors to exit codes.

Exit codes: 0 success, 2 usage/spec/data/model/record errors (message, no traceback),
1 anything else (a bug: the traceback is shown). Each command lives in
``evalharness.commands.<name>``; heavy libraries are imported inside the handlers so
``evalharness --help`` and ``evalharness tasks list`` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from evalharness.commands import COMMANDS
from evalharness.errors import EvalHarnessError
from evalharness.version import __version__

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evalharness", description="Evaluate language-model checkpoints on declarative tasks."
    )
    parser.add_argument("--version", action="version", version=f"evalharness {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"evalharness.commands.{name}").register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except EvalHarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
