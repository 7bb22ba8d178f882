"""The in-process workloads of ``speed.py``: encoder heads (classification, extractive QA)
against the PyTorch floor and transformers pipelines, interleaved per repeat, plus the
"before" of each (the adapters' reference layout), and generation's prefill and decode
throughput.

evalharness is driven through its public API: ``run_evaluation(RunConfig(...))`` (time = the
task's ``seconds`` in the run record: requests, forward passes, metrics with their bootstrap
interval and the samples file; model loading excluded) and ``load_model(...).generate``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

import speed_floor as floor
from speed_peak import parameter_counts


def eh_run(
    ctx: dict,
    model: Path,
    task: str,
    output: Path,
    *,
    limit: int | None,
    batch_size: int | str,
    fresh: bool = True,
    reference: bool = False,
) -> dict:
    """One ``run_evaluation``; returns task seconds, wall seconds, metric values, samples and the
    execution entry. ``reference``: the adapters' reference layout (padded rows)."""
    from evalharness.evaluation.runner import RunConfig, run_evaluation
    from evalharness.records.record import read_samples

    config = RunConfig(
        model=str(model),
        tasks=[task],
        output=output,
        data_dir=ctx["data_dir"],
        limit=limit,
        batch_size=batch_size,
        device=ctx["device"],
        dtype=ctx["dtype"],
        fresh=fresh,
        packing=not reference,
    )
    started = time.perf_counter()
    result = run_evaluation(config)
    wall = time.perf_counter() - started
    entry = result.record.tasks[task]
    return {
        "seconds": entry.seconds,
        "wall": wall,
        "execution": entry.execution,
        "metrics": {key: metric.value for key, metric in entry.metrics.items()},
        "samples": read_samples(result.run_dir, task),
        "run_dir": result.run_dir,
    }


def max_diff(a: list, b: list) -> float:
    """Largest absolute difference between two equally long nested lists of numbers/strings
    (strings: 0 when equal, inf otherwise)."""
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        if isinstance(x, (list, tuple)):
            worst = max(worst, max_diff(list(x), list(y)))
        elif isinstance(x, str) or isinstance(y, str) or x is None or y is None:
            worst = max(worst, 0.0 if x == y else math.inf)
        else:
            worst = max(worst, abs(float(x) - float(y)))
    return worst


def sample_stats(samples: list[dict]) -> list:
    return [[row["stats"][k] for k in sorted(row["stats"])] for row in samples]


def load_hf(path: Path, auto_class: str, device: str, dtype: str):
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    model = (
        getattr(transformers, auto_class)
        .from_pretrained(path, dtype=getattr(torch, dtype))
        .to(device)
        .eval()
    )
    return model, transformers.AutoTokenizer.from_pretrained(path)


def timed(call, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = call(*args, **kwargs)
    return result, time.perf_counter() - started


def new_dir(ctx: dict, name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=ctx["runs"]))


def common_checks(
    ctx: dict, model: Path, task: str, first: dict, limit: int | None
) -> dict:
    """Batch-size invariance (a second batch size on a subset), cache hit vs miss, and the
    reference layout's padding efficiency and time (the "before")."""
    out: dict[str, Any] = {}
    subset = min(len(first["samples"]), ctx["invariance_n"])
    other = eh_run(
        ctx,
        model,
        task,
        new_dir(ctx, task.replace("/", "_")),
        limit=subset,
        batch_size=5,
    )
    out["batch_size_max_diff"] = max_diff(
        sample_stats(first["samples"][:subset]), sample_stats(other["samples"])
    )
    out["batch_size_compared"] = (
        f"batch {ctx['batch_size']} vs 5 on the first {subset} examples"
    )
    directory = new_dir(ctx, task.replace("/", "_") + "-cache")
    miss = eh_run(
        ctx,
        model,
        task,
        directory,
        limit=limit,
        batch_size=ctx["batch_size"],
        fresh=True,
    )
    hit = eh_run(
        ctx,
        model,
        task,
        directory,
        limit=limit,
        batch_size=ctx["batch_size"],
        fresh=False,
    )
    out["cache"] = {
        "status": "measured",
        "miss_seconds": miss["seconds"],
        "hit_seconds": hit["seconds"],
        "miss_wall": miss["wall"],
        "hit_wall": hit["wall"],
        "speedup": miss["seconds"] / max(hit["seconds"], 1e-9),
        "speedup_wall": miss["wall"] / max(hit["wall"], 1e-9),
        "max_diff": max_diff(
            sample_stats(miss["samples"]), sample_stats(hit["samples"])
        ),
    }
    reference = eh_run(
        ctx,
        model,
        task,
        new_dir(ctx, task.replace("/", "_") + "-ref"),
        limit=limit,
        batch_size=ctx["batch_size"],
        reference=True,
    )
    out["reference"] = {
        "seconds": reference["seconds"],
        "execution": reference["execution"],
        "max_diff": max_diff(
            sample_stats(first["samples"]), sample_stats(reference["samples"])
        ),
    }
    return out


