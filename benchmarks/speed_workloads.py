"""The workloads of ``speed.py``: each runs evalharness, the PyTorch floor and the peers on
the same model and data, interleaved per repeat, and returns seconds, scores and outputs.

evalharness is driven only through its public API: ``run_evaluation(RunConfig(...))`` for
built-in tasks (time = the task's ``seconds`` in the run record: requests, forward passes,
decoding, metrics with their bootstrap interval and the samples file; model loading is
excluded) and ``evalharness.load_model(...).loglikelihood`` for CrowS-Pairs, which has no
built-in task yet.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import tempfile
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

import speed_floor as floor  # noqa: E402
from parity_lm_eval import wikitext_documents  # noqa: E402 - the same article split as the parity check


def run_config_fields() -> set[str]:
    from evalharness.evaluation.runner import RunConfig

    return {f.name for f in fields(RunConfig)}


def eh_run(ctx: dict, model: Path, task: str, output: Path, *, limit: int | None, batch_size: int | str,
           generation: dict | None = None, fresh: bool = True) -> dict:
    """One ``run_evaluation``; returns task seconds, wall seconds, metric values, samples."""
    from evalharness.records.record import read_samples
    from evalharness.evaluation.runner import RunConfig, run_evaluation

    options: dict[str, Any] = dict(model=str(model), tasks=[task], output=output, data_dir=ctx["data_dir"], limit=limit,
                                   batch_size=batch_size, device=ctx["device"], dtype=ctx["dtype"])
    if generation:
        options["generation"] = generation
    if "fresh" in run_config_fields():
        options["fresh"] = fresh
    started = time.perf_counter()
    result = run_evaluation(RunConfig(**options))
    wall = time.perf_counter() - started
    entry = result.record.tasks[task]
    return {
        "seconds": entry.seconds, "wall": wall,
        "metrics": {key: metric.value for key, metric in entry.metrics.items()},
        "samples": read_samples(result.run_dir, task), "run_dir": result.run_dir,
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
    model = getattr(transformers, auto_class).from_pretrained(path, dtype=getattr(torch, dtype)).to(device).eval()
    return model, transformers.AutoTokenizer.from_pretrained(path)


def timed(call) -> tuple[Any, float]:
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def new_dir(ctx: dict, name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=ctx["runs"]))


def common_checks(ctx: dict, model: Path, task: str, first: dict, limit: int | None, generation: dict | None = None) -> dict:
    """Batch-size invariance (a second batch size on a subset) and cache hit vs miss."""
    out: dict[str, Any] = {}
    subset = min(len(first["samples"]), ctx["invariance_n"])
    other = eh_run(ctx, model, task, new_dir(ctx, task.replace("/", "_")), limit=subset, batch_size=5, generation=generation)
    out["batch_size_max_diff"] = max_diff(sample_stats(first["samples"][:subset]), sample_stats(other["samples"]))
    out["batch_size_compared"] = f"batch {ctx['batch_size']} vs 5 on the first {subset} examples"
    if "cache" not in run_config_fields():
        out["cache"] = {"status": "pending: this evalharness has no prediction cache (RunConfig has no 'cache')"}
        return out
    directory = new_dir(ctx, task.replace("/", "_") + "-cache")
    miss = eh_run(ctx, model, task, directory, limit=limit, batch_size=ctx["batch_size"], generation=generation, fresh=True)
    hit = eh_run(ctx, model, task, directory, limit=limit, batch_size=ctx["batch_size"], generation=generation, fresh=False)
    out["cache"] = {
        "status": "measured", "miss_seconds": miss["seconds"], "hit_seconds": hit["seconds"],
        "miss_wall": miss["wall"], "hit_wall": hit["wall"],
        "speedup": miss["seconds"] / max(hit["seconds"], 1e-9), "speedup_wall": miss["wall"] / max(hit["wall"], 1e-9),
        "max_diff": max_diff(sample_stats(miss["samples"]), sample_stats(hit["samples"])),
    }
    return out


# -- heads -------------------------------------------------------------------------------------
def classification(ctx: dict, name: str, task: str, limit: int) -> dict:
    from transformers import pipeline

    model_dir = ctx["models"][name]
    model, tokenizer = load_hf(model_dir, "AutoModelForSequenceClassification", ctx["device"], ctx["dtype"])
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device=model.device)
    result: dict[str, Any] = {"name": f"{task} ({limit} examples)", "n": limit, "seconds": {"evalharness": [], "floor": [], "pipeline": []}}
    for _ in range(ctx["repeats"]):
        ours = eh_run(ctx, model_dir, task, new_dir(ctx, name), limit=limit, batch_size=ctx["batch_size"])
        result["seconds"]["evalharness"].append(ours["seconds"])
        samples = ours["samples"]
        texts = [row["input"]["text"] if isinstance(row["input"], dict) else row["input"] for row in samples]
        pairs = [row["input"].get("text_pair") for row in samples] if isinstance(samples[0]["input"], dict) else None
        logits, seconds = timed(lambda: floor.classify(model, tokenizer, texts, pairs, ctx["batch_size"]))
        result["seconds"]["floor"].append(seconds)
        inputs = [{"text": t, "text_pair": p} for t, p in zip(texts, pairs)] if pairs else texts
        piped, seconds = timed(lambda: [o["label"] for o in pipe(inputs, batch_size=ctx["batch_size"], truncation=True)])
        result["seconds"]["pipeline"].append(seconds)
    gold = [row["gold"] for row in samples]
    floor_pred = [labels[max(range(len(l)), key=l.__getitem__)] for l in logits]
    ours_pred = [row["prediction"] for row in samples]
    accuracy = lambda preds: 100 * sum(p == g for p, g in zip(preds, gold)) / len(gold)  # noqa: E731
    result["scores"] = {"evalharness": ours["metrics"].get("accuracy"), "floor": accuracy(floor_pred), "pipeline": accuracy(piped)}
    result["disagreements"] = {"floor": sum(a != b for a, b in zip(ours_pred, floor_pred)), "pipeline": sum(a != b for a, b in zip(ours_pred, piped))}
    encoded = tokenizer(texts, pairs) if pairs else tokenizer(texts)
    result["tokens"] = sum(len(ids) for ids in encoded["input_ids"])
    result["params"] = sum(p.numel() for p in model.parameters())
    result.update(common_checks(ctx, model_dir, task, ours, limit))
    result["notes"] = ["pipeline: transformers `text-classification` with the same batch size and truncation "
                       "(evaluate's evaluator calls this same pipeline; its `compute` fails on transformers 5)"]
    return result


def squad_rows(data_dir: Path, limit: int) -> list[dict]:
    path = data_dir / "squad/dev_reconstructed_from_explorer_html/dev-v1.1.from_explorer_html.json"
    rows = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                rows.append({"id": qa["id"], "question": qa["question"], "context": paragraph["context"]})
    return rows[:limit]


def qa_head(ctx: dict, limit: int) -> dict:
    model_dir = ctx["models"]["qa"]
    model, tokenizer = load_hf(model_dir, "AutoModelForQuestionAnswering", ctx["device"], ctx["dtype"])
    rows = squad_rows(ctx["data_dir"], limit)
    questions, contexts = [r["question"] for r in rows], [r["context"] for r in rows]
    result: dict[str, Any] = {"name": f"squad/v1 QA head ({limit} questions)", "n": limit, "seconds": {"evalharness": [], "floor": []}}
    for _ in range(ctx["repeats"]):
        ours = eh_run(ctx, model_dir, "squad/v1", new_dir(ctx, "squad"), limit=limit, batch_size=ctx["batch_size"])
        result["seconds"]["evalharness"].append(ours["seconds"])
        spans, seconds = timed(lambda: floor.qa_spans(model, tokenizer, questions, contexts, ctx["batch_size"]))
        result["seconds"]["floor"].append(seconds)
    ours_text = [row["prediction"]["text"] if isinstance(row["prediction"], dict) else row["prediction"] for row in ours["samples"]]
    result["ids_match"] = [row["id"] for row in ours["samples"]] == [r["id"] for r in rows]
    result["disagreements"] = {"floor": sum(a != b for a, b in zip(ours_text, spans))}
    result["scores"] = {"evalharness": ours["metrics"].get("f1")}
    reference = ctx.get("qa_ref_python")
    if reference:
        request = {"model": str(model_dir), "rows": rows,
                   "settings": {"max_answer_len": 30, "max_seq_len": 384, "doc_stride": 128}}
        folder = new_dir(ctx, "qa-pipeline")
        (folder / "request.json").write_text(json.dumps(request), encoding="utf-8")
        subprocess.run([str(reference), str(HERE / "qa_pipeline_reference.py"), str(folder / "request.json"), str(folder / "answers.json")],
                       check=True, env={**os.environ, "PYTHONPATH": ""}, cwd=folder)
        answers = json.loads((folder / "answers.json").read_text(encoding="utf-8"))
        result["seconds"]["pipeline"] = [answers["seconds"]]
        result["disagreements"]["pipeline"] = sum(a != b["answer"] for a, b in zip(ours_text, answers["answers"]))
        result["notes"] = [f"pipeline: transformers {answers['transformers']} `question-answering` (removed in 5.3) in a side venv, "
                           "one question per call as evaluate's QA evaluator does; timed once (slow), inside that process"]
    else:
        result["notes"] = ["pipeline: skipped (no transformers 5.2.0 side venv; transformers >= 5.3 has no QA pipeline)"]
    windows = tokenizer(questions, contexts, truncation="only_second", max_length=384, stride=128, return_overflowing_tokens=True)
    result["tokens"] = sum(len(ids) for ids in windows["input_ids"])
    result["params"] = sum(p.numel() for p in model.parameters())
    result.update(common_checks(ctx, model_dir, "squad/v1", ours, limit))
    result["notes"].append("floor: best start+end log-probability per window over the top 20 starts/ends, widened to words "
                           "(evalharness's `span_head` also ranks across windows and handles more cases, so a few answers may differ)")
    return result


# -- causal LM ---------------------------------------------------------------------------------
def perplexity(ctx: dict, n_docs: int) -> dict:
    model_dir = ctx["models"]["causal"]
    model, tokenizer = load_hf(model_dir, "AutoModelForCausalLM", ctx["device"], ctx["dtype"])
    documents = wikitext_documents(ctx["data_dir"] / "wikitext-2/wiki.test.tokens.txt")[:n_docs]
    words = sum(len(re.split(r"\s+", d)) for d in documents)
    length = tokenizer.model_max_length
    result: dict[str, Any] = {"name": f"lm/wikitext2 perplexity ({len(documents)} articles)", "n": len(documents),
                              "seconds": {"evalharness": [], "floor": []}}
    for _ in range(ctx["repeats"]):
        ours = eh_run(ctx, model_dir, "lm/wikitext2", new_dir(ctx, "wikitext"), limit=n_docs, batch_size=ctx["batch_size"])
        result["seconds"]["evalharness"].append(ours["seconds"])
        (totals, n_tokens), seconds = timed(lambda: floor.rolling_loglikelihoods(model, tokenizer, documents, ctx["batch_size"], length))
        result["seconds"]["floor"].append(seconds)
    floor_ppl = math.exp(-math.fsum(totals) / words)
    result["scores"] = {"evalharness": ours["metrics"].get("word_perplexity"), "floor": floor_ppl}
    result["values"] = {"floor": totals}
    result["words"] = words
    result["tokens"] = n_tokens
    result["params"] = sum(p.numel() for p in model.parameters())
    result.update(common_checks(ctx, model_dir, "lm/wikitext2", ours, n_docs))
    result["notes"] = [f"disjoint windows of {length} tokens; word perplexity, lm-eval's word count"]
    return result


def crows_pairs(data_dir: Path, limit: int) -> list[tuple[str, str]]:
    with (data_dir / "crows_pairs/crows_pairs_anonymized.csv").open(encoding="utf-8") as handle:
        return [(row["sent_more"], row["sent_less"]) for row in csv.DictReader(handle)][:limit]


def crows(ctx: dict, limit: int) -> dict:
    import evalharness

    model_dir = ctx["models"]["causal"]
    model, tokenizer = load_hf(model_dir, "AutoModelForCausalLM", ctx["device"], ctx["dtype"])
    adapter = evalharness.load_model(str(model_dir), device=ctx["device"], dtype=ctx["dtype"])
    pairs = crows_pairs(ctx["data_dir"], limit)
    sentences = [s for pair in pairs for s in pair]
    result: dict[str, Any] = {"name": f"CrowS-Pairs MC log-likelihood ({len(pairs)} pairs)", "n": len(pairs),
                              "seconds": {"evalharness": [], "floor": []}}
    for _ in range(ctx["repeats"]):
        responses, seconds = timed(lambda: adapter.loglikelihood([("", s) for s in sentences], batch_size=ctx["batch_size"]))
        result["seconds"]["evalharness"].append(seconds)
        values, seconds = timed(lambda: floor.sentence_loglikelihoods(model, tokenizer, sentences, ctx["batch_size"]))
        result["seconds"]["floor"].append(seconds)
    ours = [r.logprob for r in responses]
    other = adapter.loglikelihood([("", s) for s in sentences[: 2 * ctx["invariance_n"]]], batch_size=5)
    stereo = lambda v: 100 * sum(v[2 * i] > v[2 * i + 1] for i in range(len(pairs))) / len(pairs)  # noqa: E731
    result["scores"] = {"evalharness": stereo(ours), "floor": stereo(values)}
    result["request_max_diff"] = {"floor": max_diff(ours, values)}
    result["batch_size_max_diff"] = max_diff(ours[: len(other)], [r.logprob for r in other])
    result["batch_size_compared"] = f"batch {ctx['batch_size']} vs 5 on the first {len(other)} requests"
    result["values"] = {"evalharness": ours}
    result["tokens"] = sum(len(ids) + 1 for ids in tokenizer(sentences, add_special_tokens=False)["input_ids"])
    result["params"] = sum(p.numel() for p in model.parameters())
    result["cache"] = {"status": "n/a: no built-in CrowS-Pairs task in this checkout; scored through the adapter "
                       "(`load_model(...).loglikelihood`, empty context, i.e. conditioned on BOS/EOS)"}
    result["notes"] = ["metric: % of pairs where the more stereotypical sentence is more likely (lm-eval's pct_stereotype)"]
    return result


# -- seq2seq generation --------------------------------------------------------------------------
GREEDY = {"num_beams": 1, "min_new_tokens": 0, "no_repeat_ngram_size": 0, "length_penalty": 1.0}


def generation(ctx: dict, key: str, task: str, limit: int, max_new_tokens: int) -> dict:
    model_dir = ctx["models"]["t5"]
    model, tokenizer = load_hf(model_dir, "AutoModelForSeq2SeqLM", ctx["device"], ctx["dtype"])
    settings = {**GREEDY, "max_new_tokens": max_new_tokens}
    result: dict[str, Any] = {"name": f"{task} T5 greedy ({limit} inputs, {max_new_tokens} new tokens)", "n": limit,
                              "seconds": {"evalharness": [], "floor": []}}
    for _ in range(ctx["gen_repeats"]):
        ours = eh_run(ctx, model_dir, task, new_dir(ctx, key), limit=limit, batch_size=ctx["batch_size"], generation=settings)
        result["seconds"]["evalharness"].append(ours["seconds"])
        sources = [row["input"] for row in ours["samples"]]
        texts, seconds = timed(lambda: floor.seq2seq_generate(model, tokenizer, sources, ctx["batch_size"], max_new_tokens))
        result["seconds"]["floor"].append(seconds)
    predictions = [row["prediction"] for row in ours["samples"]]
    result["disagreements"] = {"floor": sum(a.strip() != b.strip() for a, b in zip(predictions, texts))}
    result["scores"] = {"evalharness": next(iter(ours["metrics"].values()))}
    result["predictions"] = predictions
    encoder = sum(len(ids) for ids in tokenizer(sources, truncation=True, max_length=tokenizer.model_max_length)["input_ids"])
    result["tokens"] = encoder + sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
    result["params"] = sum(p.numel() for p in model.parameters())
    result["sources"] = sources
    result.update(common_checks(ctx, model_dir, task, ours, limit, generation=settings))
    result["notes"] = ["greedy decoding for every path (the task's beam settings overridden through `generation`); "
                       "transformers 5 has no text2text-generation pipeline (5.2.0 neither), so no pipeline column; "
                       f"timed {ctx['gen_repeats']}x"]
    return result
