"""``evalharness sweep``: models × task groups, one run each, locally or on a Ray cluster.

Exit code 0 when every job finished, 1 when any failed (each listed with its error; the
other jobs' runs and the leaderboard are still written), 2 for a bad command or sweep file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from evalharness.commands.common import non_negative_int, positive_int, split_names
from evalharness.commands.settings_flags import add_settings_flags, settings_values
from evalharness.errors import SpecError, UsageError
from evalharness.evaluation.settings import (
    FLAT_NAMES,
    JOB_FIELDS,
    RunSettings,
    flat_settings,
)

if TYPE_CHECKING:
    from evalharness.evaluation.sweep import SweepSpec

# Every run setting can be shared by a sweep's jobs, but those each job sets itself; the
# openai backend's --max-retries is a sweep file setting here (sweep --max-retries retries jobs).
_SHARED_FLAGS = sorted(set(FLAT_NAMES) - JOB_FIELDS - {"backend", "max_retries"} | {"tasks_dirs", "data_dir", "limit", "trust_task_code"})


def _spec(args: argparse.Namespace) -> SweepSpec:
    from pydantic import ValidationError

    from evalharness.config import field_path
    from evalharness.evaluation.sweep import SweepSpec, load_sweep_spec

    top: dict[str, object] = {
        "models": split_names(args.models) or None,
        "tasks": split_names(args.tasks) or None,
        "output": str(args.output) if args.output else None,
        "ray_address": args.ray_address,
        "local_ray": args.local_ray,
        "gpus_per_job": args.gpus_per_job,
        "cpus_per_job": args.cpus_per_job,
        "max_retries": args.max_retries,
        "resume": True if args.resume else None,
        "leaderboard": False if args.no_leaderboard else None,
    }
    run = flat_settings(settings_values(args))
    if args.config:
        spec = load_sweep_spec(args.config, **top)
        return SweepSpec.model_validate({**spec.model_dump(), "run": {**spec.run, **run}}) if run else spec
    missing = [f"--{name}" for name in ("models", "tasks", "output") if top[name] is None]
    if missing:
        raise UsageError(f"give {', '.join(missing)} (or a sweep file with --config FILE)")
    try:
        return SweepSpec.model_validate({**{k: v for k, v in top.items() if v is not None}, "run": run})
    except ValidationError as exc:
        problems = [f"{field_path(e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)]
        raise SpecError("invalid sweep: " + "; ".join(problems)) from None


def _sweep(args: argparse.Namespace) -> int:
    from evalharness.evaluation.sweep import run_sweep

    spec = _spec(args)
    result = run_sweep(spec, progress=lambda message: print(message, file=sys.stderr))
    for outcome in result.outcomes:
        status = "ok" if outcome.ok else "FAILED"
        print(f"{status:6} {outcome.job.model} × {outcome.job.group}: {outcome.location or outcome.error}")
    if result.leaderboard:
        print(f"leaderboard: {result.leaderboard}")
    if result.leaderboard_error:
        print(f"leaderboard not built: {result.leaderboard_error}", file=sys.stderr)
    if result.failed:
        print(f"{len(result.failed)} of {len(result.outcomes)} jobs failed:", file=sys.stderr)
        for outcome in result.failed:
            print(f"  {outcome.job.key}: {outcome.error}", file=sys.stderr)
        return 1
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="evaluate several models on several task groups (locally or on a Ray cluster) and build a leaderboard",
        description=(
            "One job per (model, task group), written to OUTPUT/<model>/<group>/; a leaderboard of "
            "the finished jobs goes to OUTPUT/leaderboard/. Without --ray-address or --local-ray the "
            "jobs run one after another in this process. See docs/scaling.md."
        ),
    )
    sweep.add_argument("--config", type=Path, metavar="FILE", help="a sweep YAML (models, tasks, output, run: {...}); flags override it")
    sweep.add_argument("--models", action="append", default=[], help="checkpoint directories or hub ids, comma-separated")
    sweep.add_argument("--tasks", action="append", default=[], help="task groups or tasks, comma-separated; one job per entry and model")
    sweep.add_argument("--output", help="output folder or fsspec URL (s3://..., gs://..., file://...)")
    sweep.add_argument("--ray-address", help="run on a Ray cluster: auto, HOST:PORT or ray://HOST:10001")
    sweep.add_argument("--local-ray", type=positive_int, metavar="N", help="run on a local Ray instance with N CPUs")
    sweep.add_argument("--gpus-per-job", type=float, help="GPUs a Ray job reserves (default 0)")
    sweep.add_argument("--cpus-per-job", type=float, help="CPUs a Ray job reserves (default 1)")
    sweep.add_argument("--max-retries", type=non_negative_int, help="retries of a job whose worker crashed (default 2)")
    sweep.add_argument("--resume", action="store_true", help="skip jobs whose results.json already exists in the output")
    sweep.add_argument("--no-leaderboard", action="store_true", help="do not build OUTPUT/leaderboard/")
    add_settings_flags(sweep, RunSettings, only=_SHARED_FLAGS)
    sweep.set_defaults(handler=_sweep)
