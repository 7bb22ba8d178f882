"""Whole-process runs for ``speed.py``: ``evalharness run`` and ``lm_eval``, as a user starts them.

Each side is one subprocess timed from start to exit: interpreter and library start-up, task
building, model loading, the forward passes, metrics with each tool's default intervals, and
writing results and samples. Both sides read the same documents: lm-evaluation-harness gets a
local task (YAML + JSONL, written under the cache directory, never committed) built from the
prompts and choices evalharness recorded in its samples, so the requests are identical, and
its per-request answers are compared with evalharness's from both samples files.

``reference=True`` runs ``evalharness run --no-packing``: the adapters' reference layout (one
padded row per sequence, no shared prefixes), the "before" of the padding efficiency and of
the time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Workload:
    """One evalharness task run side by side with lm-evaluation-harness on the same documents."""

    key: str
    task: str
    model: str  # role in speed_models.build_all
    peer: str  # how lm-eval's local task is written: choice, pairs, rolling, generate
    sizes: tuple[int, int]  # examples in quick and full mode
    name: str
    eh_args: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


WORKLOADS = {
    w.key: w
    for w in (
        Workload(
            "sst2_ll",
            "glue/sst2",
            "causal",
            "choice",
            (200, 872),
            "SST-2 2-choice log-likelihood (GPT-2)",
        ),
        Workload(
            "bbq",
            "bias/bbq",
            "causal",
            "choice",
            (150, 1500),
            "BBQ 3-choice, multi-token options, long shared context (GPT-2)",
            notes=(
                "full mode: the first 1,500 of 11,956 questions (Age), so that lm-eval's repeats fit the run",
            ),
        ),
        Workload(
            "crows",
            "bias/crows_pairs",
            "causal",
            "pairs",
            (200, 1508),
            "CrowS-Pairs sentence log-likelihoods (GPT-2)",
        ),
        Workload(
            "wikitext_paragraphs",
            "bench/wikitext2_paragraphs",
            "causal",
            "rolling",
            (100, 500),
            "WikiText-2 perplexity, paragraph level (GPT-2)",
        ),
        Workload(
            "wikitext_articles",
            "lm/wikitext2",
            "causal",
            "rolling",
            (6, 62),
            "WikiText-2 perplexity, whole articles (GPT-2)",
        ),
        Workload(
            "wmt",
            "translation/wmt21_de_en",
            "t5",
            "generate",
            (24, 200),
            "WMT21 de-en greedy generation, 64 new tokens (T5)",
            eh_args=("--num-beams", "1", "--max-new-tokens", "64"),
            notes=(
                (
                    "64 new tokens on both sides (lm-eval's task sets max_length 65: its seq2seq backend otherwise lets the "
                    "decoder run to input length + 64); lm-eval cuts over-long inputs on the left, evalharness on the right, and "
                    "greedy decoding of a random T5 flips on near-tied logits, so the texts are compared, not required to be equal"
                ),
            ),
        ),
    )
}


def env_for(threads: int | None) -> dict[str, str]:
    """Offline, and the same torch threads on every side: ``threads``, or one per core."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": str(HERE.parent),
    }
    env.pop("OMP_NUM_THREADS", None)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def _env(ctx: dict) -> dict[str, str]:
    return env_for(ctx.get("threads_arg"))


def _timed(command: list[str], env: dict[str, str], log: Path) -> float:
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as handle:
        done = subprocess.run(
            command,
            check=False,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
        )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[:6])} ... failed ({done.returncode}); see {log}"
        )
    return seconds


