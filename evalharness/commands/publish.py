"""``evalharness publish``: export a run for other tools (model card, Every Eval Ever, details
dataset, experiment trackers). Exports read run records only; they never load a model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from evalharness.commands.common import add_tasks_dir
from evalharness.errors import UsageError


def _model_card(args: argparse.Namespace) -> int:
    from evalharness.publish.common import parse_assignments
    from evalharness.publish.hub import (
        hub_offline,
        push_files,
        remote_model_card,
        unreachable,
    )
    from evalharness.publish.model_card import CardOptions, publish_model_card

    if args.push and not args.repo_id:
        raise UsageError("--push needs --repo-id ORG/NAME (the model repo to open the pull request on)")
    if args.source_name and not args.source_url:
        raise UsageError("--source-name needs --source-url (the Hub requires a link for a named source)")
    options = CardOptions(
        output=args.output, model_name=args.model_name or args.repo_id,
        datasets=parse_assignments(args.dataset, "--dataset"), metrics=parse_assignments(args.metric, "--metric"),
        source_url=args.source_url, source_name=args.source_name, allow_partial=args.allow_partial, tasks_dirs=args.tasks_dir,
    )
    base = remote_model_card(args.repo_id, args.output) if args.push and not hub_offline() else None
    result = publish_model_card(args.run, options, base_card=base)
    for row in result.rows:
        print(f"{row.task}: {row.metric} = {row.value:g} -> {row.dataset_id} ({row.task_id}), {row.file}")
    for task, reason in result.skipped.items():
        print(f"not published: {task}: {reason}", file=sys.stderr)
    print(f"wrote {result.output / 'README.md'} and {len(result.rows)} file(s) in {result.output / '.eval_results'}", file=sys.stderr)
    if args.push:
        if hub_offline():
            raise unreachable(args.output, args.repo_id, "model", "the Hub is unreachable (HF_HUB_OFFLINE=1)")
        url = push_files(args.output, result.files, repo_id=args.repo_id, repo_type="model",
                         message=f"Add evaluation results (evalharness run {result.run_id})")
        print(f"opened {url}")
    return 0


def _eee(args: argparse.Namespace) -> int:
    from evalharness.publish.common import PublishError
    from evalharness.publish.eee import EeeOptions, export_eee, summary
    from evalharness.publish.eee_check import load_schemas, schema_problems

    schemas = load_schemas(args.schemas) if args.schemas else None
    result = export_eee(args.run, EeeOptions(
        output=args.output, collection=args.collection, model_id=args.model_id, developer=args.developer,
        organization=args.organization, relationship=args.relationship, availability=args.availability,
        instances=not args.no_instances, tasks_dirs=args.tasks_dir,
    ))
    if schemas is not None:
        problems = schema_problems(result.aggregate, schemas, result.samples)
        if problems:
            raise PublishError(f"{result.aggregate}: does not validate against {args.schemas}: " + "; ".join(problems[:5]))
    print(json.dumps(summary(result), indent=2, ensure_ascii=False))
    return 0


def _details(args: argparse.Namespace) -> int:
    from evalharness.publish.details import MANIFEST, export_details
    from evalharness.publish.hub import push_files

    result = export_details(args.run, args.output)
    for task, path in result.files.items():
        print(f"{task}: {path}")
    print(f"split {result.split} (and latest); card {result.card}", file=sys.stderr)
    if args.push:
        files = [p for p in sorted(result.output.rglob("*")) if p.is_file() and not p.name.startswith(".")]
        url = push_files(result.output, files, repo_id=args.push, repo_type="dataset", message=f"Add evalharness details ({MANIFEST})")
        print(f"opened {url}")
    return 0


def _log(args: argparse.Namespace) -> int:
    from evalharness.publish.targets import check_tracker
    from evalharness.publish.trackers import log_run

    for tracker in args.to:
        check_tracker(tracker)
    for tracker in args.to:
        print(log_run(args.run, tracker))
    return 0


def add_log_to(parser: argparse.ArgumentParser) -> None:
    """``--log-to`` for commands that write a run record (checked before any work starts)."""
    from evalharness.publish.targets import parse_log_to

    parser.add_argument(
        "--log-to", action="append", default=[], type=parse_log_to, metavar="TRACKER",
        help="after writing the record, log it to mlflow[:URI] (URI or folder; file store), wandb[:PROJECT] or trackio[:PROJECT]",
    )


def check_log_to(args: argparse.Namespace) -> None:
    from evalharness.publish.targets import check_tracker

    for tracker in args.log_to:
        check_tracker(tracker)


def log_after(args: argparse.Namespace, run_dir: Path) -> None:
    """Log the written record; a tracker failure says the record itself is safe."""
    from evalharness.publish.common import PublishError
    from evalharness.publish.trackers import log_run

    for tracker in args.log_to:
        try:
            print(log_run(run_dir, tracker), file=sys.stderr)
        except PublishError as exc:
            raise PublishError(
                f"{exc} -- the run record is complete at {run_dir}; log it again with "
                f"'evalharness publish log {run_dir} --to {tracker}'"
            ) from None


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    publish = commands.add_parser("publish", help="export a run: model card, Every Eval Ever, details dataset, trackers")
    kinds = publish.add_subparsers(dest="destination", required=True, metavar="DESTINATION")

    card = kinds.add_parser("model-card", help="Hub model-card results (.eval_results/*.yaml and model-index)")
    card.add_argument("run", type=Path, metavar="RUN_DIR")
    card.add_argument("--output", type=Path, required=True, metavar="DIR", help="folder to write README.md and .eval_results/ into")
    card.add_argument("--dataset", action="append", default=[], metavar="TASK=ID[:TASK_ID]",
                      help="Hub benchmark dataset (and its eval.yaml task id) of a task (default: the task spec's data.hub)")
    card.add_argument("--metric", action="append", default=[], metavar="TASK=KEY", help="metric to publish for a task (default: its first)")
    card.add_argument("--model-name", help="model name in the model-index (default: --repo-id, else the run's model name)")
    card.add_argument("--source-url", help="link shown as each result's source (e.g. the details dataset)")
    card.add_argument("--source-name", help="display name of --source-url")
    card.add_argument("--allow-partial", action="store_true", help="publish tasks evaluated on part of their data (noted)")
    card.add_argument("--repo-id", help="the model repo (ORG/NAME)")
    card.add_argument("--push", action="store_true", help="open a pull request on --repo-id with the files (needs the Hub)")
    add_tasks_dir(card)
    card.set_defaults(handler=_model_card)

    eee = kinds.add_parser("eee", help="Every Eval Ever aggregate JSON and instance JSONL")
    eee.add_argument("run", type=Path, metavar="RUN_DIR")
    eee.add_argument("--output", type=Path, required=True, metavar="DIR", help="datastore root (files go under DIR/data/...)")
    eee.add_argument("--collection", default="evalharness", help="collection (benchmark suite) folder name")
    eee.add_argument("--model-id", help="the model's Hub id ORG/NAME (default: the run's model name)")
    eee.add_argument("--developer", help="developer folder for a model id without ORG/")
    eee.add_argument("--organization", default="unknown", help="who provides these results (source_metadata)")
    eee.add_argument("--relationship", default="other", help="first_party, third_party, collaborative or other")
    eee.add_argument("--availability", default="unknown", help="open_weights, closed_weights or unknown")
    eee.add_argument("--no-instances", action="store_true", help="write the aggregate only")
    eee.add_argument("--schemas", type=Path, metavar="WHEEL_OR_DIR", help="also validate against the every-eval-ever JSON Schemas")
    add_tasks_dir(eee)
    eee.set_defaults(handler=_eee)

    details = kinds.add_parser("details", help="per-task samples as Parquet, a Hub details dataset")
    details.add_argument("run", type=Path, metavar="RUN_DIR")
    details.add_argument("--output", type=Path, required=True, metavar="DIR", help="the model's details folder (one per model)")
    details.add_argument("--push", metavar="REPO_ID", help="open a pull request on this dataset repo with the folder")
    details.set_defaults(handler=_details)

    log = kinds.add_parser("log", help="log a run record to an experiment tracker")
    log.add_argument("run", type=Path, metavar="RUN_DIR")
    from evalharness.publish.targets import parse_log_to

    log.add_argument("--to", action="append", required=True, type=parse_log_to, metavar="TRACKER",
                     help="mlflow[:URI], wandb[:PROJECT] or trackio[:PROJECT] (repeatable)")
    log.set_defaults(handler=_log)
