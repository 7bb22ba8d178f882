"""``benchmarks/RESULTS.md`` from the raw results of ``speed.py``."""

from __future__ import annotations

import math
from statistics import median

from speed_peak import model_flops

LM_EVAL_RATIO = {
    "sst2_ll": 0.5,
    "bbq": 0.5,
    "wikitext_paragraphs": 0.5,
    "wikitext_articles": 0.5,
    "crows": 1.0,
    "wmt": 1.0,
}
PADDING_MIN, MFU_MIN, CACHE_MIN, RSS_MAX = 0.95, 0.50, 20.0, 0.20
PADDING_TARGET = {
    "sst2_ll",
    "bbq",
    "crows",
    "wikitext_paragraphs",
    "wikitext_articles",
    "sst2_head",
    "qnli_head",
    "squad",
}
# issue 18: "the classification and log-likelihood workloads" (perplexity is rolling
# log-likelihood): every padding workload but the extractive QA head
MFU_TARGET = PADDING_TARGET - {"squad"}
REL_TOL = (
    1e-5  # per-request answers: |Δ| ≤ REL_TOL · (1 + |value|) (float32 forward passes)
)


def _fmt(value, digits=2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return str(value)
        return (
            f"{value:.{digits}g}"
            if abs(value) < 1e-2 and value != 0
            else f"{value:.{digits}f}"
        )
    return str(value)


def _loads(load: dict) -> str:
    """Load averages at the start and the end of the run (a dict; older raw files: the end only)."""
    if not isinstance(load, dict):
        return f"at the end {', '.join(f'{x:.1f}' for x in load)}"
    return " → ".join(
        f"{', '.join(f'{x:.1f}' for x in load[when])} ({when})"
        for when in ("start", "end")
    )


def _load(r: dict) -> str:
    before, after = r.get("load_average") or (None, None)
    return "—" if before is None else f"{before:.1f} → {after:.1f}"


def _verdict(ok: bool | None) -> str:
    return "pending" if ok is None else ("**PASS**" if ok else "**FAIL**")


def _mfu(r: dict, peak: float) -> float | None:
    execution, seconds = (
        r.get("execution") or {},
        r.get("engine_seconds") or (r.get("execution") or {}).get("seconds"),
    )
    if not execution.get("tokens") or not seconds:
        return None
    generated = r.get("throughput", {}).get("generated_tokens", 0)
    flops = model_flops(
        r["params"],
        tokens=execution["tokens"],
        projected=r.get("projected", 0),
        generated=generated,
    )
    return flops / seconds / peak


def _padding(r: dict) -> tuple[float | None, float | None]:
    before = (r.get("reference") or {}).get("execution", {}).get("padding_efficiency")
    return before, (r.get("execution") or {}).get("padding_efficiency")


def render(raw: dict) -> str:
    meta, results = raw["meta"], raw["results"]
    v, peak = meta["versions"], meta["peak_flops"]
    peaks = [p["flops"] for p in meta["peaks"]]
    process = {k: r for k, r in results.items() if r.get("kind") == "process"}
    heads = {k: r for k, r in results.items() if r.get("kind") == "in-process"}
    lines = [
        "# Speed benchmark (`benchmarks/speed.py`)",
        "",
        (
            f"Run {meta['date']}{' — **quick mode** (small slices; smoke run)' if meta['quick'] else ' — full mode'}, {meta['minutes']} min. "
            f"Machine: {meta['machine']}, {meta['cpus']} CPU cores, torch threads {meta['torch_threads']}, device {meta['device']} "
            f"({meta['dtype']}); load average (1, 5, 15 min) {_loads(meta['load_average'])}. Versions: Python "
            f"{v['python']}, torch {v['torch']}, transformers {v['transformers']}, lm-eval {v['lm_eval'] or 'not run'}, evalharness {v['evalharness']}."
        ),
        "",
        *(
            [
                f"Command: `{meta['command']}`"
                + (
                    f" (every workload capped at {meta['max_examples']} examples)"
                    if meta.get("max_examples")
                    else ""
                )
                + ".",
                "",
            ]
            if meta.get("command")
            else []
        ),
        (
            f"**Matmul peak** (dense `torch.matmul`, {meta['dtype']}, {meta['torch_threads']} threads, best of a square and two MLP shapes, "
            f"measured before every workload): median {peak / 1e9:.0f} GFLOP/s, range {min(peaks) / 1e9:.0f}–{max(peaks) / 1e9:.0f}. "
            "Model FLOP utilisation (MFU) = forward FLOPs (2 × body parameters × tokens computed + 2 × vocabulary projection × "
            "positions projected; embedding lookups and attention's own products not counted) / the task's engine seconds / this peak."
        ),
        "",
        (
            "**What is timed.** evalharness vs lm-evaluation-harness: each side is one process, timed from start to exit "
            "(start-up, task building, model loading, forward passes, metrics with each tool's default intervals, results and samples "
            f"written), median of {meta['repeats']} repeats, interleaved, alternating which side goes first; lm-eval at batch sizes "
            f"{meta['lm_eval_batch_sizes']}, its fastest counts; evalharness at batch size {meta['batch_size']}. lm-eval reads a local "
            "task (YAML + JSONL) holding the prompts and choices evalharness recorded, so both score the same requests. "
            "*Before* is evalharness with the adapters' reference layout (one padded row per sequence, no shared prefixes). "
            "Encoder heads run in-process (the task's `seconds`, model loading excluded) against plain PyTorch loops and pipelines."
        ),
        "",
        (
            "Checkpoints (random weights, built locally by `speed_models.py`): GPT-2 6×384 (6 heads, 512 positions, byte-level BPE 8k); "
            "BERT 6×384 (12 heads, FFN 1536, WordPiece 8k) as SST-2/QNLI classifier and QA head; T5 4+4×256 (Unigram 8k)."
        ),
        "",
    ]
    if process:
        lines += [
            "## evalharness vs lm-evaluation-harness (whole process)",
            "",
            (
                "| workload | n | evalharness s | lm-eval s (batch) | ratio | task s before → after | padding before → after | "
                "shared-prefix tokens | tokens computed | engine tok/s | MFU | load |"
            ),
            "| --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | --- |",
        ]
        for r in process.values():
            ours = median(r["seconds"]["evalharness"])
            peer = median(r["seconds"][f"lm_eval@{r['lm_eval_batch_size']}"])
            before, after = _padding(r)
            execution = r["execution"]
            mfu = _mfu(r, peak)
            lines.append(
                f"| {r['name']} | {r['n']} | {ours:.1f} | {peer:.1f} ({r['lm_eval_batch_size']}) | **{ours / peer:.2f}** | "
                f"{r['reference']['task_seconds']:.1f} → {r['task_seconds']:.1f} | {_fmt(before)} → {_fmt(after)} | "
                f"{execution.get('shared_prefix_tokens', 0)} | {execution.get('tokens')} | "
                f"{execution.get('tokens', 0) / r['engine_seconds']:.0f} | {_fmt(100 * mfu, 1) + '%' if mfu else '—'} | {_load(r)} |"
            )
        lines += [
            "",
            (
                "Seconds per repeat, every lm-eval batch size and the run directories' logs are in "
                "`benchmarks/results/speed*.json`."
            ),
            "",
        ]
    gen = {k: r for k, r in process.items() if "throughput" in r}
    if gen:
        lines += [
            "### Generation: prefill and decode",
            "",
            "| workload | prompts | prompt tokens | prefill s | prefill tok/s | generated tokens | decode s | decode tok/s |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in gen.values():
            t = r["throughput"]
            lines.append(
                f"| {r['name']} | {t['prompts']} | {t['prompt_tokens']} | {t['prefill_seconds']:.2f} | {t['prefill_tok_s']:.0f} | "
                f"{t['generated_tokens']} | {t['decode_seconds']:.2f} | {t['decode_tok_s']:.0f} |"
            )
        lines += [
            "",
            (
                "In-process, evalharness's `generate` at batch size "
                f"{meta['batch_size']}: prefill = generating one token, decode = the rest of a full generation."
            ),
            "",
        ]
    if heads:
        lines += [
            "## Encoder heads (in-process)",
            "",
            (
                "| workload | n | evalharness s | floor s | × floor | pipeline s | pipeline / evalharness | task s before → after | "
                "padding before → after | tokens | MFU | load |"
            ),
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | --- |",
        ]
        for r in heads.values():
            ours, floor = (
                median(r["seconds"]["evalharness"]),
                median(r["seconds"]["floor"]),
            )
            pipe = (
                median(r["seconds"]["pipeline"])
                if r["seconds"].get("pipeline")
                else None
            )
            before, after = _padding(r)
            r["engine_seconds"] = r["execution"].get("seconds")
            mfu = _mfu(r, peak)
            lines.append(
                f"| {r['name']} | {r['n']} | {ours:.2f} | {floor:.2f} | {ours / floor:.2f} | {_fmt(pipe)} | "
                f"{_fmt(pipe / ours) if pipe else '—'} | {r['reference']['seconds']:.2f} → {ours:.2f} | {_fmt(before)} → {_fmt(after)} | "
                f"{r['execution'].get('tokens')} | {_fmt(100 * mfu, 1) + '%' if mfu else '—'} | {_load(r)} |"
            )
        lines.append("")
    lines += [
        (
            "*load*: the machine's 1-minute load average before and after the workload, on "
            f"{meta['cpus']} cores; above about {meta['cpus']} other processes shared the cores and the times are noisy."
        ),
        "",
    ]
    lines += _scores(process, heads, meta["batch_size"])
    lines += [
        "## Peak memory (RSS) at 1× and 10× examples",
        "",
        "| task | examples | peak RSS MB | growth |",
        "| --- | --- | --- | ---: |",
    ]
    for m in raw["rss"]:
        lines.append(
            f"| {m['task']} | {m['small']} → {m['large']} | {m['small_mb']:.0f} → {m['large_mb']:.0f} | {100 * m['growth']:+.1f}% |"
        )
    if not raw["rss"]:
        lines.append("| not measured in this run (`--no-rss`) | | | |")
    lines += [
        "",
        (
            "Each measurement is a fresh process running `run_evaluation`; peak RSS is its `ru_maxrss` (model and libraries "
            "included, so the growth is what the data adds)."
        ),
        "",
    ]
    lines += _targets(raw, process, heads)
    if not meta.get("gpu"):
        lines += [
            "## GPU",
            "",
            (
                "No GPU was lent to this run: every figure above is CPU. `--device cuda` runs the same workloads "
                "(bf16 where supported) and measures the GPU's own matmul peak the same way; the GPU backends benchmark "
                "(`gpu_backends.py`: hf vs vllm, bf16, `--batch-size auto` OOM back-off) needs a CUDA GPU and was not run."
            ),
            "",
        ]
    return "\n".join(lines) + "\n"


def _scores(process: dict, heads: dict, batch_size: int) -> list[str]:
    out = [
        "## Scores and identity checks",
        "",
        "| workload | evalharness | lm-eval / floor | per-request max \\|Δ\\| vs lm-eval | vs reference layout | across batch sizes | cache hit |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, r in process.items():
        ours = ", ".join(
            f"{k} {_fmt(float(x), 6)}"
            for k, x in r["metrics"].items()
            if isinstance(x, (int, float))
        )
        peer = ", ".join(
            f"{k} {_fmt(float(x), 6)}"
            for k, x in r["peer_metrics"].items()
            if isinstance(x, (int, float)) and k != "sample_len"
        )
        unit = " texts differ" if r["peer"] == "generate" else ""
        cache = r["cache"]
        out.append(
            f"| {key} | {ours} | {peer} | {_fmt(r['peer_max_diff'], 3)}{unit} | {_fmt(r['reference']['max_diff'], 3)}{unit} | "
            f"{_fmt(r['batch_size_max_diff'], 3)}{unit} (batch 5 vs {batch_size}) | "
            f"{cache['miss_task_seconds'] / max(cache['hit_task_seconds'], 1e-9):.0f}× task time, {cache['hits']} hits, max \\|Δ\\| {_fmt(cache['max_diff'], 3)} |"
        )
    for key, r in heads.items():
        scores = " / ".join(
            f"{name} {_fmt(value, 6)}" for name, value in r["scores"].items()
        )
        differ = "; ".join(
            f"{v} of {r['n']} differ from {k}"
            for k, v in r.get("disagreements", {}).items()
        )
        cache = r.get("cache", {})
        out.append(
            f"| {key} | {scores} | {differ} | — | {_fmt(r['reference']['max_diff'], 3)} | {_fmt(r.get('batch_size_max_diff'), 3)} "
            f"({r.get('batch_size_compared', '')}) | {_fmt(cache.get('speedup'), 1)}× task time, max \\|Δ\\| {_fmt(cache.get('max_diff'), 3)} |"
        )
    notes = [
        f"- {key}: {note}"
        for key, r in {**process, **heads}.items()
        for note in r.get("notes", [])
    ]
    return out + ([""] + notes if notes else []) + [""]


def _identical(r: dict) -> bool:
    if r.get("peer") == "generate":  # lm-eval truncates differently; see the note
        return r["reference"]["max_diff"] == 0
    return all(
        value <= REL_TOL
        for value in (
            r["peer_rel_diff"],
            r["reference"]["rel_diff"],
            r["batch_size_rel_diff"],
        )
    )


def _targets(raw: dict, process: dict, heads: dict) -> list[str]:
    peak = raw["meta"]["peak_flops"]
    rows: list[tuple[str, str, bool | None]] = []
    for key, r in process.items():
        ratio = median(r["seconds"]["evalharness"]) / median(
            r["seconds"][f"lm_eval@{r['lm_eval_batch_size']}"]
        )
        limit = LM_EVAL_RATIO.get(key)
        if limit is not None:
            rows.append(
                (
                    f"wall-time ratio to lm-eval ≤ {limit} — {key}",
                    f"{ratio:.2f}",
                    ratio <= limit,
                )
            )
        rows.append(
            (
                f"identical answers (lm-eval, reference layout, batch sizes) — {key}",
                f"texts differing from the reference layout: {r['reference']['max_diff']:.0f}"
                if r["peer"] == "generate"
                else f"max rel. \\|Δ\\| {_fmt(max(r['peer_rel_diff'], r['reference']['rel_diff'], r['batch_size_rel_diff']), 2)}",
                _identical(r),
            )
        )
        cache = r["cache"]
        speedup = cache["miss_task_seconds"] / max(cache["hit_task_seconds"], 1e-9)
        rows.append(
            (
                f"cached rerun ≥ {CACHE_MIN:.0f}× faster (task time) — {key}",
                f"{speedup:.0f}×",
                speedup >= CACHE_MIN,
            )
        )
    for key, r in {**process, **heads}.items():
        before, after = _padding(r)
        if key in PADDING_TARGET and after is not None:
            rows.append(
                (
                    f"padding efficiency ≥ {PADDING_MIN:.0%} — {key}",
                    f"{_fmt(before)} → {_fmt(after)}",
                    after >= PADDING_MIN,
                )
            )
        mfu = _mfu(r, peak)
        if key in MFU_TARGET:
            rows.append(
                (
                    f"MFU ≥ {MFU_MIN:.0%} of the matmul peak — {key}",
                    f"{100 * mfu:.1f}%" if mfu else "—",
                    bool(mfu) and mfu >= MFU_MIN,
                )
            )
    for m in raw["rss"]:
        rows.append(
            (
                f"peak RSS ≤ +{RSS_MAX:.0%} at 10× examples — {m['task']}",
                f"{100 * m['growth']:+.1f}%",
                m["growth"] <= RSS_MAX,
            )
        )
    out = [
        "## Targets (issue 18)",
        "",
        "| target | measured | verdict |",
        "| --- | --- | --- |",
    ]
    return (
        out
        + [f"| {name} | {measured} | {_verdict(ok)} |" for name, measured, ok in rows]
        + [""]
    )
