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
        import shutil
        import textwrap

        listed = ", ".join(f"{group} ({len(members)})" for group, members in sorted(groups.items()))
        width = shutil.get_terminal_size().columns  # $COLUMNS, the terminal, else 80
        print("\n" + textwrap.fill(f"groups: {listed}", width=width, subsequent_indent="  ", break_on_hyphens=False))
    return 0


def _show(args: argparse.Namespace) -> int:
    from evalharness.spec.catalog import TaskCatalog

    if args.render or getattr(args, "settings__loading__model", None) is not None:
        return _render(args)
    task = TaskCatalog(args.tasks_dir).load(args.name)
    print(f"# {task.name}  (version {task.version}, {task.spec_hash})  {task.path}")
    print(task.path.read_text(encoding="utf-8"), end="")
    return 0


def _render(args: argparse.Namespace) -> int:
    import json

    from evalharness.commands.render import print_rendered
    from evalharness.commands.settings_flags import given_setting, settings_values
    from evalharness.errors import UsageError
    from evalharness.evaluation.render import render_example
    from evalharness.evaluation.settings import RunSettings

    values = settings_values(args)
    if not args.render or given_setting(args, "loading", "model") is None:
        raise UsageError("tasks show: --render needs --model PATH (the prompts depend on the checkpoint's tokenizer and kind)")
    config = RunSettings(**values, tasks=[args.name], tasks_dirs=args.tasks_dir)
    rendered = render_example(config, args.name, args.example)
    if args.json:
        print(json.dumps(rendered.to_dict(), indent=2, ensure_ascii=False))
    else:
        print_rendered(rendered)
    return 0


# Settings that shape the requests of an example (``tasks show --render``): the model and how it
# is loaded, and the prompt overrides.
RENDER_SETTINGS = (
    "model", "model_kind", "device", "dtype", "device_map", "trust_remote_code", "tokenizer", "allow_random_weights",
    "allow_kind_mismatch", "base_model", "keep_adapter_unmerged", "model_args", "data_dir", "num_fewshot", "label_map",
    "max_new_tokens", "num_beams", "prompt_format", "system_prompt", "fewshot_as_multiturn", "strip_thinking", "seed",
)


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


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tasks = commands.add_parser("tasks", help="list, show and validate task specs")
    actions = tasks.add_subparsers(dest="tasks_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list built-in and user tasks and groups")
    add_tasks_dir(listing)
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="print a task spec, or (--render --model PATH) the exact requests of one example")
    show.add_argument("name")
    add_tasks_dir(show)
    show.add_argument(
        "--render", action="store_true",
        help="print what the model is asked for one example: prompts (in the run's prompt format), continuations, token ids",
    )
    show.add_argument("--example", metavar="ID", help="--render: this example id (default: the first)")
    show.add_argument("--json", action="store_true", help="--render: print the requests as JSON (exact strings and token ids)")
    from evalharness.commands.settings_flags import add_settings_flags
    from evalharness.evaluation.settings import RunSettings

    add_settings_flags(show, RunSettings, only=RENDER_SETTINGS, titles={"loading": "--render: the checkpoint", "prompt": "--render: prompt settings"})
    show.set_defaults(handler=_show)
    validate = actions.add_parser("validate", help="validate task files or folders")
    validate.add_argument("paths", nargs="+", metavar="PATH")
    validate.set_defaults(handler=_validate)
