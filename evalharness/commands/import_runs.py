"""``evalharness import``: turn another harness's results into an evalharness run record, so
both tools' numbers sit on one leaderboard with their provenance (``import lm-eval ...``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _lm_eval(args: argparse.Namespace) -> int:
    from evalharness.publish.lm_eval import import_lm_eval

    record = import_lm_eval(args.results, run_dir=args.run_dir, samples=args.samples, name=args.name)
    for name, task in record.tasks.items():
        values = ", ".join(f"{key}={entry.value:g}" if entry.value is not None else f"{key}=undefined" for key, entry in task.metrics.items())
        print(f"{name}: {values} (n={task.n_examples})")
    for name, reason in record.skipped.items():
        print(f"not imported: {name}: {reason}", file=sys.stderr)
    print(f"run record: {args.run_dir}/results.json (model.source = lm-eval)", file=sys.stderr)
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("import", help="import another harness's results as a run record")
    sources = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
    lm_eval = sources.add_parser(
        "lm-eval", help="an lm-evaluation-harness results_<date>.json (and its samples_<task>_<date>.jsonl files)",
        description="Samples are found beside the results file (lm_eval --log_samples) unless --samples names them.",
    )
    lm_eval.add_argument("results", type=Path, metavar="RESULTS_JSON")
    lm_eval.add_argument("--samples", action="append", default=[], type=Path, metavar="FILE", help="a samples_<task>_<date>.jsonl file (repeatable)")
    lm_eval.add_argument("--run-dir", type=Path, required=True, metavar="DIR", help="new run directory to write")
    lm_eval.add_argument("--name", help="model name in the record (default: lm-eval's model_name)")
    lm_eval.set_defaults(handler=_lm_eval)
