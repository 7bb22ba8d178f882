"""``evalharness run``: evaluate a checkpoint on tasks and write a run directory."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from evalharness.commands.backend_flags import add_backend_flags, backend_config
from evalharness.commands.common import (
    add_tasks_dir,
    add_trust_and_checkpoint_overrides,
    non_negative_int,
    parse_label_map,
    positive_int,
    seed,
    split_names,
)
from evalharness.commands.publish import add_log_to


def batch_size(text: str) -> int | str:
    """``auto`` or a positive integer."""
    return "auto" if text == "auto" else positive_int(text)


def _generation_overrides(args: argparse.Namespace) -> dict[str, int]:
    """Only the decoding settings given on the command line override the tasks' own."""
    given = {"max_new_tokens": args.max_new_tokens, "num_beams": args.num_beams}
    return {name: value for name, value in given.items() if value is not None}


def _run(args: argparse.Namespace) -> int:
    from evalharness.commands.display import print_run
    from evalharness.commands.publish import check_log_to, log_after
    from evalharness.evaluation.runner import RunConfig, run_evaluation
    from evalharness.execution.distributed import launch_environment

    config = RunConfig(
        model=args.model,
        tasks=split_names(args.tasks),
        output=args.output,
        data_dir=args.data_dir,
        tasks_dirs=args.tasks_dir,
        limit=args.limit,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
        model_kind=args.model_kind,
        label_map=parse_label_map(args.label_map),
        trust_remote_code=args.trust_remote_code,
        trust_task_code=args.trust_task_code,
        tokenizer=args.tokenizer,
        allow_random_weights=args.allow_random_weights,
        allow_kind_mismatch=args.allow_kind_mismatch,
        seed=args.seed,
        generation=_generation_overrides(args),
        num_fewshot=args.num_fewshot,
        max_batch_tokens=args.max_batch_tokens,
        cache=args.cache,
        fresh=args.fresh,
        check_determinism=args.check_determinism,
        show_progress=args.progress,
        device_map=args.device_map,
        backend=backend_config(args),
    )
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


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="evaluate a checkpoint on tasks and write a run directory")
    run.add_argument("--model", required=True, help="checkpoint directory or Hugging Face Hub id (--backend openai: the served model's name)")
    run.add_argument("--tasks", required=True, action="append", help="task names or groups, comma-separated")
    run.add_argument("--data-dir", help="folder with local evaluation data (default: $EVALHARNESS_DATA_DIR)")
    run.add_argument("--output", type=Path, help="run directory to write (default: runs/MODEL/TIMESTAMP)")
    run.add_argument("--limit", type=positive_int, help="evaluate only the first N examples of each task")
    run.add_argument(
        "--batch-size", type=batch_size, default="auto",
        help="rows per batch, or auto (default: 256 on CUDA, 32 on CPU; halved on out-of-memory)",
    )
    run.add_argument("--max-batch-tokens", type=positive_int, help="also cap each batch's padded tokens (rows x longest row)")
    run.add_argument("--cache", type=Path, metavar="PATH", help="prediction cache (default: RUN_DIR/cache/predictions.sqlite)")
    run.add_argument("--fresh", action="store_true", help="ignore cached predictions and overwrite them")
    run.add_argument("--progress", action="store_true", help="show progress bars even when stderr is not a terminal")
    run.add_argument(
        "--check-determinism", action="store_true",
        help="rerun a sample of each task at another batch size (no cache) and record the largest difference",
    )
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    run.add_argument("--device-map", help="auto: spread a checkpoint too large for one GPU over all visible GPUs (needs accelerate)")
    run.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16")
    run.add_argument("--model-kind", help="override the kind detected from config.architectures")
    run.add_argument("--label-map", help="MODEL_LABEL=TASK_LABEL,... or a YAML/JSON file")
    run.add_argument("--trust-remote-code", action="store_true", help="allow code shipped with the checkpoint to run")
    add_trust_and_checkpoint_overrides(run)
    run.add_argument("--seed", type=seed, default=1234, help="seed for bootstrap and few-shot sampling")
    run.add_argument("--max-new-tokens", type=positive_int, help="override the tasks' generation.max_new_tokens")
    run.add_argument("--num-beams", type=positive_int, help="override the tasks' generation.num_beams (1: greedy)")
    run.add_argument("--num-fewshot", type=non_negative_int, help="override the tasks' prompt.few_shot.n (0: zero-shot)")
    run.add_argument("--json", action="store_true", help="print the run record as JSON instead of a table")
    add_backend_flags(run, tokenizer=False)  # --tokenizer comes with the checkpoint overrides
    add_log_to(run)
    add_tasks_dir(run)
    run.set_defaults(handler=_run)
