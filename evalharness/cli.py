"""Command-line interface. Thin: parse arguments, call the library, map errors to exit codes.

Exit codes:

- 0 success;
- 2 usage/spec/data/model/record errors, and faults of the machine the user can fix (a full
  disk, a read-only or missing output location, a file where a directory should be): a
  message naming the file, no traceback;
- 130 Ctrl-C, 143 SIGTERM (how Slurm and Kubernetes pre-empt jobs): handled alike, with a
  message saying what was kept and how to resume;
- 1 anything else (a bug: the traceback is shown).

Each command lives in ``evalharness.commands.<name>``; heavy libraries are imported inside
the handlers so ``evalharness --help`` and ``evalharness tasks list`` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from evalharness.commands import COMMANDS
from evalharness.errors import EvalHarnessError, Interrupted, environment_fault
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


def _terminate(signal_number: int, frame: FrameType | None) -> None:
    raise Interrupted(signal_number)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C (caches closed, locks released, temp files removed)."""
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave signals to whoever owns it
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted(exc: KeyboardInterrupt) -> int:
    number = getattr(exc, "signal_number", signal.SIGINT)
    detail = getattr(exc, "detail", "") or "nothing was written that is not complete; run the same command again"
    print(f"interrupted by {signal.Signals(number).name}: {detail}", file=sys.stderr)
    return 128 + int(number)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with _sigterm_as_interrupt():
        try:
            return args.handler(args)
        except EvalHarnessError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt as exc:
            return _interrupted(exc)
        except OSError as exc:
            fault = environment_fault(exc)
            if fault is None:
                raise
            print(f"error: {fault}", file=sys.stderr)
            return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
