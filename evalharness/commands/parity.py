"""``evalharness parity``: the same model and tasks on two backends, compared request by request.

Runs ``run`` once per backend (``OUTPUT/<backend>``, each with its own prediction cache, so
an interrupted parity check resumes), then writes ``OUTPUT/parity.json`` and each task's
parity into the second run's record (``tasks.<task>.execution.parity``): the largest
log-probability difference, the flipped predictions and each metric's paired test.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from evalharness.backends.config import BackendConfig
from evalharness.commands.backend_flags import add_backend_flags, openai_flags
from evalharness.commands.common import (
    add_tasks_dir,
    non_negative_int,
    positive_int,
    split_names,
)
from evalharness.commands.run import batch_size

DEFAULT_LIMIT = 100


def _backends(text: str) -> list[str]:
    names = split_names([text])
    if len(names) != 2 or names[0] == names[1]:
        raise argparse.ArgumentTypeError(f"give two different backends, e.g. hf,openai (got {text!r})")
    return names


def _configs(args: argparse.Namespace) -> list[Any]:
    """One RunConfig per backend; openai flags go to the openai run only."""
    from evalharness.evaluation.runner import RunConfig

    generation = {name: value for name, value in {"max_new_tokens": args.max_new_tokens, "num_beams": args.num_beams}.items() if value is not None}
    model_dir = args.model if Path(args.model).expanduser().is_dir() else None
    output = args.output or Path("runs") / "parity" / args.model.strip("/").replace("/", "__") / datetime.now().strftime("%Y%m%d-%H%M%S")
    given = openai_flags(args, used="openai" in args.backends)
    configs = []
    for name in args.backends:
        served = name == "openai"
        backend = BackendConfig(name=name, **(given if served else {}))
        configs.append(
            RunConfig(
                model=(args.served_model or args.model) if served else args.model,
                tasks=split_names(args.tasks),
                output=Path(output) / name,
                data_dir=args.data_dir,
                tasks_dirs=args.tasks_dir,
                limit=args.limit,
                batch_size=args.batch_size,
                device=args.device,
                dtype=args.dtype,
                seed=args.seed,
                generation=generation,
                num_fewshot=args.num_fewshot,
                fresh=args.fresh,
                backend=backend,
                tokenizer=(args.tokenizer or model_dir) if served else args.tokenizer,
            )
        )
    return configs


def _parity(args: argparse.Namespace) -> int:
    from evalharness.comparison.parity import backend_parity, record_parity
    from evalharness.evaluation.runner import run_evaluation

    configs = _configs(args)
    for config in configs:
        print(f"{config.backend.name}: {config.model}", file=sys.stderr)
        run_evaluation(config, progress=lambda message: print(message, file=sys.stderr))
    report = backend_parity(configs[0].output, configs[1].output)
    path = record_parity(report, Path(configs[0].output).parent)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_parity(report)
        print(f"parity report: {path}")
    return 0


def _number(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def print_parity(report: dict[str, Any]) -> None:
    from evalharness.terminal import Cell, Column, console, print_note, print_table

    out = console()
    reference, checked = report["reference"]["backend"], report["checked"]["backend"]
    headers = ("task", "n", "max |Δ logprob|", "flips", "metric", reference, checked, "Δ", "p", "verdict")
    columns = [Column(name, "left" if name in {"task", "metric", "verdict"} else "right", key=name in {"task", "metric"}) for name in headers]
    rows = []
    for task in report["tasks"]:
        flips = f"{task['flips']}/{task['discrete_predictions']}" if task["discrete_predictions"] else "n/a"
        metrics = task["metrics"] or [{"metric": "", "value_a": None, "value_b": None, "difference": None, "p_value": None, "verdict": ""}]
        for metric in metrics:
            rows.append([
                task["task"], str(task["n"]), _number(task["max_abs_logprob_diff"], ".2e"), flips, metric["metric"],
                _number(metric["value_a"], ".4g"), _number(metric["value_b"], ".4g"), _number(metric["difference"], "+.4g"),
                _number(metric["p_value"], ".3g"), metric["verdict"],
            ])
    print_table(out, columns, rows, title=f"parity: {checked} against {reference}")
    summary = report["summary"]
    out.print(
        f"largest |Δ logprob| {_number(summary['max_abs_logprob_diff'], '.2e')}, "
        f"{summary['flips']} flipped prediction(s), {summary['significant_metric_differences']} significant metric difference(s)",
        markup=False,
    )
    for task in report["tasks"]:
        if task["flipped_ids"]:
            print_note(out, Cell("flipped", "yellow"), f"{task['task']}: {', '.join(task['flipped_ids'])}")


def register(commands: argparse._SubParsersAction) -> None:
    parity = commands.add_parser("parity", help="run the same tasks on two backends and compare them request by request")
    parity.add_argument("--model", required=True, help="checkpoint directory (openai: also the served name unless --served-model)")
    parity.add_argument("--backends", required=True, type=_backends, help="two backends, the reference first: hf,openai or hf,vllm")
    parity.add_argument("--served-model", help="the openai backend's model name when the server names it differently from --model")
    parity.add_argument("--tasks", required=True, action="append", help="task names or groups, comma-separated")
    parity.add_argument("--limit", type=positive_int, default=DEFAULT_LIMIT, help=f"examples per task (default {DEFAULT_LIMIT})")
    parity.add_argument("--output", type=Path, help="folder for both runs and parity.json (default: runs/parity/MODEL/TIMESTAMP)")
    parity.add_argument("--data-dir", help="folder with local evaluation data (default: $EVALHARNESS_DATA_DIR)")
    parity.add_argument("--batch-size", type=batch_size, default="auto", help="rows per batch, or auto")
    parity.add_argument("--device", default="auto", help="hf: auto, cpu, cuda or cuda:N")
    parity.add_argument("--dtype", default="auto", help="hf and vllm: auto, float32, bfloat16 or float16")
    parity.add_argument("--seed", type=int, default=1234, help="seed for bootstrap and few-shot sampling")
    parity.add_argument("--max-new-tokens", type=positive_int, help="override the tasks' generation.max_new_tokens (both runs)")
    parity.add_argument("--num-beams", type=positive_int, help="override the tasks' generation.num_beams (both runs)")
    parity.add_argument("--num-fewshot", type=non_negative_int, help="override the tasks' prompt.few_shot.n (both runs)")
    parity.add_argument("--fresh", action="store_true", help="ignore cached predictions and overwrite them")
    parity.add_argument("--json", action="store_true", help="print parity.json instead of a table")
    add_backend_flags(parity, choice=False)
    add_tasks_dir(parity)
    parity.set_defaults(handler=_parity)
