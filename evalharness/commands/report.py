"""``evalharness report``: one self-contained HTML report of a run, optionally vs a baseline."""

from __future__ import annotations

import argparse
from pathlib import Path


def _report(args: argparse.Namespace) -> int:
    from evalharness.report import write_report

    path = write_report(args.run, args.output, baseline=args.baseline)
    print(f"wrote {path}")
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser("report", help="write a self-contained HTML report of a run")
    report.add_argument("run", type=Path, metavar="RUN_DIR", help="the run directory to report on")
    report.add_argument("--baseline", type=Path, metavar="RUN_DIR", help="compare with this run")
    report.add_argument("--output", type=Path, required=True, metavar="FILE.html", help="the HTML file to write")
    report.set_defaults(handler=_report)