# -- heads -------------------------------------------------------------------------------------
def classification(ctx: dict, name: str, task: str, limit: int) -> dict:
    from transformers import pipeline

    model_dir = ctx["models"][name]
    model, tokenizer = load_hf(
        model_dir, "AutoModelForSequenceClassification", ctx["device"], ctx["dtype"]
    )
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    pipe = pipeline(
        "text-classification", model=model, tokenizer=tokenizer, device=model.device
    )
    result: dict[str, Any] = {
        "name": f"{task} ({limit} examples)",
        "n": limit,
        "seconds": {"evalharness": [], "floor": [], "pipeline": []},
    }
    for _ in range(ctx["repeats"]):
        ours = eh_run(
            ctx,
            model_dir,
            task,
            new_dir(ctx, name),
            limit=limit,
            batch_size=ctx["batch_size"],
        )
        result["seconds"]["evalharness"].append(ours["seconds"])
        samples = ours["samples"]
        texts = [
            row["input"]["text"] if isinstance(row["input"], dict) else row["input"]
            for row in samples
        ]
        pairs = (
            [row["input"].get("text_pair") for row in samples]
            if isinstance(samples[0]["input"], dict)
            else None
        )
        logits, seconds = timed(
            floor.classify, model, tokenizer, texts, pairs, ctx["batch_size"]
        )
        result["seconds"]["floor"].append(seconds)
        inputs = (
            [{"text": t, "text_pair": p} for t, p in zip(texts, pairs)]
            if pairs
            else texts
        )
        outputs, seconds = timed(
            pipe, inputs, batch_size=ctx["batch_size"], truncation=True
        )
        piped = [o["label"] for o in outputs]
        result["seconds"]["pipeline"].append(seconds)
    gold = [row["gold"] for row in samples]
    floor_pred = [labels[max(range(len(l)), key=l.__getitem__)] for l in logits]
    ours_pred = [row["prediction"] for row in samples]
    accuracy = lambda preds: 100 * sum(p == g for p, g in zip(preds, gold)) / len(gold)
    result["scores"] = {
        "evalharness": ours["metrics"].get("accuracy"),
        "floor": accuracy(floor_pred),
        "pipeline": accuracy(piped),
    }
    result["disagreements"] = {
        "floor": sum(a != b for a, b in zip(ours_pred, floor_pred)),
        "pipeline": sum(a != b for a, b in zip(ours_pred, piped)),
    }
    encoded = tokenizer(texts, pairs) if pairs else tokenizer(texts)
    result["tokens"] = sum(len(ids) for ids in encoded["input_ids"])
    result["execution"] = ours["execution"]
    result["params"] = parameter_counts(model)
    result["projected"] = 0
    result.update(common_checks(ctx, model_dir, task, ours, limit))
    result["notes"] = [
        (
            "pipeline: transformers `text-classification` with the same batch size and truncation "
            "(evaluate's evaluator calls this same pipeline; its `compute` fails on transformers 5)"
        )
    ]
    return result


def squad_rows(data_dir: Path, limit: int) -> list[dict]:
    path = (
        data_dir
        / "squad/dev_reconstructed_from_explorer_html/dev-v1.1.from_explorer_html.json"
    )
    rows = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                rows.append(
                    {
                        "id": qa["id"],
                        "question": qa["question"],
                        "context": paragraph["context"],
                    }
                )
    return rows[:limit]


