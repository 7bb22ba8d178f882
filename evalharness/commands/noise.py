"""``evalharness noise RUN_DIR``: measure a run's noise floor (writes RUN_DIR/noise.json)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping

from evalharness.commands.common import (
    add_tasks_dir,
    non_negative_int,
    positive_int,
    split_names,
)
from evalharness.errors import RecordError
from evalharness.jsonvalues import JSONObject, JsonValue, expect_array, expect_object


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of batch sizes") from None
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"'{text}': batch sizes must be positive integers")
    return sizes


def _noise(args: argparse.Namespace) -> int:
    from evalharness.evaluation.noise import NOISE_FILE, NoiseOptions, measure_noise

    options = NoiseOptions(
        sample=args.sample,
        seed=args.seed,
        batch_sizes=args.batch_sizes,
        run_seeds=args.run_seeds,
        bootstrap_seeds=args.bootstrap_seeds,
        dtypes=split_names(args.dtypes) if args.dtypes is not None else None,
        data_dir=args.data_dir,
        tasks_dirs=args.tasks_dir,
        device=args.device,
    )
    result = measure_noise(args.run_dir, options, progress=lambda message: print(message, file=sys.stderr))
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    _print(result)
    print(f"noise floor written to {args.run_dir}/{NOISE_FILE}")
    return 0


def _object(value: JsonValue, where: str) -> JSONObject:
    return expect_object(value, f"noise floor: {where}", error=RecordError)


def _print(result: Mapping[str, JsonValue]) -> None:
    from evalharness.terminal import Cell, Column, console, print_note, print_table

    out = console()
    headers = ("task", "metric", "n", "values", "spread (floor)", "predictions changed", "bootstrap bounds spread")
    columns = [Column(name, key=name in ("task", "metric")) for name in headers]
    rows = []
    for task, task_entry in _object(result["tasks"], "tasks").items():
        entry = _object(task_entry, task)
        for key, metric_entry in _object(entry["metrics"], f"{task}: metrics").items():
            metric = _object(metric_entry, f"{task}: {key}")
            values = ", ".join(f"{label} {'n/a' if value is None else f'{value:.4g}'}" for label, value in _object(metric["values"], "values").items())
            changed = ", ".join(f"{label}: {count}" for label, count in _object(metric["predictions_changed"], "predictions_changed").items()) or "-"
            boot = metric["bootstrap"]
            boot_text = "-" if not boot or not isinstance(boot, dict) or boot["low_spread"] is None else f"{boot['low_spread']:.3g} / {boot['high_spread']:.3g} ({boot['seeds']} seeds)"
            floor = "n/a" if metric["floor"] is None else f"{metric['floor']:.4g}"
            rows.append([task, key, str(entry["sample"]), values, floor, changed, boot_text])
    print_table(out, columns, rows, title="noise floor: the value on the sample under each perturbation")
    for reason in expect_array(result["not_measured"], "noise floor: not_measured", error=RecordError):
        print_note(out, Cell("not measured:", "yellow"), str(reason))


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    noise = commands.add_parser(
        "noise",
        help="rerun a sample of a run under perturbations that should not matter and record the spread (noise.json)",
        description="Rerun a seeded sample of each task of RUN_DIR with other batch sizes, other run seeds and (on a GPU) "
        "another dtype, and re-score the recorded statistics with other bootstrap seeds; write the spread of every "
        "metric to RUN_DIR/noise.json, which `evalharness gate` reads to warn about margins below the noise.",
    )
    noise.add_argument("run_dir", metavar="RUN_DIR", help="run directory to measure")
    noise.add_argument("--sample", type=positive_int, default=200, help="examples per task to rerun (default 200; all when fewer)")
    noise.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    noise.add_argument("--batch-sizes", type=_sizes, default=[1, 7], help="batch sizes to rerun with (default 1,7)")
    noise.add_argument("--run-seeds", type=non_negative_int, default=1, help="reruns with other run seeds (default 1)")
    noise.add_argument("--bootstrap-seeds", type=non_negative_int, default=5, help="other bootstrap seeds for the intervals (default 5)")
    noise.add_argument("--dtypes", help="dtypes to rerun with, comma-separated (default: another one on CUDA, none on CPU)")
    noise.add_argument("--data-dir", help="evaluation data folder (default: the run's)")
    noise.add_argument("--device", help="device for the reruns (default: the run's)")
    noise.add_argument("--json", action="store_true", help="print noise.json instead of a table")
    add_tasks_dir(noise)
    noise.set_defaults(handler=_noise)