# -- evalharness --------------------------------------------------------------------------------
def paragraph_task(ctx: dict) -> tuple[Path, Path]:
    """A local evalharness task over WikiText-2 test paragraphs (non-heading lines), and its data."""
    root = ctx["cache"] / "bench-tasks"
    (root / "tasks" / "bench").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    lines = (
        (ctx["data_dir"] / "wikitext-2/wiki.test.tokens.txt")
        .read_text(encoding="utf-8")
        .splitlines()
    )
    paragraphs = [
        line for line in lines if line.strip() and not line.strip().startswith("=")
    ]
    (root / "data" / "paragraphs.jsonl").write_text(
        "".join(json.dumps({"text": p}) + "\n" for p in paragraphs), encoding="utf-8"
    )
    (root / "tasks" / "bench" / "wikitext2_paragraphs.yaml").write_text(
        "version: 1\nkind: language_modeling\ndescription: WikiText-2 test paragraphs (non-heading lines of wiki.test.tokens), "
        "one document each.\ndata:\n  local:\n    files: [paragraphs.jsonl]\n    format: jsonl\n    columns: {text: text}\n"
        "metrics:\n  - {name: word_perplexity, settings: {counting: lm_eval}}\n  - byte_perplexity\n  - bits_per_byte\n"
        "  - token_perplexity\nformulations:\n  rolling_loglikelihood: {window: disjoint}\n",
        encoding="utf-8",
    )
    return root / "tasks", root / "data"


