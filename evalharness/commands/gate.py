"""``evalharness gate``: check a candidate run against a policy (and a baseline) for CI.

Exit codes: 0 every rule was evaluated and passed, 1 a rule failed, 2 the policy is invalid
(checked against the task registry and the runs before anything is evaluated), a run is
unusable, a rule could not be evaluated (unless it is ``optional``), or nothing was checked.
The JUnit, Markdown and JSON outputs are written in every case where rules were evaluated.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from evalharness.commands.common import add_tasks_dir
from evalharness.commands.compare import add_test_options, settings_from_args


def with_sources(report: Any, candidate: Any, baseline: Any) -> Any:
    """The report naming runs as the user gave them (a URL, NAME@STORE) with their provenance,
    not as the temporary copies the gate read."""
    runs = {}
    for key, resolved in (("candidate", candidate), ("baseline", baseline)):
        info = getattr(report, key)
        if resolved is not None and info is not None and str(resolved.path) != resolved.source:
            runs[key] = {**info, "path": resolved.source, **resolved.info()}
    return replace(report, **runs) if runs else report


def _gate(args: argparse.Namespace) -> int:
    from evalharness.comparison.gate import evaluate_gate, load_policy
    from evalharness.comparison.gate_report import (
        print_gate,
        to_dict,
        to_junit,
        to_markdown,
    )
    from evalharness.records.record import atomic_write_text
    from evalharness.records.store import resolve_run

    policy = load_policy(args.policy)  # a malformed policy fails before any run is read
    settings = settings_from_args(args)
    with tempfile.TemporaryDirectory(prefix="evalharness-gate-") as workdir:
        baseline = resolve_run(args.baseline, workdir=Path(workdir) / "baseline") if args.baseline else None
        candidate = resolve_run(args.candidate, workdir=Path(workdir) / "candidate")
        report = evaluate_gate(policy, candidate.path, baseline.path if baseline else None, settings=settings, tasks_dirs=args.tasks_dir)
    report = with_sources(report, candidate, baseline)
    outputs = {args.junit: to_junit, args.markdown: to_markdown}
    for path, render in outputs.items():
        if path:
            atomic_write_text(Path(path), render(report))
    if args.output:
        atomic_write_text(Path(args.output), json.dumps(to_dict(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    if args.json:
        print(json.dumps(to_dict(report), indent=2, ensure_ascii=False, allow_nan=False))
    else:
        print_gate(report)
    problems = report.problems()
    if problems:
        print("error: the gate could not be evaluated:\n" + "\n".join(f"  {problem}" for problem in problems), file=sys.stderr)
    return report.exit_code


def register(commands: argparse._SubParsersAction) -> None:
    gate = commands.add_parser(
        "gate",
        help="check a candidate run against a gate policy (exit 0 pass, 1 fail, 2 invalid or not evaluated)",
        description="Check a candidate run against the rules of a policy file, optionally against a baseline run. "
        "Exit code 0 when every rule was evaluated and passed, 1 when any failed, 2 for an invalid policy, unusable "
        "runs, or a rule that could not be evaluated (no baseline, task or metric absent) unless it is 'optional: true'.",
    )
    gate.add_argument("--candidate", required=True, metavar="RUN", help="run directory to check (or an fsspec URL of a run)")
    gate.add_argument(
        "--baseline", metavar="RUN",
        help="run to compare against: a run directory, an fsspec URL of a run (s3://, gs://, hf://, file://...), or NAME@STORE "
        "for a run recorded with `evalharness bless` (every file checked against its provenance); rules that need a baseline "
        "exit 2 without one, unless optional",
    )
    gate.add_argument("--policy", required=True, metavar="FILE", help="gate policy (YAML)")
    gate.add_argument("--junit", metavar="FILE", help="write JUnit XML, one test case per rule")
    gate.add_argument("--markdown", metavar="FILE", help="write a Markdown summary (e.g. $GITHUB_STEP_SUMMARY)")
    gate.add_argument("--output", metavar="FILE", help="write the full result as JSON")
    gate.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    add_test_options(gate)
    add_tasks_dir(gate)
    gate.set_defaults(handler=_gate, alpha=0.05, correction="none")