def qa_head(ctx: dict, limit: int) -> dict:
    model_dir = ctx["models"]["qa"]
    model, tokenizer = load_hf(
        model_dir, "AutoModelForQuestionAnswering", ctx["device"], ctx["dtype"]
    )
    rows = squad_rows(ctx["data_dir"], limit)
    questions, contexts = [r["question"] for r in rows], [r["context"] for r in rows]
    result: dict[str, Any] = {
        "name": f"squad/v1 QA head ({limit} questions)",
        "n": limit,
        "seconds": {"evalharness": [], "floor": []},
    }
    for _ in range(ctx["repeats"]):
        ours = eh_run(
            ctx,
            model_dir,
            "squad/v1",
            new_dir(ctx, "squad"),
            limit=limit,
            batch_size=ctx["batch_size"],
        )
        result["seconds"]["evalharness"].append(ours["seconds"])
        spans, seconds = timed(
            floor.qa_spans, model, tokenizer, questions, contexts, ctx["batch_size"]
        )
        result["seconds"]["floor"].append(seconds)
    ours_text = [
        row["prediction"]["text"]
        if isinstance(row["prediction"], dict)
        else row["prediction"]
        for row in ours["samples"]
    ]
    result["ids_match"] = [row["id"] for row in ours["samples"]] == [
        r["id"] for r in rows
    ]
    result["disagreements"] = {"floor": sum(a != b for a, b in zip(ours_text, spans))}
    result["scores"] = {"evalharness": ours["metrics"].get("f1")}
    answers = _qa_pipeline(ctx, model_dir, rows)
    if isinstance(answers, dict):
        result["seconds"]["pipeline"] = [answers["seconds"]]
        result["disagreements"]["pipeline"] = sum(
            a != b["answer"] for a, b in zip(ours_text, answers["answers"])
        )
        result["notes"] = [
            (
                f"pipeline: transformers {answers['transformers']} `question-answering` (removed in 5.3) in a side venv, "
                "one question per call as evaluate's QA evaluator does; timed once (slow), inside that process"
            )
        ]
    else:
        result["notes"] = [f"pipeline: {answers}"]
    windows = tokenizer(
        questions,
        contexts,
        truncation="only_second",
        max_length=384,
        stride=128,
        return_overflowing_tokens=True,
    )
    result["tokens"] = sum(len(ids) for ids in windows["input_ids"])
    result["execution"] = ours["execution"]
    result["params"] = parameter_counts(model)
    result["projected"] = 0
    result.update(common_checks(ctx, model_dir, "squad/v1", ours, limit))
    result["notes"].append(
        "floor: best start+end log-probability per window over the top 20 starts/ends, widened to words "
        "(evalharness's `span_head` also ranks across windows and handles more cases, so a few answers may differ)"
    )
    return result


def _qa_pipeline(ctx: dict, model_dir: Path, rows: list[dict]) -> dict | str:
    """The ``question-answering`` pipeline's answers and seconds from its side venv, or why not."""
    python = ctx.get("qa_ref_python")
    if python is None:
        return "skipped (no transformers 5.2.0 side venv; transformers >= 5.3 has no QA pipeline)"
    folder = new_dir(ctx, "qa-pipeline")
    request = {
        "model": str(model_dir),
        "rows": rows,
        "settings": {"max_answer_len": 30, "max_seq_len": 384, "doc_stride": 128},
    }
    (folder / "request.json").write_text(json.dumps(request), encoding="utf-8")
    with (folder / "pipeline.log").open("w", encoding="utf-8") as log:
        done = subprocess.run(
            [
                str(python),
                str(HERE / "qa_pipeline_reference.py"),
                str(folder / "request.json"),
                str(folder / "answers.json"),
            ],
            check=False,
            env={**os.environ, "PYTHONPATH": ""},
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if done.returncode:
        return f"failed in its side venv (exit {done.returncode}; see {folder / 'pipeline.log'})"
    return json.loads((folder / "answers.json").read_text(encoding="utf-8"))


# -- generation: prefill and decode ---------------------------------------------------------------
def generation_throughput(
    ctx: dict, model_dir: Path, prompts: list[str], max_new_tokens: int
) -> dict:
    """Prefill and decode tokens/s of evalharness's greedy generation on ``prompts``: the
    prefill is timed as generation of one token, decoding as the rest of a full generation."""
    import evalharness
    from evalharness.types import GenerationOptions

    adapter = evalharness.load_model(
        str(model_dir), device=ctx["device"], dtype=ctx["dtype"]
    )
    prompt_tokens = sum(
        len(ids)
        for ids in adapter.tokenizer(
            prompts, truncation=True, max_length=adapter.max_length
        )["input_ids"]
    )
    one, first = timed(
        lambda: adapter.generate(
            prompts,
            batch_size=ctx["batch_size"],
            options=GenerationOptions(max_new_tokens=1),
        )
    )
    full, whole = timed(
        lambda: adapter.generate(
            prompts,
            batch_size=ctx["batch_size"],
            options=GenerationOptions(max_new_tokens=max_new_tokens),
        )
    )
    generated = sum(r.n_tokens for r in full)
    decode_seconds = max(whole - first, 1e-9)
    return {
        "prompts": len(prompts),
        "prompt_tokens": prompt_tokens,
        "generated_tokens": generated,
        "prefill_seconds": first,
        "decode_seconds": decode_seconds,
        "prefill_tok_s": prompt_tokens / first,
        "decode_tok_s": max(generated - sum(r.n_tokens for r in one), 0)
        / decode_seconds,
    }