def eh_process(
    ctx: dict,
    w: Workload,
    out: Path,
    *,
    limit: int,
    batch_size: int | None = None,
    reference: bool = False,
    cache: Path | None = None,
) -> dict:
    """One ``evalharness run`` subprocess; its wall seconds, task entry and samples."""
    from evalharness.records.record import read_samples

    data_dir = ctx["data_dir"]
    extra: list[str] = list(w.eh_args)
    if w.task.startswith("bench/"):
        tasks_dir, data_dir = ctx["paragraph_task"]
        extra += ["--tasks-dir", str(tasks_dir)]
    if cache is not None:
        extra += ["--cache", str(cache)]
    if reference:
        extra.append("--no-packing")
    command = [
        sys.executable,
        "-m",
        "evalharness",
        "run",
        "--model",
        str(ctx["models"][w.model]),
        "--tasks",
        w.task,
        "--data-dir",
        str(data_dir),
        "--output",
        str(out),
        "--limit",
        str(limit),
        "--batch-size",
        str(batch_size or ctx["batch_size"]),
        "--device",
        ctx["device"],
        "--dtype",
        ctx["dtype"],
        *extra,
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    seconds = _timed(command, _env(ctx), out.parent / f"{out.name}.log")
    record = json.loads((out / "results.json").read_text(encoding="utf-8"))
    entry = record["tasks"][w.task]
    return {
        "seconds": seconds,
        "task_seconds": entry["seconds"],
        "execution": entry.get("execution", {}),
        "metrics": {k: m["value"] for k, m in entry["metrics"].items()},
        "samples": read_samples(out, w.task),
        "notes": record["model"]["notes"],
    }


def eh_values(w: Workload, samples: list[dict]) -> list[Any]:
    """Per-request answers from evalharness's samples, in lm-eval's order."""
    if w.peer in ("choice", "pairs"):
        return [value for row in samples for value in row["details"]["loglikelihoods"]]
    if w.peer == "rolling":
        return [row["prediction"]["logprob"] for row in samples]
    return [row["prediction"] for row in samples]


# -- lm-evaluation-harness ----------------------------------------------------------------------
def _docs(w: Workload, samples: list[dict]) -> list[dict]:
    if w.peer == "choice":

        def label(row: dict) -> int:
            gold = row["gold"]
            return (
                gold["label"]
                if isinstance(gold, dict)
                else [c.strip() for c in row["details"]["choices"]].index(str(gold))
            )

        return [
            {
                "prompt": row["input"],
                "choices": row["details"]["choices"],
                "label": label(row),
            }
            for row in samples
        ]
    if w.peer == "pairs":
        return [
            {"choices": [row["input"]["sent_more"], row["input"]["sent_less"]]}
            for row in samples
        ]
    if w.peer == "rolling":
        return [{"text": row["gold"]} for row in samples]
    return [
        {
            "prompt": row["input"],
            "reference": str(
                row["gold"][0] if isinstance(row["gold"], list) else row["gold"]
            ),
        }
        for row in samples
    ]


PEER_TASKS = {  # the lines of lm-eval's local task after its name and data
    "choice": 'output_type: multiple_choice\ndoc_to_text: prompt\ndoc_to_choice: choices\ndoc_to_target: label\ntarget_delimiter: ""\n'
    "metric_list:\n  - metric: acc\n",
    "pairs": 'output_type: multiple_choice\ndoc_to_text: ""\ndoc_to_choice: choices\ndoc_to_target: 0\ntarget_delimiter: ""\n'
    "metric_list:\n  - metric: acc\n",
    "rolling": 'output_type: loglikelihood_rolling\ndoc_to_text: ""\ndoc_to_target: text\nmetric_list:\n  - metric: word_perplexity\n'
    "  - metric: byte_perplexity\n  - metric: bits_per_byte\n",
    # lm-eval's seq2seq generate_until caps the decoder at input length + max_gen_toks tokens;
    # max_length 65 (decoder start + 64) makes it generate what evalharness's 64 new tokens do
    "generate": 'output_type: generate_until\ndoc_to_text: prompt\ndoc_to_target: reference\ngeneration_kwargs:\n  until: ["\\n"]\n'
    "  max_gen_toks: 64\n  max_length: 65\n  do_sample: false\nmetric_list:\n  - metric: bleu\n",
}


def write_peer_task(ctx: dict, w: Workload, samples: list[dict]) -> tuple[Path, str]:
    """lm-eval's local task for ``w`` over the documents of ``samples``: (include dir, task name)."""
    folder = ctx["cache"] / "lm-eval-tasks" / w.key
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "docs.jsonl"
    data.write_text(
        "".join(json.dumps(doc) + "\n" for doc in _docs(w, samples)), encoding="utf-8"
    )
    name = f"bench_{w.key}_{len(samples)}"
    (folder / "task.yaml").write_text(
        f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\n{PEER_TASKS[w.peer]}"
        "metadata:\n  version: 1.0\n",
        encoding="utf-8",
    )
    return folder, name


def lm_eval_process(
    ctx: dict,
    w: Workload,
    include: Path,
    task: str,
    out: Path,
    *,
    batch_size: int,
    limit: int | None = None,
) -> dict:
    """One ``lm_eval`` subprocess in its venv; its wall seconds, metrics and per-request answers
    (``limit``: only the first documents, for the untimed warm-up that builds its datasets cache)."""
    model_args = (
        f"pretrained={ctx['models'][w.model]},dtype={ctx['dtype']},max_length=512"
    )
    command = [
        str(ctx["lm_eval_python"]),
        "-m",
        "lm_eval",
        "--model",
        "hf",
        "--model_args",
        model_args,
        "--tasks",
        task,
        "--include_path",
        str(include),
        "--batch_size",
        str(batch_size),
        "--device",
        ctx["device"],
        "--output_path",
        str(out),
        "--log_samples",
        *(["--limit", str(limit)] if limit else []),
    ]
    out.mkdir(parents=True, exist_ok=True)
    env = {**_env(ctx), "PYTHONPATH": ""}
    seconds = _timed(command, env, out / "run.log")
    results = json.loads(max(out.rglob("results_*.json")).read_text(encoding="utf-8"))
    metrics = {
        key.split(",")[0]: value
        for key, value in results["results"][task].items()
        if "stderr" not in key and key != "alias"
    }
    rows = [
        json.loads(line)
        for line in max(out.rglob(f"samples_{task}_*.jsonl"))
        .read_text(encoding="utf-8")
        .splitlines()
    ]
    rows.sort(key=lambda row: row["doc_id"])
    return {
        "seconds": seconds,
        "metrics": metrics,
        "values": [value for row in rows for value in _peer_answers(w, row)],
    }


def _peer_answers(w: Workload, row: dict) -> list[Any]:
    answers = row["filtered_resps"]
    if w.peer in ("choice", "pairs"):
        return [float(answer[0]) for answer in answers]
    if w.peer == "rolling":
        return [float(answers[0] if isinstance(answers, list) else answers)]
    return [answers[0] if isinstance(answers, list) else answers]


def words(text: str) -> int:
    """lm-evaluation-harness's word count."""
    return len(re.split(r"\s+", text))
