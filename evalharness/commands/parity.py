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
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from evalharness.commands.common import split_names
from evalharness.commands.settings_flags import add_settings_flags, settings_values
from evalharness.errors import RecordError, UsageError
from evalharness.evaluation.settings import RunSettings
from evalharness.jsonvalues import JSONObject, JsonValue, expect_array, expect_object

DEFAULT_LIMIT = 100
# The run settings both runs share (--backend is replaced by --backends A,B; default --limit 100).
PARITY_SETTINGS = (
    "model", "tasks", "tasks_dirs", "data_dir", "limit", "output", "device", "dtype", "tokenizer", "batch_size",
    "max_batch_tokens", "fresh", "num_fewshot", "max_new_tokens", "num_beams", "seed", "base_url", "api", "api_key_env",
    "max_concurrency", "timeout", "max_retries", "max_requests", "trust_task_code",
)


def _backends(text: str) -> list[str]:
    names = split_names([text])
    if len(names) != 2 or names[0] == names[1]:
        raise argparse.ArgumentTypeError(f"give two different backends, e.g. hf,openai (got {text!r})")
    return names


def _configs(args: argparse.Namespace) -> list[RunSettings]:
    """One RunConfig per backend, from the same settings; the openai settings (and
    --served-model) go to the openai run only."""
    from evalharness.evaluation.runner import RunConfig

    values = settings_values(args)
    given_loading, served_settings = values["loading"], values.pop("backend", {})
    assert isinstance(given_loading, dict) and isinstance(served_settings, dict)  # settings groups are mappings
    model = str(given_loading["model"])  # a required flag
    if served_settings and "openai" not in args.backends:
        flags = ", ".join("--" + name.replace("_", "-") for name in served_settings)
        raise UsageError(f"{flags} apply to the openai backend only, which this parity check does not use")
    values.setdefault("limit", DEFAULT_LIMIT)
    model_dir = model if Path(model).expanduser().is_dir() else None
    given_output = values.get("output")
    output = Path(str(given_output)) if given_output else Path("runs") / "parity" / model.strip("/").replace("/", "__") / datetime.now().strftime("%Y%m%d-%H%M%S")
    configs = []
    for name in args.backends:
        served = name == "openai"
        loading = dict(given_loading)
        if served:
            loading.update(model=args.served_model or model, tokenizer=loading.get("tokenizer") or model_dir)
        backend = {"name": name, **(served_settings if served else {})}
        configs.append(RunConfig(**{**values, "loading": loading, "backend": backend, "output": Path(output) / name}))
    return configs


def _parity(args: argparse.Namespace) -> int:
    from evalharness.comparison.parity import backend_parity, record_parity
    from evalharness.evaluation.runner import run_evaluation

    configs = _configs(args)
    for config in configs:
        print(f"{config.backend.name}: {config.model}", file=sys.stderr)
        run_evaluation(config, progress=lambda message: print(message, file=sys.stderr))
    reference, checked = (config.output for config in configs)
    assert reference is not None and checked is not None  # _configs gives each run its directory
    report = backend_parity(reference, checked)
    path = record_parity(report, Path(reference).parent)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_parity(report)
        print(f"parity report: {path}")
    return 0


def _number(value: JsonValue, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _objects(value: JsonValue, where: str) -> list[JSONObject]:
    return [expect_object(item, f"parity report: {where}", error=RecordError) for item in expect_array(value, f"parity report: {where}", error=RecordError)]


def print_parity(report: Mapping[str, JsonValue]) -> None:
    from evalharness.terminal import Cell, Column, console, print_note, print_table

    out = console()
    reference = str(expect_object(report["reference"], "parity report: reference", error=RecordError)["backend"])
    checked = str(expect_object(report["checked"], "parity report: checked", error=RecordError)["backend"])
    headers = ("task", "n", "max |Δ logprob|", "flips", "metric", reference, checked, "Δ", "p", "verdict")
    columns = [Column(name, "left" if name in {"task", "metric", "verdict"} else "right", key=name in {"task", "metric"}) for name in headers]
    rows = []
    tasks = _objects(report["tasks"], "tasks")
    for task in tasks:
        flips = f"{task['flips']}/{task['discrete_predictions']}" if task["discrete_predictions"] else "n/a"
        no_metric: JSONObject = {"metric": "", "value_a": None, "value_b": None, "difference": None, "p_value": None, "verdict": ""}
        for metric in _objects(task["metrics"], "metrics") or [no_metric]:
            rows.append([
                str(task["task"]), str(task["n"]), _number(task["max_abs_logprob_diff"], ".2e"), flips, str(metric["metric"]),
                _number(metric["value_a"], ".4g"), _number(metric["value_b"], ".4g"), _number(metric["difference"], "+.4g"),
                _number(metric["p_value"], ".3g"), str(metric["verdict"]),
            ])
    print_table(out, columns, rows, title=f"parity: {checked} against {reference}")
    summary = expect_object(report["summary"], "parity report: summary", error=RecordError)
    out.print(
        f"largest |Δ logprob| {_number(summary['max_abs_logprob_diff'], '.2e')}, "
        f"{summary['flips']} flipped prediction(s), {summary['significant_metric_differences']} significant metric difference(s)",
        markup=False,
    )
    for task in tasks:
        if task["flipped_ids"]:
            flipped = expect_array(task["flipped_ids"], "parity report: flipped_ids", error=RecordError)
            print_note(out, Cell("flipped", "yellow"), f"{task['task']}: {', '.join(str(example) for example in flipped)}")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parity = commands.add_parser("parity", help="run the same tasks on two backends and compare them request by request")
    parity.add_argument("--backends", required=True, type=_backends, help="two backends, the reference first: hf,openai or hf,vllm")
    parity.add_argument("--served-model", help="the openai backend's model name when the server names it differently from --model")
    add_settings_flags(parity, RunSettings, only=PARITY_SETTINGS, required=("model", "tasks"))
    parity.add_argument("--json", action="store_true", help="print parity.json instead of a table")
    parity.set_defaults(handler=_parity)
