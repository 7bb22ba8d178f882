"""Command-line interface. Thin: parse arguments, call the library, map errors to exit codes.

Exit codes: 0 success, 2 usage/spec/data/model/record errors (message, no traceback),
1 anything else (a bug: the traceback is shown). Heavy libraries are imported inside the
handlers so ``evalharness --help`` and ``evalharness tasks list`` stay fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from evalharness.errors import EvalHarnessError, UsageError

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]


def _parse_label_map(value: str | None) -> dict[str, str] | None:
    """``A=b,C=d`` or a JSON/YAML file mapping model labels to task labels."""
    if value is None:
        return None
    path = Path(value)
    if path.is_file():
        from evalharness.spec.loader import load_yaml

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


def _split_tasks(values: Sequence[str]) -> list[str]:
    return [name for value in values for name in value.split(",") if name.strip()]


def _batch_size(value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not an integer") from None
    if size < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return size


# -- tasks -------------------------------------------------------------------------------
def _tasks_list(args: argparse.Namespace) -> int:
    from evalharness.catalog import TaskCatalog

    catalog = TaskCatalog(args.tasks_dir)
    for name in catalog.names():
        print(name)
    groups = catalog.groups()
    if groups:
        print("\ngroups: " + ", ".join(f"{group} ({len(members)})" for group, members in sorted(groups.items())))
    return 0


def _tasks_show(args: argparse.Namespace) -> int:
    from evalharness.catalog import TaskCatalog

    catalog = TaskCatalog(args.tasks_dir)
    task = catalog.load(args.name)
    print(f"# {task.name}  (version {task.version}, {task.spec_hash})  {task.path}")
    print(task.path.read_text(encoding="utf-8"), end="")
    return 0


def _tasks_validate(args: argparse.Namespace) -> int:
    from evalharness.catalog import validate_paths

    failures = 0
    for path, error in validate_paths(args.paths):
        if error is None:
            print(f"ok      {path}")
        else:
            failures += 1
            print(f"invalid {error}", file=sys.stderr)
    if failures:
        print(f"{failures} invalid task file(s)", file=sys.stderr)
        return 2
    return 0


# -- run ---------------------------------------------------------------------------------
def _run(args: argparse.Namespace) -> int:
    from evalharness.display import print_run
    from evalharness.runner import RunConfig, run_evaluation

    config = RunConfig(
        model=args.model,
        tasks=_split_tasks(args.tasks),
        output=args.output,
        data_dir=args.data_dir,
        tasks_dirs=args.tasks_dir,
        limit=args.limit,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
        model_kind=args.model_kind,
        label_map=_parse_label_map(args.label_map),
        trust_remote_code=args.trust_remote_code,
        seed=args.seed,
    )
    result = run_evaluation(config, progress=lambda message: print(message, file=sys.stderr))
    if args.json:
        print(json.dumps(result.record.model_dump(mode="json"), indent=2))
    else:
        print_run(result.record, result.run_dir)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from evalharness.demo import run_demo

    run_demo(Path(args.output))
    return 0


# -- parser ------------------------------------------------------------------------------
def _add_tasks_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks-dir", action="append", default=[], metavar="DIR", help="extra folder of task YAML files (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evalharness", description="Evaluate language-model checkpoints on declarative tasks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tasks = commands.add_parser("tasks", help="list, show and validate task specs")
    task_commands = tasks.add_subparsers(dest="tasks_command", required=True, metavar="ACTION")
    listing = task_commands.add_parser("list", help="list built-in and user tasks and groups")
    _add_tasks_dir(listing)
    listing.set_defaults(handler=_tasks_list)
    show = task_commands.add_parser("show", help="print a task spec")
    show.add_argument("name")
    _add_tasks_dir(show)
    show.set_defaults(handler=_tasks_show)
    validate = task_commands.add_parser("validate", help="validate task files or folders")
    validate.add_argument("paths", nargs="+", metavar="PATH")
    validate.set_defaults(handler=_tasks_validate)

    run = commands.add_parser("run", help="evaluate a checkpoint on tasks and write a run directory")
    run.add_argument("--model", required=True, help="checkpoint directory or Hugging Face Hub id")
    run.add_argument("--tasks", required=True, action="append", help="task names or groups, comma-separated")
    run.add_argument("--data-dir", help="folder with local evaluation data (default: $EVALHARNESS_DATA_DIR)")
    run.add_argument("--output", type=Path, help="run directory to write (default: runs/MODEL/TIMESTAMP)")
    run.add_argument("--limit", type=int, help="evaluate only the first N examples of each task")
    run.add_argument("--batch-size", type=_batch_size, default=32)
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    run.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16")
    run.add_argument("--model-kind", help="override the kind detected from config.architectures")
    run.add_argument("--label-map", help="MODEL_LABEL=TASK_LABEL,... or a YAML/JSON file")
    run.add_argument("--trust-remote-code", action="store_true", help="allow code shipped with the checkpoint to run")
    run.add_argument("--seed", type=int, default=1234, help="seed for bootstrap and few-shot sampling")
    run.add_argument("--json", action="store_true", help="print the run record as JSON instead of a table")
    _add_tasks_dir(run)
    run.set_defaults(handler=_run)

    demo = commands.add_parser("demo", help="build tiny models and synthetic data, and evaluate them end to end")
    demo.add_argument("--output", default="demo-output", help="folder for the demo's models, data and runs")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
