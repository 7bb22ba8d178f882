"""``evalharness rescore RUN_DIR``: recompute metrics from stored predictions (no model)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evalharness.commands.common import add_tasks_dir, add_trust_task_code, split_names


def _rescore(args: argparse.Namespace) -> int:
    from evalharness.commands.display import print_run
    from evalharness.external.rescore import rescore_run

    record = rescore_run(
        args.run_dir, tasks=split_names(args.tasks) if args.tasks else None, tasks_dirs=args.tasks_dir, data_dir=args.data_dir,
        trust_task_code=args.trust_task_code,
    )
    print(f"rescored {args.run_dir}", file=sys.stderr)
    print_run(record, args.run_dir)
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rescore = commands.add_parser(
        "rescore",
        help="recompute a run's metrics from its stored predictions, without loading the model",
        description="Scores samples/<task>.jsonl again with the tasks' current metrics (e.g. after adding one to the YAML).",
    )
    rescore.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    rescore.add_argument("--tasks", action="append", help="only these tasks, comma-separated (default: all)")
    rescore.add_argument("--data-dir", help="folder with local evaluation data (default: the run's)")
    add_trust_task_code(rescore)
    add_tasks_dir(rescore)
    rescore.set_defaults(handler=_rescore)
