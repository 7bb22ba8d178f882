"""``evalharness run``: evaluate a checkpoint on tasks and write a run directory."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from evalharness.commands.publish import add_log_to
from evalharness.commands.settings_flags import add_settings_flags, settings_values
from evalharness.evaluation.settings import RunSettings


def _run(args: argparse.Namespace) -> int:
    from evalharness.commands.display import print_run
    from evalharness.commands.publish import check_log_to, log_after
    from evalharness.evaluation.runner import RunConfig, run_evaluation
    from evalharness.execution.distributed import launch_environment

    config = RunConfig(**settings_values(args))
    check_log_to(args)  # a missing tracker package is refused before the evaluation, not after
    result = run_evaluation(config, progress=lambda message: print(message, file=sys.stderr))
    if not launch_environment().primary:  # torchrun / accelerate launch: rank 0 reports
        return 0
    if result.commit is not None:
        print(result.commit.describe(), file=sys.stderr)
    if args.json:
        print(json.dumps(result.record.model_dump(mode="json"), indent=2))
    else:
        print_run(result.record, result.run_dir)
    log_after(args, Path(result.run_dir))
    return 0


# Titles of the settings groups on ``run --help``.
GROUP_TITLES = {
    "loading": "checkpoint (what is loaded and how; each opt-in is recorded)",
    "backend": "backend (where the model runs)",
    "batching": "batching (speed and memory, never the answers)",
    "caching": "prediction cache",
    "prompt": "prompt overrides (refused when no task of the run uses them, recorded as not applied for the tasks that do not)",
    "statistics": "statistics",
}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("run", help="evaluate a checkpoint on tasks and write a run directory")
    add_settings_flags(run, RunSettings, required=("model", "tasks"), titles=GROUP_TITLES)
    run.add_argument("--json", action="store_true", help="print the run record as JSON instead of a table")
    add_log_to(run)
    run.set_defaults(handler=_run)
