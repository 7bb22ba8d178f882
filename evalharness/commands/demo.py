"""``evalharness demo``: the whole pipeline offline on tiny models and synthetic data."""

from __future__ import annotations

import argparse
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    from evalharness.testing.demo import run_demo

    run_demo(Path(args.output))
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser("demo", help="build tiny models and synthetic data, and evaluate them end to end")
    demo.add_argument("--output", default="demo-output", help="folder for the demo's models, data and runs")
    demo.set_defaults(handler=_demo)
