"""``evalharness tasks list|show|validate``."""

from __future__ import annotations

import argparse
import sys

from evalharness.commands.common import add_tasks_dir


def _list(args: argparse.Namespace) -> int:
    from evalharness.spec.catalog import TaskCatalog

    catalog = TaskCatalog(args.tasks_dir)
    for name in catalog.names():
        print(name)
    groups = catalog.groups()
    if groups:
        print("\ngroups: " + ", ".join(f"{group} ({len(members)})" for group, members in sorted(groups.items())))
    return 0


def _show(args: argparse.Namespace) -> int:
    from evalharness.spec.catalog import TaskCatalog

    task = TaskCatalog(args.tasks_dir).load(args.name)
    print(f"# {task.name}  (version {task.version}, {task.spec_hash})  {task.path}")
    print(task.path.read_text(encoding="utf-8"), end="")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from evalharness.errors import EvalHarnessError
    from evalharness.metrics.registry import TRUST_TASK_CODE_FLAG, task_code
    from evalharness.spec.catalog import validate_paths
    from evalharness.spec.loader import load_task

    failures = 0
    for path, error in validate_paths(args.paths):
        needs: list[str] = []
        if error is None:
            try:  # valid, but a task whose metrics run code runs only with the flag
                needs = task_code(load_task(path, path.stem))
            except EvalHarnessError as exc:
                error = str(exc)
        if error is None:
            print(f"ok      {path}")
            for line in needs:
                print(f"        needs {TRUST_TASK_CODE_FLAG}: {line}")
        else:
            failures += 1
            print(f"invalid {error}", file=sys.stderr)
    if failures:
        print(f"{failures} invalid task file(s)", file=sys.stderr)
        return 2
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    tasks = commands.add_parser("tasks", help="list, show and validate task specs")
    actions = tasks.add_subparsers(dest="tasks_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list built-in and user tasks and groups")
    add_tasks_dir(listing)
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="print a task spec")
    show.add_argument("name")
    add_tasks_dir(show)
    show.set_defaults(handler=_show)
    validate = actions.add_parser("validate", help="validate task files or folders")
    validate.add_argument("paths", nargs="+", metavar="PATH")
    validate.set_defaults(handler=_validate)
