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
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from evalharness.commands.common import add_tasks_dir, positive_int
from evalharness.commands.compare import add_test_options, settings_from_args
from evalharness.commands.settings_flags import add_settings_flags, given_setting, settings_values
from evalharness.errors import UsageError
from evalharness.evaluation.settings import RunSettings
from evalharness.jsonvalues import JSONObject, JsonValue

if TYPE_CHECKING:
    from evalharness.comparison.compare import CompareSettings
    from evalharness.comparison.gate_policy import LoadedPolicy
    from evalharness.comparison.gate_results import GateReport
    from evalharness.records.baselines import ResolvedRun


def _as_given(info: Mapping[str, JsonValue], resolved: ResolvedRun) -> JSONObject:
    return {**info, "path": resolved.source, **resolved.info()}


def with_sources(report: GateReport, candidate: ResolvedRun | None, baseline: ResolvedRun | None) -> GateReport:
    """The report naming runs as the user gave them (a URL, NAME@STORE) with their provenance,
    not as the temporary copies the gate read."""
    if candidate is not None and str(candidate.path) != candidate.source:
        report = replace(report, candidate=_as_given(report.candidate, candidate))
    if baseline is not None and report.baseline is not None and str(baseline.path) != baseline.source:
        report = replace(report, baseline=_as_given(report.baseline, baseline))
    return report


def _checkpoint(args: argparse.Namespace) -> str | None:
    """The checkpoint given with --model (a sequential gate evaluates it)."""
    model = given_setting(args, "loading", "model")
    return model if isinstance(model, str) else None


def _sequential(args: argparse.Namespace, policy: LoadedPolicy, baseline: Path | None, settings: CompareSettings) -> GateReport:
    from evalharness.evaluation.runner import RunConfig
    from evalharness.evaluation.sequential import SequentialOptions, sequential_gate

    if not _checkpoint(args):
        raise UsageError("--sequential evaluates a checkpoint: give it with --model (and the run directory to write with --candidate)")
    config = RunConfig(**settings_values(args), tasks=[], tasks_dirs=args.tasks_dir, output=Path(args.candidate))
    options = SequentialOptions(batch_examples=args.batch_examples, order_seed=args.order_seed, final_share=args.final_share)
    return sequential_gate(policy, config, baseline, options=options, settings=settings, progress=lambda message: print(message, file=sys.stderr))


# The run settings a sequential gate takes for the evaluations it runs (its --seed, --output
# and --tasks-dir are the gate's own): how to load the candidate (a PEFT adapter, --model-args)
# and the prompt format its baseline was scored in, which the gate requires it to match.
SEQUENTIAL_SETTINGS = (
    "model", "model_kind", "device", "dtype", "device_map", "trust_remote_code", "tokenizer", "allow_random_weights",
    "allow_kind_mismatch", "base_model", "keep_adapter_unmerged", "model_args", "name", "base_url", "api", "api_key_env",
    "max_concurrency", "timeout", "max_retries", "max_requests", "batch_size", "max_batch_tokens", "label_map", "data_dir",
    "trust_task_code", "prompt_format", "system_prompt", "fewshot_as_multiturn", "strip_thinking",
)


def _add_sequential_options(gate: argparse.ArgumentParser) -> None:
    group = gate.add_argument_group(
        "sequential gate",
        "With --sequential, the gate evaluates the checkpoint --model itself, in seeded random batches of each task's "
        "examples, into the run directory --candidate, and stops as soon as every rule is settled (anytime-valid "
        "confidence sequences); the baseline is a recorded full run.",
    )
    group.add_argument("--sequential", action="store_true", help="evaluate --model batch by batch and stop once every rule is settled")
    group.add_argument("--batch-examples", type=positive_int, default=100, help="examples added per task per batch (default 100)")
    group.add_argument("--order-seed", type=int, default=0, help="seed of the random order of the examples (default 0)")
    group.add_argument(
        "--final-share", type=float, default=0.5,
        help="share of alpha kept for a final full-data t test of noninferior/within rules the sequence did not settle (default 0.5; 0: none)",
    )
    add_settings_flags(gate, RunSettings, only=SEQUENTIAL_SETTINGS)


def _gate(args: argparse.Namespace) -> int:
    from evalharness.comparison.gate import evaluate_gate, load_policy
    from evalharness.comparison.gate_report import (
        print_gate,
        to_dict,
        to_junit,
        to_markdown,
    )
    from evalharness.records.baselines import resolve_run
    from evalharness.records.record import atomic_write_text

    policy = load_policy(args.policy)  # a malformed policy fails before any run is read
    settings = settings_from_args(args)
    if _checkpoint(args) and not args.sequential:
        raise UsageError("--model is the checkpoint a sequential gate evaluates: add --sequential (or gate a run with --candidate RUN)")
    with tempfile.TemporaryDirectory(prefix="evalharness-gate-") as workdir:
        baseline = resolve_run(args.baseline, workdir=Path(workdir) / "baseline") if args.baseline else None
        if args.sequential:
            report = _sequential(args, policy, baseline.path if baseline else None, settings)
            candidate = None
        else:
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


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gate = commands.add_parser(
        "gate",
        help="check a candidate run against a gate policy (exit 0 pass, 1 fail, 2 invalid or not evaluated)",
        description="Check a candidate run against the rules of a policy file, optionally against a baseline run. "
        "Exit code 0 when every rule was evaluated and passed, 1 when any failed, 2 for an invalid policy, unusable "
        "runs, or a rule that could not be evaluated (no baseline, task or metric absent) unless it is 'optional: true'.",
    )
    gate.add_argument(
        "--candidate", required=True, metavar="RUN",
        help="run directory to check (or an fsspec URL of a run); with --sequential, the run directory to write",
    )
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
    _add_sequential_options(gate)
    gate.set_defaults(handler=_gate, alpha=0.05, correction="none")
